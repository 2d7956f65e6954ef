"""Tile / Repeat (spec model-format §3.3.27)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import LayerType, Params, Value, register, rest


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

    @classmethod
    def to_onnx(cls, p: TileParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        """ONNX Tile, which wants one count per dim: counts align with the last dims, and
        extra counts tile new leading dims of size 1 (as numpy's tile does)."""
        x = xs[0]
        name, ndim = x.name, x.ndim
        if len(p.reps) > ndim:
            name = g.node("Unsqueeze", [name, g.ints(range(len(p.reps) - ndim))])
            ndim = len(p.reps)
        g.node("Tile", [name, g.ints((1,) * (ndim - len(p.reps)) + tuple(p.reps))], ys[0])
