"""ReLU (spec model-format §3.3.17; int8 §9, §12.8)."""
from __future__ import annotations

from .base import LayerType, register


@register
class ReLU(LayerType):
    names = ("ReLU", "Relu")
    quantized_names = ("QuantizedReLU",)
    enum = 5
    collects_stats = True
