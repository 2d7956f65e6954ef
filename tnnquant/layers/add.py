"""Add (spec model-format §3.3.4)."""
from __future__ import annotations

import numpy as np

from ._binary import BinaryLayer
from .base import register


@register
class Add(BinaryLayer):
    names = ("Add",)
    quantized_names = ("QuantizedAdd",)
    enum = 38
    op = np.add
    variadic = True
    collects_stats = True
    quantizable = True
