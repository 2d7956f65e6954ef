"""BiasAdd: adds a constant per-channel bias (spec model-format §2.5)."""
from __future__ import annotations

import numpy as np

from ._resources import ElementResource
from ._util import channel_vector
from .base import LayerType, NoParams, Value, register


@register
class BiasAdd(LayerType):
    names = ("BiasAdd", "QuantizedBiasAdd", "QuantizedSum")
    enum = 54
    Resource = ElementResource

    @classmethod
    def forward(cls, p: NoParams, res: ElementResource, x: np.ndarray) -> np.ndarray:
        return x + channel_vector(res.element.data, x, "bias")

    @classmethod
    def to_onnx(cls, p: NoParams, res: ElementResource, g, xs: list[Value],
                ys: list[str]) -> None:
        x = xs[0]
        bias = channel_vector(res.element.data, np.zeros(x.shape, np.float32), "bias")
        g.node("Add", [x.name, g.const(bias)], ys[0])
