"""Maximum (spec model-format §3.3.4)."""
from __future__ import annotations

import numpy as np

from ._binary import BinaryLayer
from .base import register


@register
class Maximum(BinaryLayer):
    names = ("Maximum",)
    enum = 137
    op = np.maximum
    onnx_op = "Max"
    variadic = True
