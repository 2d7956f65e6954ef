"""Expand (spec model-format §3.3.27)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import LayerType, Params, Value, counted, register


@dataclass(frozen=True)
class ExpandParams(Params):
    shape: tuple[int, ...] = counted()


@register
class Expand(LayerType):
    names = ("Expand",)
    enum = 304
    Params = ExpandParams

    @classmethod
    def forward(cls, p: ExpandParams, res: None, x: np.ndarray) -> np.ndarray:
        # bidirectional numpy broadcasting: a 1 in the shape keeps the input dim (ONNX Expand)
        shape = np.broadcast_shapes(x.shape, tuple(p.shape))
        return np.array(np.broadcast_to(x, shape))

    @classmethod
    def to_onnx(cls, p: ExpandParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        """ONNX Expand: the same bidirectional broadcast."""
        g.node("Expand", [xs[0].name, g.ints(p.shape)], ys[0])
