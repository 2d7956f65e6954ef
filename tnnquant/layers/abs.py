"""Abs (spec model-format §3.3.17)."""
from __future__ import annotations

import numpy as np

from .base import LayerType, NoParams, Value, register


@register
class Abs(LayerType):
    names = ("Abs",)
    enum = 41

    @classmethod
    def forward(cls, p: NoParams, res: None, x: np.ndarray) -> np.ndarray:
        return np.abs(x)

    @classmethod
    def to_onnx(cls, p: NoParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        g.node("Abs", [xs[0].name], ys[0])
