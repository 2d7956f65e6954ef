"""HardSigmoid + Mul -> HardSwish where onnx2tnn fuses it (FuseHardSwish): the Mul directly
follows, multiplies the HardSigmoid's input by its output, and nothing else reads that output.
The HardSwish keeps the HardSigmoid's alpha and beta: x * clip(alpha * x + beta, 0, 1)."""
from __future__ import annotations

from .model import Node, OnnxGraph


def fuse_hard_swish(graph: OnnxGraph) -> OnnxGraph:
    nodes = graph.nodes
    kept: list[Node] = []
    skip = False
    for i, node in enumerate(nodes):
        if skip:
            skip = False
            continue
        mul = nodes[i + 1] if i + 1 < len(nodes) else None
        if (node.op == "HardSigmoid" and mul is not None and mul.op == "Mul"
                and sorted(mul.inputs) == sorted([node.inputs[0], node.outputs[0]])
                and len(graph.consumers(node.outputs[0])) == 1
                and node.outputs[0] not in graph.outputs):
            attrs = {"alpha": node.attrs.get("alpha", 0.2), "beta": node.attrs.get("beta", 0.5)}
            kept.append(Node("HardSwish", mul.name, [node.inputs[0]], mul.outputs, attrs))
            skip = True
        else:
            kept.append(node)
    graph.nodes = kept
    return graph
