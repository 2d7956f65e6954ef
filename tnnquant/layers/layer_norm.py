"""LayerNorm (spec model-format §3.3.28): scale and bias come from inputs."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, register


@dataclass(frozen=True)
class LayerNormParams(Params):
    reduce_dims_size: int = 0
    eps: float = 1e-5


@register
class LayerNorm(LayerType):
    names = ("LayerNorm",)
    enum = 326
    Params = LayerNormParams
