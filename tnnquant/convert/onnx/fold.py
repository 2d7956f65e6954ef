"""Constant folding: Constant nodes, Shape of statically shaped blobs, and every node whose
inputs are all constants (the Shape -> Gather -> Unsqueeze -> Concat -> Reshape arithmetic of
exported models), evaluated with onnx's reference evaluator. onnx2tnn expects this done by
onnx-simplifier beforehand; here it is part of the conversion."""
from __future__ import annotations

import numpy as np

from ...errors import FormatError
from .model import MAX_TENSOR_ELEMENTS, Node, OnnxGraph, tensor_to_array

# ops whose output can be far larger than their inputs: folded only with a known, bounded shape
_EXPANDING = {"ConstantOfShape", "Expand", "Tile", "Range", "Resize", "Upsample", "Pad"}
# ops never folded: random or stateful
_NEVER = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
          "If", "Loop", "Scan"}


def fold_constants(graph: OnnxGraph) -> OnnxGraph:
    kept: list[Node] = []
    for node in graph.nodes:
        value = _fold(node, graph)
        if value is None:
            kept.append(node)
            continue
        for name, array in zip(node.outputs, value):
            if name:
                graph.consts[name] = array
                graph.shapes[name] = tuple(array.shape)
    graph.nodes = kept
    return graph


def _fold(node: Node, graph: OnnxGraph) -> list[np.ndarray] | None:
    if node.domain not in ("", "ai.onnx") or node.op in _NEVER:
        return None
    if node.op == "Constant":
        return [_constant(node, graph)]
    if node.op == "Shape":
        shape = graph.shapes.get(node.inputs[0]) if node.inputs else None
        if shape is None:
            return None
        rank = len(shape)
        start = node.attrs.get("start", 0)
        end = node.attrs.get("end", rank)
        return [np.array(shape[slice(start, end)], dtype=np.int64)]
    if node.op == "Size":
        shape = graph.shapes.get(node.inputs[0]) if node.inputs else None
        return None if shape is None else [np.array(int(np.prod(shape)), dtype=np.int64)]
    present = [b for b in node.inputs if b]
    if not present or any(b not in graph.consts for b in present):
        return None
    if node.op in _EXPANDING:
        shapes = [graph.shapes.get(o) for o in node.outputs if o]
        if any(s is None or int(np.prod(s, dtype=np.float64)) > MAX_TENSOR_ELEMENTS
               for s in shapes):
            return None
    return _evaluate(node, graph)


def _constant(node: Node, graph: OnnxGraph) -> np.ndarray:
    attrs = node.attrs
    if "value" in attrs:
        return np.asarray(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise FormatError(f"node '{node.name}' (Constant): no supported value attribute "
                      f"({', '.join(attrs) or 'none'})", path=graph.path)


def _evaluate(node: Node, graph: OnnxGraph) -> list[np.ndarray] | None:
    from onnx.reference import ReferenceEvaluator
    if node.proto is None:
        return None
    feeds = {b: graph.consts[b] for b in node.inputs if b}
    try:
        outputs = ReferenceEvaluator(node.proto, opsets={"": graph.opset}).run(None, feeds)
    except Exception as err:
        raise FormatError(f"node '{node.name}' ({node.op}, opset {graph.opset}): constant "
                          f"folding failed: {' '.join(str(err).split())[:160]}",
                          path=graph.path) from None
    return [np.asarray(o) for o in outputs]


__all__ = ["fold_constants", "tensor_to_array"]
