"""InstBatchNormCxx: instance normalisation with per-channel scale/bias (spec §3.3.28)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._resources import BatchNormResource
from ._util import channel_vector, standardize
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

    @classmethod
    def forward(cls, p: InstBatchNormParams, res: BatchNormResource,
                x: np.ndarray) -> np.ndarray:
        # per sample and channel over the spatial dims, then the channel's scale and bias
        y = standardize(x, tuple(range(2, x.ndim)), p.eps)
        y = y * channel_vector(res.scale.data, x, "scale")
        if res.bias.size:   # an empty bias reads as zeros (spec §2.5)
            y = y + channel_vector(res.bias.data, x, "bias")
        return y
