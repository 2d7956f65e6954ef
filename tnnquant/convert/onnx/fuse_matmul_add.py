"""MatMul + Add -> Gemm (onnx2tnn's FuseGEMM): a MatMul by a constant 2-D matrix directly
followed by the Add of a constant vector of its width becomes one Gemm, so that it maps to a
single InnerProduct with bias. Only for 2-D inputs: InnerProduct flattens every dim after the
first, which equals MatMul only then (onnx2tnn also fuses higher ranks, computing a different
function)."""
from __future__ import annotations

from ._adjacent import fuse_adjacent
from .model import Node, OnnxGraph


def fuse_matmul_add(graph: OnnxGraph) -> OnnxGraph:
    def gemm(matmul: Node, add: Node) -> Node | None:
        if not _fits(matmul, add, graph):
            return None
        bias = next(b for b in add.inputs if b != matmul.outputs[0])
        return Node("Gemm", add.name, [matmul.inputs[0], matmul.inputs[1], bias], add.outputs)
    return fuse_adjacent(graph, "MatMul", "Add", gemm)


def _fits(matmul: Node, add: Node, graph: OnnxGraph) -> bool:
    if len(matmul.inputs) != 2 or len(add.inputs) != 2 or matmul.outputs[0] not in add.inputs:
        return False
    weight = graph.consts.get(matmul.inputs[1])
    x_shape = graph.shapes.get(matmul.inputs[0])
    bias = graph.consts.get(next((b for b in add.inputs if b != matmul.outputs[0]), ""))
    return (weight is not None and weight.ndim == 2 and x_shape is not None and len(x_shape) == 2
            and bias is not None and bias.ndim == 1 and bias.shape[0] == weight.shape[1]
            and len(graph.consumers(matmul.outputs[0])) == 1
            and matmul.outputs[0] not in graph.outputs)
