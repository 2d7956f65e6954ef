"""StridedSlice: begins/ends/strides for every dim, N first (spec model-format §3.3.12)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, counted, register


@dataclass(frozen=True)
class StridedSliceParams(Params):
    begins: tuple[int, ...] = counted(required=True)
    ends: tuple[int, ...] = counted(required=True)    # 0 means "to the end"
    strides: tuple[int, ...] = counted(required=True)


@register
class StridedSlice(LayerType):
    names = ("StridedSlice", "StridedSlice_nhwc")
    enum = 57
    Params = StridedSliceParams
