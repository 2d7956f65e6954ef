"""HardSigmoid: clamp(alpha * x + beta, 0, 1) (spec model-format §3.3.18).

TNN's defaults are alpha 1.0 and beta 0.0, not ONNX's."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import LayerType, Params, Value, register


@dataclass(frozen=True)
class HardSigmoidParams(Params):
    alpha: float = 1.0
    beta: float = 0.0


def hard_sigmoid(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    return np.clip(np.float32(alpha) * x + np.float32(beta), 0, 1)


def hard_sigmoid_onnx_exact(alpha: float, beta: float) -> bool:
    """Whether ``hard_sigmoid_onnx`` computes what ``hard_sigmoid`` does: the export is the
    same f32 steps (Mul, Add, Clip), and with finite factors a finite input meets no NaN that
    Clip could treat differently."""
    return bool(np.isfinite([alpha, beta]).all())


def hard_sigmoid_onnx(g, x: str, alpha: float, beta: float, out: str | int = 1) -> str:
    """``hard_sigmoid`` as ONNX nodes, in its f32 steps (ONNX HardSigmoid may fuse the
    multiply-add, one rounding fewer than TNN)."""
    y = g.node("Add", [g.node("Mul", [g.const(np.float32(alpha)), x]), g.const(np.float32(beta))])
    return g.node("Clip", [y, g.const(np.float32(0)), g.const(np.float32(1))], out)


@register
class HardSigmoid(LayerType):
    names = ("HardSigmoid",)
    enum = 172
    Params = HardSigmoidParams

    @classmethod
    def forward(cls, p: HardSigmoidParams, res: None, x: np.ndarray) -> np.ndarray:
        return hard_sigmoid(x, p.alpha, p.beta)

    @classmethod
    def exact_onnx(cls, p: HardSigmoidParams) -> bool:
        return hard_sigmoid_onnx_exact(p.alpha, p.beta)

    @classmethod
    def value_bound(cls, p: HardSigmoidParams, res: None, in_bounds: list[float | None]
                    ) -> float | None:
        return None if None in in_bounds else 1.0   # clamped to [0, 1]

    @classmethod
    def to_onnx(cls, p: HardSigmoidParams, res: None, g, xs: list[Value],
                ys: list[str]) -> None:
        hard_sigmoid_onnx(g, xs[0].name, p.alpha, p.beta, ys[0])
