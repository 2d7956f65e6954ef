"""Dropout: identity at inference."""
from __future__ import annotations

import numpy as np

from .base import LayerType, NoParams, Value, register


@register
class Dropout(LayerType):
    names = ("Dropout",)
    enum = 11

    @classmethod
    def forward(cls, p: NoParams, res: None, x: np.ndarray) -> np.ndarray:
        return x

    @classmethod
    def to_onnx(cls, p: NoParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        g.node("Identity", [xs[0].name], ys[0])
