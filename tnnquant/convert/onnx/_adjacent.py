"""onnx2tnn fuses a chain only when its nodes stand next to each other in file order; the
fusions that follow that rule share this walk over neighbouring node pairs."""
from __future__ import annotations

from typing import Callable

from .model import Node, OnnxGraph


def fuse_adjacent(graph: OnnxGraph, first: str, second: str,
                  fuse: Callable[[Node, Node], Node | None]) -> OnnxGraph:
    """Replace every pair of consecutive nodes of op types ``first`` then ``second`` by
    ``fuse(a, b)`` where that returns a node (None keeps the pair)."""
    nodes, kept = graph.nodes, []
    i = 0
    while i < len(nodes):
        a, b = nodes[i], nodes[i + 1] if i + 1 < len(nodes) else None
        fused = fuse(a, b) if b is not None and (a.op, b.op) == (first, second) else None
        kept.append(fused or a)
        i += 2 if fused else 1
    graph.nodes = kept
    return graph


def gates_its_input(graph: OnnxGraph, gate: Node, mul: Node) -> bool:
    """``mul`` computes ``x * gate(x)`` and nothing else reads ``gate(x)``."""
    return (len(gate.inputs) == 1
            and sorted(mul.inputs) == sorted([gate.inputs[0], gate.outputs[0]])
            and len(graph.consumers(gate.outputs[0])) == 1
            and gate.outputs[0] not in graph.outputs)
