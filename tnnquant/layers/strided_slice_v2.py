"""StridedSliceV2: ONNX Slice semantics (spec model-format §3.3.13)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._util import INT_MAX, INT_MIN, axis_index, onnx_slice
from .base import Int8Context, LayerType, Params, Value, counted, register


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

    @classmethod
    def forward(cls, p: StridedSliceV2Params, res: None, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x[tuple(_slices(p, x.shape))])

    @classmethod
    def to_onnx(cls, p: StridedSliceV2Params, res: None, g, xs: list[Value],
                ys: list[str]) -> None:
        onnx_slice(g, xs[0], _slices(p, xs[0].shape), ys[0])

    @classmethod
    def forward_int8(cls, p: StridedSliceV2Params, res: None, q: Int8Context,
                     x: np.ndarray) -> np.ndarray:
        return cls.forward(p, res, x)   # pure data movement on the codes (spec int8 §12.9)


def _slices(p: StridedSliceV2Params, shape: tuple[int, ...]) -> list[slice]:
    """One slice per input dim (spec §3.3.13)."""
    axes = p.axes or tuple(range(len(p.begins)))
    strides = p.strides or (1,) * len(axes)
    if not len(p.begins) == len(p.ends) == len(axes) == len(strides):
        raise ValueError(f"begins, ends, axes and strides differ in length: {len(p.begins)}, "
                         f"{len(p.ends)}, {len(axes)}, {len(strides)}")
    index = [slice(None)] * len(shape)
    for begin, end, axis, stride in zip(p.begins, p.ends, axes, strides):
        axis = axis_index(axis, len(shape))
        index[axis] = _axis_slice(begin, end, stride, shape[axis])
    return index


def _axis_slice(begin: int, end: int, stride: int, dim: int) -> slice:
    """One axis of an ONNX-style slice, normalised as TNN does (spec §3.3.13)."""
    if stride == 0:
        raise ValueError("stride 0")
    if begin < 0:
        begin += dim
    if end == INT_MAX:
        end = dim
    elif end == INT_MIN:
        end = -1              # one before the first element: a reverse slice down to index 0
    elif end < 0:
        end += dim
    end = min(end, dim)
    # begins outside the dimension are clamped as in ONNX (spec §3.3.13 gives TNN no clamp)
    if stride > 0:
        begin = min(max(begin, 0), dim)
        if begin >= end:
            raise ValueError(f"empty slice [{begin}, {end}) of a dimension of size {dim}")
        return slice(begin, end, stride)
    begin = min(max(begin, 0), dim - 1)
    end = max(end, -1)
    if begin <= end:
        raise ValueError(f"empty reverse slice from {begin} down to {end} of a dimension of "
                         f"size {dim}")
    return slice(begin, None if end < 0 else end, stride)
