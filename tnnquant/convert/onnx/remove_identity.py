"""Remove nodes that compute nothing at inference: Identity, Dropout (onnx2tnn's
RemoveIdentity / RemoveDropout), Sum / Max / Min / Mean of one input, and Cast to float of a
float blob."""
from __future__ import annotations

from .model import OnnxGraph

_FLOAT = 1


def remove_identity(graph: OnnxGraph) -> OnnxGraph:
    kept = []
    for node in graph.nodes:
        passthrough = (node.op in ("Identity", "Dropout")
                       or (node.op in ("Sum", "Max", "Min", "Mean") and len(node.inputs) == 1)
                       or (node.op == "Cast" and node.attrs.get("to") == _FLOAT
                           and node.inputs and node.inputs[0] not in graph.consts))
        if not passthrough or not node.inputs or node.inputs[0] in graph.consts:
            kept.append(node)
            continue
        src, dst = node.inputs[0], node.outputs[0]
        if dst in graph.outputs:
            if src in graph.outputs or any(i.name == src for i in graph.inputs):
                kept.append(node)   # the output must keep its own name and its source too
                continue
            for other in graph.nodes:   # the producer writes the output name directly
                other.outputs = [dst if b == src else b for b in other.outputs]
            graph.replace_blob(src, dst)
        else:
            graph.replace_blob(dst, src)
    graph.nodes = kept
    return graph
