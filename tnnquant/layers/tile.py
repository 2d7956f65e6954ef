"""Tile / Repeat (spec model-format §3.3.27)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import LayerType, Params, register, rest


@dataclass(frozen=True)
class TileParams(Params):
    reps: tuple[int, ...] = rest()


@register
class Tile(LayerType):
    names = ("Tile", "Repeat")
    enum = 148
    Params = TileParams

    @classmethod
    def forward(cls, p: TileParams, res: None, x: np.ndarray) -> np.ndarray:
        # repeat counts align with the last dims when fewer than the rank (numpy tile)
        if any(r < 0 for r in p.reps):
            raise ValueError(f"negative repeat count in {list(p.reps)}")
        return np.tile(x, p.reps)
