"""Permute (spec model-format §3.3.9)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Int8Context, LayerType, Params, Value, counted, register


@dataclass(frozen=True)
class PermuteParams(Params):
    orders: tuple[int, ...] = counted(required=True)   # output dim i = input dim orders[i]


def _orders(p: PermuteParams, ndim: int) -> list[int]:
    if sorted(p.orders) != list(range(ndim)):
        raise ValueError(f"orders {list(p.orders)} are not a permutation of the {ndim} input "
                         f"dims")
    return list(p.orders)


@register
class Permute(LayerType):
    names = ("Permute",)
    quantized_names = ("QuantizedPermute",)
    enum = 32
    Params = PermuteParams

    @classmethod
    def forward(cls, p: PermuteParams, res: None, x: np.ndarray) -> np.ndarray:
        return np.transpose(x, _orders(p, x.ndim))

    @classmethod
    def exact_onnx(cls, p: PermuteParams) -> bool:
        return True   # data movement

    @classmethod
    def value_bound(cls, p: PermuteParams, res: None, in_bounds: list[float | None]
                    ) -> float | None:
        return in_bounds[0]   # data movement

    @classmethod
    def to_onnx(cls, p: PermuteParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        g.node("Transpose", [xs[0].name], ys[0], perm=_orders(p, xs[0].ndim))

    @classmethod
    def forward_int8(cls, p: PermuteParams, res: None, q: Int8Context,
                     x: np.ndarray) -> np.ndarray:
        return cls.forward(p, res, x)   # pure data movement on the codes (spec int8 §12.9)
