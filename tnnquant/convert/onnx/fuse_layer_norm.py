"""ReduceMean - Sub - Pow(2) - ReduceMean - Add(eps) - Sqrt - Div - Mul(scale) - Add(bias) ->
LayerNormalization over the reduced (last) axes, as onnx2tnn's FuseLayerNormalization: nine
consecutive nodes (PyTorch's LayerNorm before opset 17, Paddle's layer_norm), scale and bias
constants with as many dims as axes are reduced. The mapping writes TNN's LayerNorm with scale
and bias in the model's constant map; the fused node takes the last Add's name.

onnx2tnn checks neither the exponent nor which axes are reduced, nor who else reads the inner
blobs; here the exponent must be 2, both means must reduce the same last axes with keepdims,
and the inner blobs must be read by the chain only."""
from __future__ import annotations

import numpy as np

from ._adjacent import fuse_window, only_read_by, scalar
from .model import Node, OnnxGraph

PATTERN = ("ReduceMean", "Sub", "Pow", "ReduceMean", "Add", "Sqrt", "Div", "Mul", "Add")


def fuse_layer_norm(graph: OnnxGraph) -> OnnxGraph:
    def layer_norm(mean, sub, pow_, var, add_eps, sqrt, div, mul, add) -> Node | None:
        x = mean.inputs[0]
        chain = (sub.inputs == [x, mean.outputs[0]] and pow_.inputs[:1] == sub.outputs
                 and var.inputs[:1] == pow_.outputs and add_eps.inputs[:1] == var.outputs
                 and sqrt.inputs == add_eps.outputs[:1]
                 and div.inputs == [sub.outputs[0], sqrt.outputs[0]]
                 and mul.inputs[:1] == div.outputs and add.inputs[:1] == mul.outputs
                 and len(pow_.inputs) == len(add_eps.inputs) == 2
                 and len(mul.inputs) == len(add.inputs) == 2)
        if not chain:
            return None
        shape = graph.shapes.get(x)
        axes = _trailing_axes(graph, mean, shape)
        scale, bias = graph.consts.get(mul.inputs[1]), graph.consts.get(add.inputs[1])
        eps = scalar(graph, add_eps.inputs[1])
        if (axes is None or axes != _trailing_axes(graph, var, shape)
                or scalar(graph, pow_.inputs[1]) != 2 or eps is None
                or scale is None or bias is None or not scale.ndim == bias.ndim == axes
                or scale.size != bias.size or scale.size != int(np.prod(shape[-axes:]))):
            return None
        inner = [(mean.outputs[0], (sub,)), (sub.outputs[0], (pow_, div)),
                 (pow_.outputs[0], (var,)), (var.outputs[0], (add_eps,)),
                 (add_eps.outputs[0], (sqrt,)), (sqrt.outputs[0], (div,)),
                 (div.outputs[0], (mul,)), (mul.outputs[0], (add,))]
        if not all(only_read_by(graph, blob, *readers) for blob, readers in inner):
            return None
        return Node("LayerNormalization", add.name, [x, mul.inputs[1], add.inputs[1]],
                    add.outputs, {"axis": -axes, "epsilon": eps})
    return fuse_window(graph, PATTERN, layer_norm)


def _trailing_axes(graph: OnnxGraph, reduce: Node, shape: tuple[int, ...] | None) -> int | None:
    """How many last axes a keepdims ReduceMean reduces (None: other axes, or unknown)."""
    if shape is None or not reduce.attrs.get("keepdims", 1):
        return None
    axes = reduce.attrs.get("axes")
    if axes is None and len(reduce.inputs) > 1:   # opset 18: axes as an input
        axes = graph.consts.get(reduce.inputs[1])
    if axes is None:
        return None
    rank = len(shape)
    axes = sorted(int(a) % rank for a in np.asarray(axes).reshape(-1))
    k = len(axes)
    return k if k and axes == list(range(rank - k, rank)) else None
