"""Flatten (spec model-format §3.3.8)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Int8Context, LayerType, Params, Value, register, required


@dataclass(frozen=True)
class FlattenParams(Params):
    axis: int = required()


def _axis(p: FlattenParams, ndim: int) -> int:
    axis = p.axis + ndim if p.axis < 0 else p.axis
    if not 0 <= axis <= ndim:
        raise ValueError(f"axis {p.axis} is out of range for a {ndim}-d input")
    return axis


@register
class Flatten(LayerType):
    names = ("Flatten", "Flatten_nhwc")
    enum = 10
    Params = FlattenParams

    @classmethod
    def forward(cls, p: FlattenParams, res: None, x: np.ndarray) -> np.ndarray:
        # output [prod(dims[:axis]), prod(dims[axis:])] (spec §3.3.8); axis == rank is allowed
        axis = _axis(p, x.ndim)
        return x.reshape(int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:])))

    @classmethod
    def exact_onnx(cls, p: FlattenParams) -> bool:
        return True   # data movement

    @classmethod
    def value_bound(cls, p: FlattenParams, res: None, in_bounds: list[float | None]
                    ) -> float | None:
        return in_bounds[0]   # data movement

    @classmethod
    def to_onnx(cls, p: FlattenParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        g.node("Flatten", [xs[0].name], ys[0], axis=_axis(p, xs[0].ndim))

    @classmethod
    def forward_int8(cls, p: FlattenParams, res: None, q: Int8Context,
                     x: np.ndarray) -> np.ndarray:
        return cls.forward(p, res, x)   # pure data movement on the codes (spec int8 §12.9)
