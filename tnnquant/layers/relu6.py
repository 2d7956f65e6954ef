"""ReLU6: clamp to [0, 6] (spec model-format §3.3.17)."""
from __future__ import annotations

import numpy as np

from .base import LayerType, NoParams, register


@register
class ReLU6(LayerType):
    names = ("ReLU6", "Relu6")
    enum = 125

    @classmethod
    def forward(cls, p: NoParams, res: None, x: np.ndarray) -> np.ndarray:
        return np.minimum(np.maximum(x, 0), 6)
