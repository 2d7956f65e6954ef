"""Permute (spec model-format §3.3.9)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, counted, register


@dataclass(frozen=True)
class PermuteParams(Params):
    orders: tuple[int, ...] = counted(required=True)   # output dim i = input dim orders[i]


@register
class Permute(LayerType):
    names = ("Permute",)
    quantized_names = ("QuantizedPermute",)
    enum = 32
    Params = PermuteParams
