"""Sigmoid (spec model-format §3.3.17)."""
from __future__ import annotations

import numpy as np

from ..exec import naive_math
from .base import LayerType, NoParams, Value, register


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` as TNN evaluates it (int8 §14); exp overflow gives 0 silently."""
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


@register
class Sigmoid(LayerType):
    names = ("Sigmoid",)
    quantized_names = ("QuantizedSigmoid",)
    enum = 23

    @classmethod
    def forward(cls, p: NoParams, res: None, x: np.ndarray) -> np.ndarray:
        return sigmoid(x)

    @classmethod
    def forward_naive(cls, p: NoParams, res: None, x: np.ndarray) -> np.ndarray:
        # f32(1 / f32(1 + expf(-x))) with glibc's expf
        return naive_math.sigmoid(x)

    @classmethod
    def to_onnx(cls, p: NoParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        g.node("Sigmoid", [xs[0].name], ys[0])
