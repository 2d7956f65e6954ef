"""LeakyRelu: TNN has no codec nor CPU kernel for it (spec model-format §3.1); it loads and round-trips only."""
from __future__ import annotations

from .base import LayerType, register


@register
class LeakyRelu(LayerType):
    names = ("LeakyRelu",)
    enum = 40
