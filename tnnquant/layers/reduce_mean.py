"""ReduceMean (spec model-format §3.3.26)."""
from __future__ import annotations

import numpy as np

from ._reduce import ReduceLayer
from .base import register


@register
class ReduceMean(ReduceLayer):
    names = ("ReduceMean",)
    enum = 169
    reduce = staticmethod(np.mean)
    onnx_op = "ReduceMean"
