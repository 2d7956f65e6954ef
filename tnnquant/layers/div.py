"""Div (spec model-format §3.3.4)."""
from __future__ import annotations

import numpy as np

from ._binary import BinaryLayer
from .base import register


@register
class Div(BinaryLayer):
    names = ("Div",)
    enum = 175
    op = np.divide
    onnx_op = "Div"
