"""Sigmoid + Mul -> Swish, exactly where onnx2tnn fuses it (FuseSwish): the Mul must be the
very next node in file order and multiply the Sigmoid's input by its output, and the Sigmoid's
output must have no other reader. Elsewhere TNN leaves Sigmoid and Mul (e.g. YOLOv8 heads whose
exporter interleaved branches), and so does tnnquant: the quantizer then sees the same graph."""
from __future__ import annotations

from ._adjacent import fuse_adjacent, gates_its_input
from .model import Node, OnnxGraph


def fuse_swish(graph: OnnxGraph) -> OnnxGraph:
    def swish(sigmoid: Node, mul: Node) -> Node | None:
        if not gates_its_input(graph, sigmoid, mul):
            return None
        return Node("Swish", mul.name, [sigmoid.inputs[0]], mul.outputs)
    return fuse_adjacent(graph, "Sigmoid", "Mul", swish)
