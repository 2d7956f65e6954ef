"""Add / Sub / Mul / Div with numpy broadcasting (onnx2tnn's multidir-broadcast converters).

Two blob operands: ``weight_input_index -1``. One constant operand: it becomes the layer's
resource with its ONNX dims (left-padded with 1s to the blob's rank, as onnx2tnn stores them) and ``weight_input_index`` says on which side it stands. A Div by a
constant becomes a Mul by its float32 reciprocal, as onnx2tnn writes it.
"""
from __future__ import annotations

import numpy as np

from ...layers._binary import BinaryParams
from ...layers._resources import ElementResource
from .model import Node
from .registry import ONNX_OPS, Context, buffer

_TYPES = {"Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div"}


@ONNX_OPS.register(*_TYPES)
def binary(node: Node, ctx: Context) -> None:
    if len(node.inputs) != 2:
        raise ctx.fail(node, f"expected 2 inputs, got {len(node.inputs)}")
    consts = [ctx.const(b) for b in node.inputs]
    if all(c is None for c in consts):
        ctx.emit(node, _TYPES[node.op], BinaryParams(-1), inputs=node.inputs)
        return
    index = 0 if consts[0] is not None else 1
    value = consts[index]
    if value.dtype.kind not in "fiub":
        raise ctx.fail(node, f"constant operand of type {value.dtype} is not numeric")
    layer_type = _TYPES[node.op]
    value = value.astype(np.float32)
    if node.op == "Div" and index == 1:
        layer_type = "Mul"
        with np.errstate(divide="ignore"):
            value = (np.float32(1) / value).astype(np.float32)
    # onnx2tnn stores the constant's dims left-padded with 1s to the blob's rank
    shape = ctx.shape(node.inputs[1 - index])
    if shape is not None and value.ndim < len(shape):
        value = value.reshape((1,) * (len(shape) - value.ndim) + value.shape)
    ctx.emit(node, layer_type, BinaryParams(index), inputs=[node.inputs[1 - index]],
             resource=ElementResource(buffer(value)))

