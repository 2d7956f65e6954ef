"""Dropout: identity at inference."""
from __future__ import annotations

from .base import LayerType, register


@register
class Dropout(LayerType):
    names = ("Dropout",)
    enum = 11
