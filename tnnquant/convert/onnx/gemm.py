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
    if ctx.const(node.inputs[1]) is None:
        _gemm_of_blobs(node, ctx)
        return
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


def _gemm_of_blobs(node: Node, ctx: Context) -> None:
    """A @ B (+ beta * C) with B a blob (PyTorch's ``mm``/``addmm`` of two tensors): MatMul of
    the two blobs, then an Add of C (scaled by beta when C is a constant)."""
    from ...layers._binary import BinaryParams
    from ...layers._resources import ElementResource
    if node.attrs.get("alpha", 1.0) != 1 or node.attrs.get("transB", 0):
        raise ctx.fail(node, "B is a blob: only alpha=1 and transB=0 have a TNN form (MatMul)")
    beta = float(node.attrs.get("beta", 1.0))
    c_name = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else ""
    c = ctx.const(c_name)
    if not c_name or beta == 0 or (c is not None and not c.any()):
        ctx.emit(node, "MatMul", MatMulParams(-1), inputs=node.inputs[:2])
        return
    product = f"{node.outputs[0]}/matmul"
    ctx.emit(node, "MatMul", MatMulParams(-1), inputs=node.inputs[:2], outputs=[product],
             name=f"{node.name}/matmul")
    if c is not None:
        ctx.emit(node, "Add", BinaryParams(1), inputs=[product],
                 resource=ElementResource(buffer(c.astype(np.float32) * np.float32(beta))))
    elif beta == 1:
        ctx.emit(node, "Add", BinaryParams(-1), inputs=[product, c_name])
    else:
        raise ctx.fail(node, f"beta={beta} with a blob C has no single TNN layer")


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
