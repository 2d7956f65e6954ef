"""Flatten (spec model-format §3.3.8)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, register, required


@dataclass(frozen=True)
class FlattenParams(Params):
    axis: int = required()


@register
class Flatten(LayerType):
    names = ("Flatten", "Flatten_nhwc")
    enum = 10
    Params = FlattenParams
