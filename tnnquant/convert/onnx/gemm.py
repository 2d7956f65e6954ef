"""Gemm -> InnerProduct, MatMul by a constant -> InnerProduct or MatMul (onnx2tnn's Gemm
converter and FuseGEMM).

InnerProduct computes ``x.reshape(N, -1) @ W.T + b`` with W stored [num_output][K]. Gemm's
alpha and beta are folded into W and b (onnx2tnn accepts alpha 1 and beta 0 or 1 only). A
MatMul becomes an InnerProduct only on a 2-D input, where the two agree; on higher ranks it
stays a MatMul layer with a constant weight.
"""
from __future__ import annotations

import numpy as np

from ...layers.inner_product import InnerProductParams, InnerProductResource
from ...layers.matmul import MatMulParams, MatMulResource
from .model import Node
from .registry import ONNX_OPS, Context, buffer


@ONNX_OPS.register("Gemm")
def gemm(node: Node, ctx: Context) -> None:
    if node.attrs.get("transA", 0):
        raise ctx.fail(node, "transA=1: TNN's InnerProduct cannot transpose its input")
    if ctx.const(node.inputs[0]) is not None:
        raise ctx.fail(node, "a constant A operand has no TNN form")
    shape = ctx.shape(node.inputs[0])
    if shape is not None and len(shape) != 2:
        raise ctx.fail(node, f"input of rank {len(shape)}; Gemm takes a 2-D input")
    weight = ctx.weight(node, 1, "B matrix").astype(np.float32)
    if weight.ndim != 2:
        raise ctx.fail(node, f"B of rank {weight.ndim}, expected 2")
    weight = weight if node.attrs.get("transB", 0) else weight.T   # [num_output][K]
    alpha = np.float32(node.attrs.get("alpha", 1.0))
    beta = np.float32(node.attrs.get("beta", 1.0))
    if alpha != 1:
        weight = weight * alpha
    num_output = weight.shape[0]
    bias = np.zeros(num_output, np.float32)
    if len(node.inputs) > 2 and node.inputs[2]:
        c = ctx.weight(node, 2, "C bias").astype(np.float32)
        if c.size not in (1, num_output) or (c.ndim == 2 and c.shape[0] != 1) or c.ndim > 2:
            raise ctx.fail(node, f"C of shape {list(c.shape)}: InnerProduct adds one bias per "
                                 f"output")
        bias = np.broadcast_to(c.reshape(-1), (num_output,)) * beta
    ctx.emit(node, "InnerProduct", InnerProductParams(num_output, 1, 0, 1),
             resource=InnerProductResource(node.name, buffer(np.ascontiguousarray(weight)),
                                           buffer(np.asarray(bias, np.float32))))


@ONNX_OPS.register("MatMul")
def matmul(node: Node, ctx: Context) -> None:
    if len(node.inputs) != 2:
        raise ctx.fail(node, f"expected 2 inputs, got {len(node.inputs)}")
    a, b = (ctx.const(x) for x in node.inputs)
    if a is None and b is None:
        ctx.emit(node, "MatMul", MatMulParams(-1), inputs=node.inputs)
        return
    if a is not None and b is not None:
        raise ctx.fail(node, "both operands are constants (constant folding should remove it)")
    shape = ctx.shape(node.inputs[0 if b is not None else 1])
    if b is not None and b.ndim == 2 and shape is not None and len(shape) == 2:
        weight = np.ascontiguousarray(b.astype(np.float32).T)
        ctx.emit(node, "InnerProduct", InnerProductParams(weight.shape[0], 1, 0, 1),
                 resource=InnerProductResource(node.name, buffer(weight),
                                               buffer(np.zeros(weight.shape[0], np.float32))))
        return
    position = 1 if b is not None else 0
    value = (b if b is not None else a).astype(np.float32)
    ctx.emit(node, "MatMul", MatMulParams(position), inputs=[node.inputs[1 - position]],
             resource=MatMulResource(buffer(value)))
