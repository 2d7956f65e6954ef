"""BatchNormCxx: y = x * scale[c] + bias[c] (spec model-format §3.3.14)."""
from __future__ import annotations

from ._resources import BatchNormResource
from .base import LayerType, register


@register
class BatchNormCxx(LayerType):
    names = ("BatchNormCxx", "BatchNormalization", "BatchNormCxx_nhwc")
    enum = 2
    Resource = BatchNormResource
