"""InstBatchNormCxx: instance normalisation with per-channel scale/bias (spec §3.3.28)."""
from __future__ import annotations

from dataclasses import dataclass

from ._resources import BatchNormResource
from .base import LayerType, Params, register


@dataclass(frozen=True)
class InstBatchNormParams(Params):
    channels: int = 0
    eps: float = 1e-5


@register
class InstBatchNormCxx(LayerType):
    names = ("InstBatchNormCxx",)
    enum = 43
    Params = InstBatchNormParams
    Resource = BatchNormResource
