"""Add(+3) - Clip(0, 6) - Div(/6) -> HardSigmoid(alpha 1/6, beta 1/2), as onnx2tnn's
FuseHardSigmoid: three consecutive nodes, the two constants 0-d tensors (onnx2tnn's rule: a
``[1]``-shaped 3 or 6 is left alone), the inner blobs read by the chain only. The HardSigmoid
takes the Div's name. It runs before ``fuse_hard_swish``, which then sees HardSigmoid - Mul."""
from __future__ import annotations

from ._adjacent import fuse_window, only_read_by, scalar
from .model import Node, OnnxGraph

ALPHA, BETA = 1 / 6, 3 / 6


def clip_bounds(graph: OnnxGraph, clip: Node) -> tuple[float | None, float | None]:
    """A Clip's constant (min, max): inputs from opset 11, attributes before; None if absent
    or not constant."""
    def bound(index: int, attr: str) -> float | None:
        if index < len(clip.inputs) and clip.inputs[index]:
            return scalar(graph, clip.inputs[index])
        value = clip.attrs.get(attr)
        return None if value is None else float(value)
    return bound(1, "min"), bound(2, "max")


def add_clip_div(graph: OnnxGraph, add: Node, clip: Node, div: Node) -> bool:
    """``div = clip(add(x, 3), 0, 6) / 6`` with constants as onnx2tnn matches them."""
    return (len(add.inputs) == 2 and scalar(graph, add.inputs[1], rank0=True) == 3
            and clip.inputs[:1] == add.outputs[:1] and clip_bounds(graph, clip) == (0, 6)
            and len(div.inputs) == 2 and div.inputs[0] == clip.outputs[0]
            and scalar(graph, div.inputs[1], rank0=True) == 6
            and only_read_by(graph, add.outputs[0], clip)
            and only_read_by(graph, clip.outputs[0], div))


def fuse_hard_sigmoid(graph: OnnxGraph) -> OnnxGraph:
    def hard_sigmoid(add: Node, clip: Node, div: Node) -> Node | None:
        if not add_clip_div(graph, add, clip, div):
            return None
        return Node("HardSigmoid", div.name, [add.inputs[0]], div.outputs,
                    {"alpha": ALPHA, "beta": BETA})
    return fuse_window(graph, ("Add", "Clip", "Div"), hard_sigmoid)
