"""SplitV: consecutive slices along an axis (spec model-format §3.3.11)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._util import axis_index
from .base import Int8Context, LayerType, Params, counted, register


@dataclass(frozen=True)
class SplitVParams(Params):
    axis: int = 0
    slices: tuple[int, ...] = counted()


@register
class SplitV(LayerType):
    names = ("SplitV",)
    enum = 153
    Params = SplitVParams

    @classmethod
    def forward(cls, p: SplitVParams, res: None, x: np.ndarray) -> tuple[np.ndarray, ...]:
        axis = axis_index(p.axis, x.ndim)
        if not p.slices or min(p.slices) < 0 or sum(p.slices) != x.shape[axis]:
            raise ValueError(f"slice sizes {list(p.slices)} do not split dimension {axis} of "
                             f"size {x.shape[axis]}")
        return tuple(np.split(x, np.cumsum(p.slices)[:-1], axis=axis))

    @classmethod
    def forward_int8(cls, p: SplitVParams, res: None, q: Int8Context,
                     x: np.ndarray) -> tuple[np.ndarray, ...]:
        return cls.forward(p, res, x)   # pure data movement on the codes (spec int8 §12.9)
