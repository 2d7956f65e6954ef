"""SplitV: consecutive slices along an axis (spec model-format §3.3.11)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._util import axis_index
from .base import Int8Context, LayerType, Params, Value, counted, register


@dataclass(frozen=True)
class SplitVParams(Params):
    axis: int = 0
    slices: tuple[int, ...] = counted()


def _axis(p: SplitVParams, shape: tuple[int, ...]) -> int:
    axis = axis_index(p.axis, len(shape))
    if not p.slices or min(p.slices) < 0 or sum(p.slices) != shape[axis]:
        raise ValueError(f"slice sizes {list(p.slices)} do not split dimension {axis} of size "
                         f"{shape[axis]}")
    return axis


@register
class SplitV(LayerType):
    names = ("SplitV",)
    enum = 153
    Params = SplitVParams

    @classmethod
    def forward(cls, p: SplitVParams, res: None, x: np.ndarray) -> tuple[np.ndarray, ...]:
        axis = _axis(p, x.shape)
        return tuple(np.split(x, np.cumsum(p.slices)[:-1], axis=axis))

    @classmethod
    def to_onnx(cls, p: SplitVParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        axis = _axis(p, xs[0].shape)
        if len(ys) != len(p.slices):
            raise ValueError(f"{len(p.slices)} slices for {len(ys)} outputs")
        g.node("Split", [xs[0].name, g.ints(p.slices)], ys, axis=axis)

    @classmethod
    def forward_int8(cls, p: SplitVParams, res: None, q: Int8Context,
                     x: np.ndarray) -> tuple[np.ndarray, ...]:
        return cls.forward(p, res, x)   # pure data movement on the codes (spec int8 §12.9)
