"""Squeeze (spec model-format §3.3.27)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import LayerType, Params, counted, register


@dataclass(frozen=True)
class SqueezeParams(Params):
    axes: tuple[int, ...] = counted()


@register
class Squeeze(LayerType):
    names = ("Squeeze",)
    enum = 118
    Params = SqueezeParams

    @classmethod
    def forward(cls, p: SqueezeParams, res: None, x: np.ndarray) -> np.ndarray:
        # no axes: every dimension of size 1 (ONNX semantics)
        return np.squeeze(x, axis=p.axes or None)
