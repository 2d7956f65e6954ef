"""Div(/sqrt 2) - Erf - Add(+1) - Mul(x) - Mul(0.5) -> GELU, as onnx2tnn's FuseGELU: the
exact (erf) GELU that PyTorch exports before opset 20, five consecutive nodes, the constants
within float32 epsilon of onnx2tnn's values, the inner blobs read by the chain only. The GELU
takes the last Mul's name.

onnx2tnn also fuses the tanh approximation (Pow - Mul - Add - Mul - Tanh - Add - Mul - Mul) into
the same layer, whose CPU kernels then compute the erf form: that changes the function, so the
tanh chain is converted op by op here."""
from __future__ import annotations

import numpy as np

from ._adjacent import fuse_window, only_read_by, scalar
from .model import Node, OnnxGraph

SQRT2 = 1.4142135381698608   # float32(sqrt(2))
EPS = float(np.finfo(np.float32).eps)


def fuse_gelu(graph: OnnxGraph) -> OnnxGraph:
    def near(name: str, value: float) -> bool:
        got = scalar(graph, name)
        return got is not None and abs(got - value) <= EPS

    def gelu(div: Node, erf: Node, add: Node, mul: Node, half: Node) -> Node | None:
        x = div.inputs[0]
        if not (len(div.inputs) == 2 and near(div.inputs[1], SQRT2)
                and erf.inputs == div.outputs[:1]
                and len(add.inputs) == 2 and add.inputs[0] == erf.outputs[0]
                and near(add.inputs[1], 1.0)
                and mul.inputs == [x, add.outputs[0]]
                and len(half.inputs) == 2 and half.inputs[0] == mul.outputs[0]
                and near(half.inputs[1], 0.5)
                and only_read_by(graph, div.outputs[0], erf)
                and only_read_by(graph, erf.outputs[0], add)
                and only_read_by(graph, add.outputs[0], mul)
                and only_read_by(graph, mul.outputs[0], half)):
            return None
        return Node("GELU", half.name, [x], half.outputs)
    return fuse_window(graph, ("Div", "Erf", "Add", "Mul", "Mul"), gelu)
