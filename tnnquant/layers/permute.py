"""Permute (spec model-format §3.3.9)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Int8Context, LayerType, Params, counted, register


@dataclass(frozen=True)
class PermuteParams(Params):
    orders: tuple[int, ...] = counted(required=True)   # output dim i = input dim orders[i]


@register
class Permute(LayerType):
    names = ("Permute",)
    quantized_names = ("QuantizedPermute",)
    enum = 32
    Params = PermuteParams

    @classmethod
    def forward(cls, p: PermuteParams, res: None, x: np.ndarray) -> np.ndarray:
        if sorted(p.orders) != list(range(x.ndim)):
            raise ValueError(f"orders {list(p.orders)} are not a permutation of the "
                             f"{x.ndim} input dims")
        return np.transpose(x, p.orders)

    @classmethod
    def forward_int8(cls, p: PermuteParams, res: None, q: Int8Context,
                     x: np.ndarray) -> np.ndarray:
        return cls.forward(p, res, x)   # pure data movement on the codes (spec int8 §12.9)
