"""ReduceSum (spec model-format §3.3.26)."""
from __future__ import annotations

import numpy as np

from ._reduce import ReduceLayer
from .base import register


@register
class ReduceSum(ReduceLayer):
    names = ("ReduceSum", "Reduce_Sum")
    enum = 133
    reduce = staticmethod(np.sum)
    onnx_op = "ReduceSum"
