"""BiasAdd: adds a constant per-channel bias (spec model-format §2.5)."""
from __future__ import annotations

import numpy as np

from ._resources import ElementResource
from ._util import channel_vector
from .base import LayerType, NoParams, register


@register
class BiasAdd(LayerType):
    names = ("BiasAdd", "QuantizedBiasAdd", "QuantizedSum")
    enum = 54
    Resource = ElementResource

    @classmethod
    def forward(cls, p: NoParams, res: ElementResource, x: np.ndarray) -> np.ndarray:
        return x + channel_vector(res.element.data, x, "bias")
