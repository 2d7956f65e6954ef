"""Split: every output is a copy of the single input (spec model-format §3.3.11)."""
from __future__ import annotations

import numpy as np

from .base import LayerType, NoParams, register


@register
class Split(LayerType):
    names = ("Split",)
    enum = 7

    @classmethod
    def forward(cls, p: NoParams, res: None, x: np.ndarray) -> np.ndarray:
        # TNN copies the input to every output; the executor hands one array to all of them
        return x
