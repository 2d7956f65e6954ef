"""Clip (spec model-format §3.3.19): a missing bound is 0.0, not +-inf."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import LayerType, Params, Value, register


@dataclass(frozen=True)
class ClipParams(Params):
    min: float = 0.0
    max: float = 0.0


@register
class Clip(LayerType):
    names = ("Clip",)
    enum = 171
    Params = ClipParams

    @classmethod
    def forward(cls, p: ClipParams, res: None, x: np.ndarray) -> np.ndarray:
        # TNN: a missing bound is 0.0, not +-inf (spec §3.3.19); the lower bound applies
        # first, so min > max yields max
        return np.minimum(np.maximum(x, np.float32(p.min)), np.float32(p.max))

    @classmethod
    def to_onnx(cls, p: ClipParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        low = g.node("Max", [xs[0].name, g.const(np.float32(p.min))])
        g.node("Min", [low, g.const(np.float32(p.max))], ys[0])
