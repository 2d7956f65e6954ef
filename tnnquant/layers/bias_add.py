"""BiasAdd: adds a constant per-channel bias (spec model-format §2.5)."""
from __future__ import annotations

from ._resources import ElementResource
from .base import LayerType, register


@register
class BiasAdd(LayerType):
    names = ("BiasAdd", "QuantizedBiasAdd", "QuantizedSum")
    enum = 54
    Resource = ElementResource
