"""Add (spec model-format §3.3.4; int8 §12.5, §13)."""
from __future__ import annotations

import numpy as np

from ..exec.int8_math import requantize_add
from ._binary import BinaryLayer, BinaryParams
from ._resources import ElementResource
from .base import Int8Context, register


@register
class Add(BinaryLayer):
    names = ("Add",)
    quantized_names = ("QuantizedAdd",)
    enum = 38
    op = np.add
    onnx_op = "Add"
    variadic = True
    collects_stats = True
    quantizable = True

    @classmethod
    def forward_int8(cls, p: BinaryParams, res: ElementResource | None, q: Int8Context,
                     *xs: np.ndarray) -> np.ndarray:
        """Dequantize, add, requantize: inputs may have different scales (spec int8 §12.5);
        identical shapes, no broadcasting, no constant operand."""
        if len(xs) < 2:
            raise ValueError("the int8 Add needs two int8 blob inputs (it has no constant "
                             "operand path)")
        if any(x.shape != xs[0].shape for x in xs):
            raise ValueError(f"the int8 Add does not broadcast: input shapes "
                             f"{', '.join(str(x.shape) for x in xs)}")
        return requantize_add(list(xs), [s.scale for s in q.inputs], q.outputs[0].scale,
                              [s.zero_points for s in q.inputs], q.outputs[0].zero_points,
                              q.device)
