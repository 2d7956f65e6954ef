"""Abs (spec model-format §3.3.17)."""
from __future__ import annotations

from .base import LayerType, register


@register
class Abs(LayerType):
    names = ("Abs",)
    enum = 41
