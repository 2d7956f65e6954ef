"""Mul (spec model-format §3.3.4)."""
from __future__ import annotations

import numpy as np

from ._binary import BinaryLayer
from .base import register


@register
class Mul(BinaryLayer):
    names = ("Mul",)
    enum = 42
    op = np.multiply
    onnx_op = "Mul"
    variadic = True
