"""HardSwish fusions of onnx2tnn's FuseHardSwish: ``x0 * hardsigmoid(x1)`` in one layer, with
one input when x0 and x1 are the same blob, else two (TNN's HardSwish gates its first input by
its second, broadcasting: the squeeze-excite gate of PP-LCNet and MobileNetV3).

* HardSigmoid - Mul: the Mul directly follows and multiplies the HardSigmoid's output, which
  nothing else reads, by x0; the HardSwish takes the Mul's name and the HardSigmoid's alpha and
  beta.
* Add(+3) - Clip(0, 6) - Mul - Div(/6): ``x0 * relu6(x1 + 3) / 6``; the HardSwish takes the
  Div's name, alpha 1/6, beta 1/2. (Add - Clip - Div - Mul is already a HardSigmoid - Mul
  here: ``fuse_hard_sigmoid`` ran first.)
"""
from __future__ import annotations

from ._adjacent import fuse_adjacent, fuse_window, only_read_by, scalar
from .fuse_hard_sigmoid import ALPHA, BETA, clip_bounds
from .model import Node, OnnxGraph


def fuse_hard_swish(graph: OnnxGraph) -> OnnxGraph:
    def after_hard_sigmoid(gate: Node, mul: Node) -> Node | None:
        if (len(gate.inputs) != 1 or len(mul.inputs) != 2 or gate.outputs[0] not in mul.inputs
                or not only_read_by(graph, gate.outputs[0], mul)):
            return None
        x0 = mul.inputs[1] if mul.inputs[0] == gate.outputs[0] else mul.inputs[0]
        if x0 in graph.consts:
            return None
        attrs = {"alpha": gate.attrs.get("alpha", 0.2), "beta": gate.attrs.get("beta", 0.5)}
        return Node("HardSwish", mul.name, _inputs(x0, gate.inputs[0]), mul.outputs, attrs)

    def relu6_product(add: Node, clip: Node, mul: Node, div: Node) -> Node | None:
        if not (len(add.inputs) == 2 and scalar(graph, add.inputs[1], rank0=True) == 3
                and clip.inputs[:1] == add.outputs[:1] and clip_bounds(graph, clip) == (0, 6)
                and len(mul.inputs) == 2 and clip.outputs[0] in mul.inputs
                and len(div.inputs) == 2 and div.inputs[0] == mul.outputs[0]
                and scalar(graph, div.inputs[1], rank0=True) == 6
                and only_read_by(graph, add.outputs[0], clip)
                and only_read_by(graph, clip.outputs[0], mul)
                and only_read_by(graph, mul.outputs[0], div)):
            return None
        x0 = mul.inputs[1] if mul.inputs[0] == clip.outputs[0] else mul.inputs[0]
        if x0 in graph.consts:
            return None
        return Node("HardSwish", div.name, _inputs(x0, add.inputs[0]), div.outputs,
                    {"alpha": ALPHA, "beta": BETA})

    graph = fuse_window(graph, ("Add", "Clip", "Mul", "Div"), relu6_product)
    return fuse_adjacent(graph, "HardSigmoid", "Mul", after_hard_sigmoid)


def _inputs(x0: str, x1: str) -> list[str]:
    return [x0] if x0 == x1 else [x0, x1]
