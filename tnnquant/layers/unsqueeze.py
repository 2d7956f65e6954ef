"""Unsqueeze (spec model-format §3.3.27)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, counted, register


@dataclass(frozen=True)
class UnsqueezeParams(Params):
    axes: tuple[int, ...] = counted()


@register
class Unsqueeze(LayerType):
    names = ("Unsqueeze",)
    enum = 164
    Params = UnsqueezeParams
