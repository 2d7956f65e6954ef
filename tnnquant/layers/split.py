"""Split: every output is a copy of the single input (spec model-format §3.3.11)."""
from __future__ import annotations

from .base import LayerType, register


@register
class Split(LayerType):
    names = ("Split",)
    enum = 7
