"""Unsqueeze (spec model-format §3.3.27)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import LayerType, Params, Value, counted, register


@dataclass(frozen=True)
class UnsqueezeParams(Params):
    axes: tuple[int, ...] = counted()


@register
class Unsqueeze(LayerType):
    names = ("Unsqueeze",)
    enum = 164
    Params = UnsqueezeParams

    @classmethod
    def forward(cls, p: UnsqueezeParams, res: None, x: np.ndarray) -> np.ndarray:
        # negative axes count from the end of the output (ONNX semantics)
        return np.expand_dims(x, p.axes)

    @classmethod
    def to_onnx(cls, p: UnsqueezeParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        g.node("Unsqueeze", [xs[0].name, g.ints(p.axes)], ys[0])
