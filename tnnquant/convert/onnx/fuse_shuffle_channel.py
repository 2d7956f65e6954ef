"""Reshape to [N, G, C/G, H, W] - Transpose(0, 2, 1, 3, 4) - Reshape back to [N, C, H, W] ->
ShuffleChannel(G), as onnx2tnn's FuseShuffleChannel (its first form): ShuffleNet's channel
shuffle, three consecutive nodes whose inner blobs only the chain reads. The fused node takes
the last Reshape's name. (onnx2tnn's two rarer forms, with trailing Gathers or Split-Unsqueeze-
Concat, are left op by op.)"""
from __future__ import annotations

from ._adjacent import fuse_window, only_read_by
from .model import Node, OnnxGraph

PERM = [0, 2, 1, 3, 4]


def fuse_shuffle_channel(graph: OnnxGraph) -> OnnxGraph:
    def shuffle(grouped: Node, transpose: Node, restored: Node) -> Node | None:
        x = grouped.inputs[0]
        shape = graph.shapes.get(x)
        split = graph.shapes.get(grouped.outputs[0])
        if not (shape is not None and len(shape) == 4 and split is not None and len(split) == 5
                and split[0] == shape[0] and split[1] * split[2] == shape[1]
                and split[3:] == shape[2:] and transpose.inputs == grouped.outputs[:1]
                and list(transpose.attrs.get("perm", [])) == PERM
                and restored.inputs[:1] == transpose.outputs
                and graph.shapes.get(restored.outputs[0]) == shape
                and only_read_by(graph, grouped.outputs[0], transpose)
                and only_read_by(graph, transpose.outputs[0], restored)):
            return None
        return Node("ShuffleChannel", restored.name, [x], restored.outputs, {"group": split[1]})
    return fuse_window(graph, ("Reshape", "Transpose", "Reshape"), shuffle)
