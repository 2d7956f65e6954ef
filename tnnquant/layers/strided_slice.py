"""StridedSlice: begins/ends/strides for every dim, N first (spec model-format §3.3.12)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._util import onnx_slice
from .base import Int8Context, LayerType, Params, Value, counted, register


@dataclass(frozen=True)
class StridedSliceParams(Params):
    begins: tuple[int, ...] = counted(required=True)
    ends: tuple[int, ...] = counted(required=True)    # 0 means "to the end"
    strides: tuple[int, ...] = counted(required=True)


def _slices(p: StridedSliceParams, shape: tuple[int, ...]) -> list[slice]:
    """One slice per input dim (spec §3.3.12)."""
    if not len(p.begins) == len(p.ends) == len(p.strides) == len(shape):
        raise ValueError(f"expected {len(shape)} begins, ends and strides (the input rank), got "
                         f"{len(p.begins)}, {len(p.ends)}, {len(p.strides)}")
    index = []
    for dim, begin, end, stride in zip(shape, p.begins, p.ends, p.strides):
        if stride <= 0:
            raise ValueError(f"stride {stride} must be positive")
        begin = begin + dim if begin < 0 else begin
        # spec §3.3.12: end 0 means "to the end"
        end = dim if end == 0 else end + dim if end < 0 else end
        if not 0 <= begin < end:
            raise ValueError(f"empty or invalid slice [{begin}, {end}) of a dimension of "
                             f"size {dim}")
        index.append(slice(begin, end, stride))
    return index


@register
class StridedSlice(LayerType):
    names = ("StridedSlice", "StridedSlice_nhwc")
    enum = 57
    Params = StridedSliceParams

    @classmethod
    def forward(cls, p: StridedSliceParams, res: None, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x[tuple(_slices(p, x.shape))])

    @classmethod
    def to_onnx(cls, p: StridedSliceParams, res: None, g, xs: list[Value],
                ys: list[str]) -> None:
        onnx_slice(g, xs[0], _slices(p, xs[0].shape), ys[0])

    @classmethod
    def forward_int8(cls, p: StridedSliceParams, res: None, q: Int8Context,
                     x: np.ndarray) -> np.ndarray:
        return cls.forward(p, res, x)   # pure data movement on the codes (spec int8 §12.9)
