"""Power: y = (shift + scale * x) ** exponent (spec model-format §3.3.25)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, register


@dataclass(frozen=True)
class PowerParams(Params):
    exponent: float = 1.0
    scale: float = 1.0
    shift: float = 0.0


@register
class Power(LayerType):
    names = ("Power",)
    enum = 69
    Params = PowerParams
