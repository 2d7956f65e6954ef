"""InstBatchNormCxx: instance normalisation with per-channel scale/bias (spec §3.3.28)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._resources import BatchNormResource
from ._util import channel_vector, standardize
from .base import LayerType, Params, Value, register


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

    @classmethod
    def to_onnx(cls, p: InstBatchNormParams, res: BatchNormResource, g, xs: list[Value],
                ys: list[str]) -> None:
        """ONNX InstanceNormalization, its scale and bias one value per channel (``forward``
        checked their sizes, 1 or one per channel, when the backend inferred the shapes)."""
        x = xs[0]
        if x.ndim < 3:
            raise ValueError(f"instance normalisation of a {x.ndim}-d input")

        def per_channel(values: np.ndarray) -> np.ndarray:
            return np.broadcast_to(np.asarray(values, np.float32).reshape(-1), (x.shape[1],))

        scale = per_channel(res.scale.data)
        bias = per_channel(res.bias.data) if res.bias.size else np.zeros_like(scale)
        g.node("InstanceNormalization", [x.name, g.const(scale), g.const(bias)], ys[0],
               epsilon=float(p.eps))
