"""Sigmoid + Mul -> Swish, exactly where onnx2tnn fuses it (FuseSwish): the Mul must be the
very next node in file order and multiply the Sigmoid's input by its output, and the Sigmoid's
output must have no other reader. Elsewhere TNN leaves Sigmoid and Mul (e.g. YOLOv8 heads whose
exporter interleaved branches), and so does tnnquant: the quantizer then sees the same graph."""
from __future__ import annotations

from .model import Node, OnnxGraph


def fuse_swish(graph: OnnxGraph) -> OnnxGraph:
    nodes = graph.nodes
    kept: list[Node] = []
    skip = False
    for i, node in enumerate(nodes):
        if skip:
            skip = False
            continue
        mul = nodes[i + 1] if i + 1 < len(nodes) else None
        if (node.op == "Sigmoid" and mul is not None and mul.op == "Mul"
                and sorted(mul.inputs) == sorted([node.inputs[0], node.outputs[0]])
                and len(graph.consumers(node.outputs[0])) == 1
                and node.outputs[0] not in graph.outputs):
            kept.append(Node("Swish", mul.name, [node.inputs[0]], mul.outputs))
            skip = True
        else:
            kept.append(node)
    graph.nodes = kept
    return graph
