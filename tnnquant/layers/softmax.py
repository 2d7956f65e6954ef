"""Softmax / SoftmaxCaffe (spec model-format §3.3.6)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, register


@dataclass(frozen=True)
class SoftmaxParams(Params):
    axis: int = 1


@register
class Softmax(LayerType):
    names = ("Softmax", "SoftmaxCaffe", "Softmax_nhwc")
    enum = 21
    Params = SoftmaxParams
