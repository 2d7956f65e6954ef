"""StridedSliceV2: ONNX Slice semantics (spec model-format §3.3.13)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, counted, register


@dataclass(frozen=True)
class StridedSliceV2Params(Params):
    begins: tuple[int, ...] = counted()
    ends: tuple[int, ...] = counted()
    axes: tuple[int, ...] = counted()
    strides: tuple[int, ...] = counted()


@register
class StridedSliceV2(LayerType):
    names = ("StridedSliceV2",)
    enum = 306
    Params = StridedSliceV2Params
