"""BatchNormCxx: y = x * scale[c] + bias[c] (spec model-format §3.3.14)."""
from __future__ import annotations

import numpy as np

from ._resources import BatchNormResource
from ._util import channel_vector
from .base import LayerType, NoParams, Value, register


@register
class BatchNormCxx(LayerType):
    names = ("BatchNormCxx", "BatchNormalization", "BatchNormCxx_nhwc")
    enum = 2
    Resource = BatchNormResource

    @classmethod
    def forward(cls, p: NoParams, res: BatchNormResource, x: np.ndarray) -> np.ndarray:
        # f32(f32(x * scale[c]) + bias[c]) (int8 §14); an empty bias reads as zeros (spec §2.5)
        scale, bias = _scale_bias(res, x)
        return x * scale + bias

    @classmethod
    def to_onnx(cls, p: NoParams, res: BatchNormResource, g, xs: list[Value],
                ys: list[str]) -> None:
        scale, bias = _scale_bias(res, np.broadcast_to(np.float32(0), xs[0].shape))
        g.node("Add", [g.node("Mul", [xs[0].name, g.const(scale)]), g.const(bias)], ys[0])


def _scale_bias(res: BatchNormResource, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel scale and bias shaped for ``x``; an empty bias reads as zeros (§2.5)."""
    scale = channel_vector(res.scale.data, x, "scale")
    bias = channel_vector(res.bias.data, x, "bias") if res.bias.size else np.float32(0)
    return scale, np.asarray(bias, np.float32)
