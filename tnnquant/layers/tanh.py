"""Tanh (spec model-format §3.3.17)."""
from __future__ import annotations

import numpy as np

from .base import LayerType, NoParams, register


@register
class Tanh(LayerType):
    names = ("Tanh",)
    enum = 39

    @classmethod
    def forward(cls, p: NoParams, res: None, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)
