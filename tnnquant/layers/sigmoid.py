"""Sigmoid (spec model-format §3.3.17)."""
from __future__ import annotations

from .base import LayerType, register


@register
class Sigmoid(LayerType):
    names = ("Sigmoid",)
    quantized_names = ("QuantizedSigmoid",)
    enum = 23
