"""Softmax / SoftmaxCaffe (spec model-format §3.3.6)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._util import axis_index
from .base import LayerType, Params, register


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
