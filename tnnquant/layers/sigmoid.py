"""Sigmoid (spec model-format §3.3.17)."""
from __future__ import annotations

import numpy as np

from ..exec import naive_math
from .base import LayerType, NoParams, Value, register


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` as TNN evaluates it (int8 §14); exp overflow gives 0 silently."""
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def sigmoid_onnx(g, x: str, out: str | int = 1) -> str:
    """``sigmoid`` as ONNX nodes in its f32 steps. ONNX Sigmoid is approximated in
    onnxruntime to an absolute error of ~1e-7, i.e. far off in relative terms where the
    sigmoid is tiny (YOLOv8n's class scores reach 1e-6, and their blob scales depend on it)."""
    e = g.node("Exp", [g.node("Neg", [x])])
    return g.node("Reciprocal", [g.node("Add", [g.const(np.float32(1)), e])], out)


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
        sigmoid_onnx(g, xs[0].name, ys[0])
