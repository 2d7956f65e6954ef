"""Opset 6 and older broadcast differently: a binary op with ``broadcast=1`` aligns B with A's
dims from ``axis`` on (by default B's dims are A's last ones), a limited form that numpy's
right-aligned broadcasting covers once B has trailing 1s. This pass rewrites such nodes into
opset-7 form (B reshaped, the two attributes dropped), so that folding and every mapping read
today's semantics. Exporters of that era (PyTorch 0.3, Caffe2) wrote these."""
from __future__ import annotations

import numpy as np

from .model import Node, OnnxGraph

LEGACY_BROADCAST_OPS = {"Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Equal",
                        "Greater", "Less"}


def legacy_broadcast(graph: OnnxGraph) -> OnnxGraph:
    if graph.opset >= 7:
        return graph
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.op in LEGACY_BROADCAST_OPS and node.attrs.get("broadcast", 0):
            nodes.extend(_rewrite(node, graph))
        else:
            nodes.append(node)
    graph.nodes = nodes
    return graph


def _rewrite(node: Node, graph: OnnxGraph) -> list[Node]:
    from onnx import helper
    def shape(name: str) -> tuple[int, ...] | None:
        value = graph.consts.get(name)
        return tuple(value.shape) if value is not None else graph.shapes.get(name)

    a_shape, b_name = shape(node.inputs[0]), node.inputs[1]
    b_shape = shape(b_name)
    if a_shape is None or b_shape is None:
        raise ValueError(f"node '{node.name}' ({node.op}, broadcast=1): the operand shapes are "
                         f"unknown")
    axis = int(node.attrs.get("axis", len(a_shape) - len(b_shape)))
    if axis < 0:
        axis += len(a_shape)
    if not 0 <= axis <= len(a_shape) - len(b_shape):
        raise ValueError(f"node '{node.name}' ({node.op}): B of shape {list(b_shape)} does not "
                         f"fit A of shape {list(a_shape)} at axis {axis}")
    shape = tuple(b_shape) + (1,) * (len(a_shape) - axis - len(b_shape))
    added: list[Node] = []
    if shape != tuple(b_shape):
        aligned = f"{b_name}/aligned_{node.name}"
        if b_name in graph.consts:
            graph.consts[aligned] = np.asarray(graph.consts[b_name]).reshape(shape)
        else:   # a blob: a Reshape in front, with its target shape as a constant
            target = f"{aligned}/shape"
            graph.consts[target] = np.array(shape, np.int64)
            added.append(Node("Reshape", f"{node.name}/align", [b_name, target], [aligned],
                              proto=helper.make_node("Reshape", [b_name, target], [aligned])))
        graph.shapes[aligned] = shape
        b_name = aligned
    attrs = {k: v for k, v in node.attrs.items() if k not in ("broadcast", "axis")}
    inputs = [node.inputs[0], b_name]
    proto = helper.make_node(node.op, inputs, node.outputs, name=node.name, **attrs)
    return added + [Node(node.op, node.name, inputs, node.outputs, attrs, node.domain, proto)]
