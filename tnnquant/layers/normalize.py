"""Normalize: Lp normalisation (spec model-format §3.3.22)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import LayerType, Params, Value, register


@dataclass(frozen=True)
class NormalizeParams(Params):
    across_spatial: int = 0
    epsilon: float = 1e-12
    channel_shared: int = 1
    axis: int = 1
    p: int = 2


@register
class Normalize(LayerType):
    names = ("Normalize",)
    enum = 45
    Params = NormalizeParams

    @classmethod
    def forward(cls, p: NormalizeParams, res: None, x: np.ndarray) -> np.ndarray:
        # only the per-position L1/L2 norm across the channels is implemented
        if p.across_spatial != 0 or p.axis != 1 or p.p not in (1, 2):
            raise ValueError(f"across_spatial={p.across_spatial}, axis={p.axis}, p={p.p} is not "
                             f"supported (only 0, 1, and p 1 or 2)")
        if p.p == 1:
            norm = np.abs(x).sum(axis=1, keepdims=True)
        else:
            norm = np.sqrt(np.square(x).sum(axis=1, keepdims=True))
        # x / max(norm, eps), as F.normalize exported to ONNX (ReduceL2, Clip min=eps, Div)
        # computes it; the spec does not say where TNN applies eps
        return x / np.maximum(norm, np.float32(p.epsilon))

    @classmethod
    def to_onnx(cls, p: NormalizeParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        x = xs[0].name
        norm = g.node("ReduceL1" if p.p == 1 else "ReduceL2", [x], axes=[1], keepdims=1)
        g.node("Div", [x, g.node("Max", [norm, g.const(np.float32(p.epsilon))])], ys[0])
