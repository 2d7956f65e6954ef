"""HardSigmoid + Mul -> HardSwish where onnx2tnn fuses it (FuseHardSwish): the Mul directly
follows, multiplies the HardSigmoid's input by its output, and nothing else reads that output.
The HardSwish keeps the HardSigmoid's alpha and beta: x * clip(alpha * x + beta, 0, 1)."""
from __future__ import annotations

from ._adjacent import fuse_adjacent, gates_its_input
from .model import Node, OnnxGraph


def fuse_hard_swish(graph: OnnxGraph) -> OnnxGraph:
    def hard_swish(gate: Node, mul: Node) -> Node | None:
        if not gates_its_input(graph, gate, mul):
            return None
        attrs = {"alpha": gate.attrs.get("alpha", 0.2), "beta": gate.attrs.get("beta", 0.5)}
        return Node("HardSwish", mul.name, [gate.inputs[0]], mul.outputs, attrs)
    return fuse_adjacent(graph, "HardSigmoid", "Mul", hard_swish)
