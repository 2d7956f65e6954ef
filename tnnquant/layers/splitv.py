"""SplitV: consecutive slices along an axis (spec model-format §3.3.11)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, counted, register


@dataclass(frozen=True)
class SplitVParams(Params):
    axis: int = 0
    slices: tuple[int, ...] = counted()


@register
class SplitV(LayerType):
    names = ("SplitV",)
    enum = 153
    Params = SplitVParams
