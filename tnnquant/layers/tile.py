"""Tile / Repeat (spec model-format §3.3.27)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, register, rest


@dataclass(frozen=True)
class TileParams(Params):
    reps: tuple[int, ...] = rest()


@register
class Tile(LayerType):
    names = ("Tile", "Repeat")
    enum = 148
    Params = TileParams
