"""Minimum (spec model-format §3.3.4)."""
from __future__ import annotations

import numpy as np

from ._binary import BinaryLayer
from .base import register


@register
class Minimum(BinaryLayer):
    names = ("Minimum",)
    enum = 140
    op = np.minimum
    onnx_op = "Min"
    variadic = True
