"""ReLU (spec model-format §3.3.17; int8 §9, §12.8)."""
from __future__ import annotations

import numpy as np

from .base import Int8Context, LayerType, NoParams, Value, register


@register
class ReLU(LayerType):
    names = ("ReLU", "Relu")
    quantized_names = ("QuantizedReLU",)
    enum = 5
    collects_stats = True

    @classmethod
    def forward(cls, p: NoParams, res: None, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0)

    @classmethod
    def to_onnx(cls, p: NoParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        g.node("Relu", [xs[0].name], ys[0])

    @classmethod
    def forward_int8(cls, p: NoParams, res: None, q: Int8Context, x: np.ndarray) -> np.ndarray:
        # max(q, 0) on the codes; the input shares the output's scale (spec int8 §9, §12.8)
        return np.maximum(x, np.int8(0))
