"""Add / Sub / Mul / Div / Max / Min / Sum with numpy broadcasting (onnx2tnn's multidir-broadcast
converters; Max -> Maximum, Min -> Minimum, Sum -> Add: TNN's Add, Maximum and Minimum take any
number of blobs), and Pow by a constant -> Power.

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

_TYPES = {"Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div", "Sum": "Add",
          "Max": "Maximum", "Min": "Minimum"}
_VARIADIC = {"Sum", "Max", "Min"}   # one input: removed by remove_identity


@ONNX_OPS.register(*_TYPES)
def binary(node: Node, ctx: Context) -> None:
    if node.op in _VARIADIC and len(node.inputs) > 2:
        if any(ctx.const(b) is not None for b in node.inputs):
            raise ctx.fail(node, f"a constant among {len(node.inputs)} operands has no TNN form")
        ctx.emit(node, _TYPES[node.op], BinaryParams(-1), inputs=node.inputs)
        return
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


@ONNX_OPS.register("Pow")
def pow_(node: Node, ctx: Context) -> None:
    from ...layers.power import PowerParams
    exponent = ctx.const(node.inputs[1]) if len(node.inputs) == 2 else None
    if ctx.const(node.inputs[0]) is not None or exponent is None or exponent.size != 1:
        raise ctx.fail(node, "only a blob raised to one constant exponent has a TNN form (Power)")
    ctx.emit(node, "Power", PowerParams(float(exponent.reshape(-1)[0]), 1.0, 0.0))
