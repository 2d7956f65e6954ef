"""Normalize: Lp normalisation (spec model-format §3.3.22)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, register


@dataclass(frozen=True)
class NormalizeParams(Params):
    across_spatial: int = 0
    epsilon: float = 1e-12
    channel_shared: int = 1
    axis: int = 1
    p: int = 2


@register
class Normalize(LayerType):
    names = ("Normalize",)
    enum = 45
    Params = NormalizeParams
