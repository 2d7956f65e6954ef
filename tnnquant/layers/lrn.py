"""LRN (spec model-format §3.3.24)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, register, required


@dataclass(frozen=True)
class LRNParams(Params):
    alpha: float = required(0.0)
    beta: float = required(0.0)
    bias: float = required(0.0)
    size: int = required()


@register
class LRN(LayerType):
    names = ("LRN",)
    enum = 12
    Params = LRNParams
