"""Abs (spec model-format §3.3.17)."""
from __future__ import annotations

import numpy as np

from .base import LayerType, NoParams, register


@register
class Abs(LayerType):
    names = ("Abs",)
    enum = 41

    @classmethod
    def forward(cls, p: NoParams, res: None, x: np.ndarray) -> np.ndarray:
        return np.abs(x)
