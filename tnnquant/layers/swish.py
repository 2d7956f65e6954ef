"""Swish: x * sigmoid(x) (spec model-format §3.1, enum 401)."""
from __future__ import annotations

import numpy as np

from ..exec import naive_math
from .base import LayerType, NoParams, Value, register
from .sigmoid import sigmoid, sigmoid_onnx


@register
class Swish(LayerType):
    names = ("Swish",)
    enum = 401

    @classmethod
    def forward(cls, p: NoParams, res: None, x: np.ndarray) -> np.ndarray:
        # same evaluation order as the fused conv activation 256: (1/(1+exp(-x))) * x (int8 §14)
        return sigmoid(x) * x

    @classmethod
    def forward_naive(cls, p: NoParams, res: None, x: np.ndarray) -> np.ndarray:
        # TNN's NAIVE Swish computes in double: f32(x / (1.0 + exp(-x))). (A Swish fused into a
        # convolution is the conv's activation 256, a float formula.)
        return naive_math.swish_f64(x)

    @classmethod
    def to_onnx(cls, p: NoParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        g.node("Mul", [sigmoid_onnx(g, xs[0].name), xs[0].name], ys[0])
