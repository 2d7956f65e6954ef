"""Expand (spec model-format §3.3.27)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, counted, register


@dataclass(frozen=True)
class ExpandParams(Params):
    shape: tuple[int, ...] = counted()


@register
class Expand(LayerType):
    names = ("Expand",)
    enum = 304
    Params = ExpandParams
