"""BatchNormCxx: y = x * scale[c] + bias[c] (spec model-format §3.3.14)."""
from __future__ import annotations

import numpy as np

from ._resources import BatchNormResource
from ._util import channel_vector
from .base import LayerType, NoParams, register


@register
class BatchNormCxx(LayerType):
    names = ("BatchNormCxx", "BatchNormalization", "BatchNormCxx_nhwc")
    enum = 2
    Resource = BatchNormResource

    @classmethod
    def forward(cls, p: NoParams, res: BatchNormResource, x: np.ndarray) -> np.ndarray:
        # f32(f32(x * scale[c]) + bias[c]) (int8 §14); an empty bias reads as zeros (spec §2.5)
        scale = channel_vector(res.scale.data, x, "scale")
        bias = channel_vector(res.bias.data, x, "bias") if res.bias.size else np.float32(0)
        return x * scale + bias
