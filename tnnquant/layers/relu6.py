"""ReLU6: clamp to [0, 6] (spec model-format §3.3.17)."""
from __future__ import annotations

from .base import LayerType, register


@register
class ReLU6(LayerType):
    names = ("ReLU6", "Relu6")
    enum = 125
