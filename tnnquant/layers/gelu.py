"""GELU: 0.5 * x * (1 + erf(x / sqrt(2))) (spec model-format §3.1, enum 327).

onnx2tnn writes one word, ``approximation`` (1 when it fused the tanh form); TNN's CPU kernels
compute the erf form whatever it says."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import LayerType, Params, Value, register

# erfc(z) = t * exp(-z^2 + P(t)), t = 1 / (1 + z / 2), z >= 0: the Chebyshev fit of Numerical
# Recipes (Press et al., §6.2), fractional error below 1.2e-7 everywhere; numpy has no erf
_ERFC_COEFFS = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807,
                -1.13520398, 1.48851587, -0.82215223, 0.17087277)


def erf(x: np.ndarray) -> np.ndarray:
    """erf in float64, within 1.2e-7 of the true value relative to erfc."""
    z = np.abs(x.astype(np.float64))
    t = 1 / (1 + 0.5 * z)
    poly = np.polynomial.polynomial.polyval(t, _ERFC_COEFFS)
    erfc = t * np.exp(-z * z + poly)
    return np.sign(x) * (1 - erfc)


@dataclass(frozen=True)
class GELUParams(Params):
    approximation: int = 0


@register
class GELU(LayerType):
    names = ("GELU",)
    enum = 327
    Params = GELUParams

    @classmethod
    def forward(cls, p: GELUParams, res: None, x: np.ndarray) -> np.ndarray:
        wide = x.astype(np.float64)
        return (0.5 * wide * (1 + erf(wide / np.sqrt(2)))).astype(np.float32)

    @classmethod
    def to_onnx(cls, p: GELUParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        """The erf form from ONNX's Erf (float32 there: float tolerance)."""
        x = xs[0].name
        erf_term = g.node("Erf", [g.node("Mul", [x, g.const(np.float32(1 / np.sqrt(2)))])])
        half_x = g.node("Mul", [x, g.const(np.float32(0.5))])
        g.node("Mul", [half_x, g.node("Add", [erf_term, g.const(np.float32(1))])], ys[0])
