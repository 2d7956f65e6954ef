"""ReLU6: clamp to [0, 6] (spec model-format §3.3.17; int8 §12.8)."""
from __future__ import annotations

import numpy as np

from .base import Int8Context, LayerType, NoParams, Value, register


@register
class ReLU6(LayerType):
    names = ("ReLU6", "Relu6")
    enum = 125

    @classmethod
    def forward(cls, p: NoParams, res: None, x: np.ndarray) -> np.ndarray:
        return np.minimum(np.maximum(x, 0), 6)

    @classmethod
    def to_onnx(cls, p: NoParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        g.node("Clip", [xs[0].name, g.const(np.float32(0)), g.const(np.float32(6))], ys[0])

    @classmethod
    def forward_int8(cls, p: NoParams, res: None, q: Int8Context, x: np.ndarray) -> np.ndarray:
        # TNN's int8 ReLU6 (NAIVE; x86 falls back to it) clamps the *codes* to [0, 6], not to
        # 6/scale: a TNN bug, reproduced (spec int8 §12.8, §13)
        return np.clip(x, np.int8(0), np.int8(6))
