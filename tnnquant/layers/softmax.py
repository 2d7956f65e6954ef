"""Softmax / SoftmaxCaffe (spec model-format §3.3.6)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exec import naive_math
from ._util import axis_index
from .base import LayerType, Params, Value, register


@dataclass(frozen=True)
class SoftmaxParams(Params):
    axis: int = 1


@register
class Softmax(LayerType):
    names = ("Softmax", "SoftmaxCaffe", "Softmax_nhwc")
    enum = 21
    Params = SoftmaxParams

    @classmethod
    def forward(cls, p: SoftmaxParams, res: None, x: np.ndarray) -> np.ndarray:
        axis = axis_index(p.axis, x.ndim)
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    @classmethod
    def forward_naive(cls, p: SoftmaxParams, res: None, x: np.ndarray) -> np.ndarray:
        # TNN's NAIVE order: e = expf(f32(x - max)) with glibc's expf, the sum of e along the
        # axis from 0 in order, then e / sum
        axis = axis_index(p.axis, x.ndim)
        x = x.astype(np.float32, copy=False)
        e = naive_math.expf(x - x.max(axis=axis, keepdims=True))
        return np.divide(e, naive_math.seq_sum(e, axis, keepdims=True), out=e)

    @classmethod
    def to_onnx(cls, p: SoftmaxParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        g.node("Softmax", [xs[0].name], ys[0], axis=axis_index(p.axis, xs[0].ndim))
