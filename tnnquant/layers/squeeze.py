"""Squeeze (spec model-format §3.3.27)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, counted, register


@dataclass(frozen=True)
class SqueezeParams(Params):
    axes: tuple[int, ...] = counted()


@register
class Squeeze(LayerType):
    names = ("Squeeze",)
    enum = 118
    Params = SqueezeParams
