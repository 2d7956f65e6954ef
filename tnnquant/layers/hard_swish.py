"""HardSwish: x0 * clamp(alpha * x1 + beta, 0, 1) (spec model-format §3.3.18).

TNN's defaults are alpha 1.0 and beta 0.0, not ONNX's."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import LayerType, Params, Value, register
from .hard_sigmoid import hard_sigmoid, hard_sigmoid_onnx, hard_sigmoid_onnx_exact


@dataclass(frozen=True)
class HardSwishParams(Params):
    alpha: float = 1.0
    beta: float = 0.0


@register
class HardSwish(LayerType):
    names = ("HardSwish",)
    enum = 173
    Params = HardSwishParams

    @classmethod
    def forward(cls, p: HardSwishParams, res: None, *xs: np.ndarray) -> np.ndarray:
        # spec §3.3.18: with two inputs the gate is computed from the second one (broadcasting,
        # e.g. a [N,C,1,1] squeeze-excite gate in pplcnet)
        if len(xs) not in (1, 2):
            raise ValueError(f"expected 1 or 2 inputs, got {len(xs)}")
        return xs[0] * hard_sigmoid(xs[-1], p.alpha, p.beta)

    @classmethod
    def exact_onnx(cls, p: HardSwishParams) -> bool:
        return hard_sigmoid_onnx_exact(p.alpha, p.beta)   # then one exact Mul

    @classmethod
    def value_bound(cls, p: HardSwishParams, res: None, in_bounds: list[float | None]
                    ) -> float | None:
        # |x · gate| <= |x| with the gate in [0, 1]; a finite gate needs a bounded input
        return None if None in in_bounds else in_bounds[0]

    @classmethod
    def to_onnx(cls, p: HardSwishParams, res: None, g, xs: list[Value],
                ys: list[str]) -> None:
        if len(xs) not in (1, 2):
            raise ValueError(f"expected 1 or 2 inputs, got {len(xs)}")
        g.node("Mul", [xs[0].name, hard_sigmoid_onnx(g, xs[-1].name, p.alpha, p.beta)], ys[0])
