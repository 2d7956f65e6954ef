"""Tanh (spec model-format §3.3.17)."""
from __future__ import annotations

from .base import LayerType, register


@register
class Tanh(LayerType):
    names = ("Tanh",)
    enum = 39
