"""Tanh (spec model-format §3.3.17)."""
from __future__ import annotations

import numpy as np

from .base import LayerType, NoParams, Value, register


@register
class Tanh(LayerType):
    names = ("Tanh",)
    enum = 39

    @classmethod
    def forward(cls, p: NoParams, res: None, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    @classmethod
    def to_onnx(cls, p: NoParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        g.node("Tanh", [xs[0].name], ys[0])
