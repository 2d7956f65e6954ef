"""Constant folding: Constant nodes, Shape of statically shaped blobs, and every node whose
inputs are all constants (the Shape -> Gather -> Unsqueeze -> Concat -> Reshape arithmetic of
exported models), evaluated with onnx's reference evaluator. onnx2tnn expects this done by
onnx-simplifier beforehand; here it is part of the conversion."""
from __future__ import annotations

import numpy as np

from ...errors import FormatError
from .model import MAX_TENSOR_ELEMENTS, Node, OnnxGraph, infer_shapes, tensor_to_array

# ops whose output can be far larger than their inputs: folded only with a known, bounded shape
_EXPANDING = {"ConstantOfShape", "Expand", "Tile", "Range", "Resize", "Upsample", "Pad"}
# ops never folded: random or stateful
_NEVER = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
          "If", "Loop", "Scan"}


MAX_ROUNDS = 8   # fold, infer shapes again, fold what the new shapes allow, ...


def fold_constants(graph: OnnxGraph) -> OnnxGraph:
    for _ in range(MAX_ROUNDS):
        before = len(graph.nodes)
        graph.nodes = [node for node in graph.nodes if not _folded(node, graph)]
        unknown = any(b and b not in graph.shapes for n in graph.nodes for b in n.outputs)
        if len(graph.nodes) == before or not unknown:
            break
        infer_shapes(graph)
    return graph


def _folded(node: Node, graph: OnnxGraph) -> bool:
    """Evaluate ``node`` if its inputs are constants; its outputs become constants."""
    value = _fold(node, graph)
    if value is None:
        return False
    for name, array in zip(node.outputs, value):
        if name:
            graph.consts[name] = array
            graph.shapes[name] = tuple(array.shape)
    return True


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
    from onnx import helper
    from onnx.reference import ReferenceEvaluator
    if node.proto is None:
        return None
    feeds = {b: graph.consts[b] for b in node.inputs if b}
    # a one-node model, because the evaluator ignores `opsets` for a bare NodeProto and would
    # run the newest version of the op (e.g. Unsqueeze-13 on an opset-9 node with an axes
    # attribute)
    model = helper.make_model(
        helper.make_graph([node.proto], "fold",
                          [helper.make_tensor_value_info(b, 0, None) for b in feeds],
                          [helper.make_tensor_value_info(b, 0, None) for b in node.proto.output]),
        opset_imports=[helper.make_opsetid("", graph.opset)])
    try:
        outputs = ReferenceEvaluator(model).run(None, feeds)
    except Exception as err:
        raise FormatError(f"node '{node.name}' ({node.op}, opset {graph.opset}): constant "
                          f"folding failed: {' '.join(str(err).split())[:160]}",
                          path=graph.path) from None
    return [np.asarray(o) for o in outputs]


__all__ = ["fold_constants", "tensor_to_array"]
