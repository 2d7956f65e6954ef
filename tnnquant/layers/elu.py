"""Elu (spec model-format §3.3.25)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import LayerType, Params, Value, register


@dataclass(frozen=True)
class EluParams(Params):
    alpha: float = 1.0


@register
class Elu(LayerType):
    names = ("Elu",)
    enum = 132
    Params = EluParams

    @classmethod
    def forward(cls, p: EluParams, res: None, x: np.ndarray) -> np.ndarray:
        # exp of the non-positive part only, so large inputs do not overflow
        negative = np.float32(p.alpha) * (np.exp(np.minimum(x, 0)) - 1)
        return np.where(x > 0, x, negative)

    @classmethod
    def to_onnx(cls, p: EluParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        g.node("Elu", [xs[0].name], ys[0], alpha=p.alpha)
