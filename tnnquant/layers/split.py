"""Split: every output is a copy of the single input (spec model-format §3.3.11)."""
from __future__ import annotations

import numpy as np

from .base import LayerType, NoParams, Value, register


@register
class Split(LayerType):
    names = ("Split",)
    enum = 7

    @classmethod
    def forward(cls, p: NoParams, res: None, x: np.ndarray) -> np.ndarray:
        # TNN copies the input to every output; the executor hands one array to all of them
        return x

    @classmethod
    def to_onnx(cls, p: NoParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        for y in ys:
            g.node("Identity", [xs[0].name], y)
