"""Squeeze (spec model-format §3.3.27)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import LayerType, Params, Value, counted, register


@dataclass(frozen=True)
class SqueezeParams(Params):
    axes: tuple[int, ...] = counted()


@register
class Squeeze(LayerType):
    names = ("Squeeze",)
    enum = 118
    Params = SqueezeParams

    @classmethod
    def forward(cls, p: SqueezeParams, res: None, x: np.ndarray) -> np.ndarray:
        # no axes: every dimension of size 1 (ONNX semantics)
        return np.squeeze(x, axis=p.axes or None)

    @classmethod
    def to_onnx(cls, p: SqueezeParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        g.node("Squeeze", [xs[0].name] + ([g.ints(p.axes)] if p.axes else []), ys[0])
