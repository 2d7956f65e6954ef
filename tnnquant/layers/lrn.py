"""LRN (spec model-format §3.3.24)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import LayerType, Params, Value, register, required


@dataclass(frozen=True)
class LRNParams(Params):
    alpha: float = required(0.0)
    beta: float = required(0.0)
    bias: float = required(0.0)
    size: int = required()


@register
class LRN(LayerType):
    names = ("LRN",)
    enum = 12
    Params = LRNParams

    @classmethod
    def forward(cls, p: LRNParams, res: None, x: np.ndarray) -> np.ndarray:
        # across channels: sum of squares over [c - (size-1)//2, c + size//2], as in Caffe/ONNX
        if p.size <= 0 or x.ndim < 2:
            raise ValueError(f"size {p.size} on a {x.ndim}-d input")
        before = (p.size - 1) // 2
        widths = [(0, 0), (before, p.size - 1 - before)] + [(0, 0)] * (x.ndim - 2)
        squares = np.pad(np.square(x), widths)
        channels = x.shape[1]
        window = sum(squares[:, k:k + channels] for k in range(p.size))
        denom = np.float32(p.bias) + np.float32(p.alpha / p.size) * window
        return x / np.power(denom, np.float32(p.beta))

    @classmethod
    def to_onnx(cls, p: LRNParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        """ONNX LRN: the same window, ``bias + alpha/size · Σ x²`` to the power beta."""
        if p.size <= 0 or p.size % 2 == 0 or xs[0].ndim != 4:
            # onnxruntime's LRN takes odd sizes and NCHW only; the rest run on numpy
            raise ValueError(f"size {p.size} on a {xs[0].ndim}-d input")
        g.node("LRN", [xs[0].name], ys[0], alpha=float(p.alpha), beta=float(p.beta),
               bias=float(p.bias), size=int(p.size))
