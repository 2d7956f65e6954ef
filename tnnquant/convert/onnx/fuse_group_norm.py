"""Reshape to [N, G, -1] - InstanceNormalization - Reshape back - Mul(scale) - Add(bias) ->
GroupNormalization, as onnx2tnn's FuseGroupNormalization (PyTorch's GroupNorm before opset 18;
the Shape and Unsqueeze nodes of that export are folded constants by now): five consecutive
nodes, the instance norm's per-group scale and bias folded into the per-channel ones as
onnx2tnn folds them (float32: ``b += s * b_group``, ``s *= s_group``). The fused node takes the
InstanceNormalization's name and computes with its epsilon (onnx2tnn writes 1e-5 whatever the
model says)."""
from __future__ import annotations

import numpy as np

from ._adjacent import fuse_window, only_read_by, per_channel
from .model import Node, OnnxGraph

PATTERN = ("Reshape", "InstanceNormalization", "Reshape", "Mul", "Add")


def fuse_group_norm(graph: OnnxGraph) -> OnnxGraph:
    def group_norm(grouped: Node, inorm: Node, restored: Node, mul: Node, add: Node) -> Node | None:
        x = grouped.inputs[0]
        shape, grouped_shape = graph.shapes.get(x), graph.shapes.get(grouped.outputs[0])
        if not (len(inorm.inputs) == 3 and inorm.inputs[0] == grouped.outputs[0]
                and restored.inputs[:1] == inorm.outputs and mul.inputs[:1] == restored.outputs
                and add.inputs[:1] == mul.outputs and len(mul.inputs) == len(add.inputs) == 2
                and shape is not None and len(shape) >= 3 and grouped_shape is not None
                and len(grouped_shape) == 3 and grouped_shape[0] == shape[0]
                and graph.shapes.get(restored.outputs[0]) == shape):
            return None
        groups, channels = grouped_shape[1], shape[1]
        inst_scale, inst_bias = (graph.consts.get(b) for b in inorm.inputs[1:3])
        scale, bias = graph.consts.get(mul.inputs[1]), graph.consts.get(add.inputs[1])
        if (any(v is None or v.dtype.kind != "f" for v in (inst_scale, inst_bias, scale, bias))
                or channels % groups or inst_scale.size != groups or inst_bias.size != groups
                or not per_channel(scale, shape) or not per_channel(bias, shape)):
            return None
        inner = [(grouped.outputs[0], (inorm,)), (inorm.outputs[0], (restored,)),
                 (restored.outputs[0], (mul,)), (mul.outputs[0], (add,))]
        if not all(only_read_by(graph, blob, *readers) for blob, readers in inner):
            return None
        per_group = channels // groups
        s_group = np.repeat(inst_scale.astype(np.float32).reshape(-1), per_group)
        b_group = np.repeat(inst_bias.astype(np.float32).reshape(-1), per_group)
        s, b = scale.astype(np.float32).reshape(-1), bias.astype(np.float32).reshape(-1)
        names = (f"{inorm.name}/group_scale", f"{inorm.name}/group_bias")
        graph.consts[names[0]] = (s * s_group).astype(np.float32)
        graph.consts[names[1]] = (b + s * b_group).astype(np.float32)
        return Node("GroupNormalization", inorm.name, [x, *names], add.outputs,
                    {"num_groups": groups, "epsilon": inorm.attrs.get("epsilon", 1e-5)})
    return fuse_window(graph, PATTERN, group_norm)

