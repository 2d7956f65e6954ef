"""Swish: x * sigmoid(x) (spec model-format §3.1, enum 401)."""
from __future__ import annotations

from .base import LayerType, register


@register
class Swish(LayerType):
    names = ("Swish",)
    enum = 401
