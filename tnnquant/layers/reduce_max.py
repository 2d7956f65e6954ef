"""ReduceMax (spec model-format §3.3.26)."""
from __future__ import annotations

import numpy as np

from ._reduce import ReduceLayer
from .base import register


@register
class ReduceMax(ReduceLayer):
    names = ("ReduceMax",)
    enum = 177
    reduce = staticmethod(np.max)
    onnx_op = "ReduceMax"
