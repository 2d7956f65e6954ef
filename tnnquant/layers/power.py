"""Power: y = (shift + scale * x) ** exponent (spec model-format §3.3.25)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import LayerType, Params, Value, register


@dataclass(frozen=True)
class PowerParams(Params):
    exponent: float = 1.0
    scale: float = 1.0
    shift: float = 0.0


@register
class Power(LayerType):
    names = ("Power",)
    enum = 69
    Params = PowerParams

    @classmethod
    def forward(cls, p: PowerParams, res: None, x: np.ndarray) -> np.ndarray:
        base = np.float32(p.shift) + np.float32(p.scale) * x
        # C powf: a negative base with a fractional exponent gives nan silently
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return np.power(base, np.float32(p.exponent))

    @classmethod
    def to_onnx(cls, p: PowerParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        scaled = g.node("Mul", [g.const(np.float32(p.scale)), xs[0].name])
        base = g.node("Add", [g.const(np.float32(p.shift)), scaled])
        g.node("Pow", [base, g.const(np.float32(p.exponent))], ys[0])
