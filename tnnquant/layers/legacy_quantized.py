"""QuantizedBatchNormCxx / QuantizedMul: legacy int8 types (enum 124) TNN can load but not run."""
from __future__ import annotations

from .base import LayerType, register


@register
class LegacyQuantizedOp(LayerType):
    names = ("QuantizedBatchNormCxx", "QuantizedMul")
    enum = 124
