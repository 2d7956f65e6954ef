"""Slice / SliceCaffe: recognised names without codec or implementation in TNN (spec §3.3.11)."""
from __future__ import annotations

from .base import LayerType, register


@register
class Slice(LayerType):
    names = ("Slice", "SliceCaffe")
    enum = 102
