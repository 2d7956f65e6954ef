"""Sub (spec model-format §3.3.4)."""
from __future__ import annotations

import numpy as np

from ._binary import BinaryLayer
from .base import register


@register
class Sub(BinaryLayer):
    names = ("Sub",)
    enum = 108
    op = np.subtract
    onnx_op = "Sub"
