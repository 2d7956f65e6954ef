"""Mul by a per-channel constant, then Add of a per-channel constant -> BatchNormalization, as
onnx2tnn's FuseBatchNorm ("BatchNormalization <= Mul - Add"): the two nodes consecutive, the
Mul's output read by the Add only, the scale shaped ``[1, C, 1, ...]`` or ``[1, 1, 1, 1]``
(onnx2tnn's condition: rank >= 2 and a leading 1; a ``[C, 1, 1]`` scale is left as Mul and
Add). The BatchNorm then folds into a Conv right before it, as in onnx2tnn: PP-LCNetV3's
learnable affine blocks (a one-value scale and bias after a Conv, in PP-OCRv4) end up in the
Conv's weights.

onnx2tnn gives the new BatchNorm mean 0, variance 1 and its default epsilon 1e-5, so it scales
by ``s / sqrt(1 + 1e-5)``; here epsilon is 0 and the layer computes ``x * s + b`` exactly. It
never checks the bias and keeps a one-value scale one value long, which its Conv fusion then
reads past; here scale and bias hold one value per channel, or one value that is repeated."""
from __future__ import annotations

import numpy as np

from ._adjacent import fuse_adjacent, only_read_by, per_channel
from .model import Node, OnnxGraph


def fuse_mul_add_bn(graph: OnnxGraph) -> OnnxGraph:
    def batch_norm(mul: Node, add: Node) -> Node | None:
        if len(mul.inputs) != 2 or len(add.inputs) != 2 or mul.outputs[0] not in add.inputs:
            return None
        scale_name = _one_constant(graph, mul.inputs)
        bias_name = _one_constant(graph, add.inputs)
        if scale_name is None or bias_name is None or bias_name == mul.outputs[0]:
            return None
        x = next(b for b in mul.inputs if b != scale_name)
        scale, bias = graph.consts[scale_name], graph.consts[bias_name]
        shape = graph.shapes.get(x)
        if (shape is None or len(shape) < 2 or scale.ndim < 2 or scale.shape[0] != 1
                or not _per_channel_or_one(scale, shape) or not _per_channel_or_one(bias, shape)
                or not only_read_by(graph, mul.outputs[0], add)):
            return None
        channels = shape[1]
        params = [f"{add.name}/bn_{what}" for what in ("scale", "bias", "mean", "var")]
        values = (np.broadcast_to(scale.reshape(-1), (channels,)),
                  np.broadcast_to(bias.reshape(-1), (channels,)),
                  np.zeros(channels), np.ones(channels))
        for name, value in zip(params, values):
            graph.consts[name] = np.asarray(value, np.float32)
        return Node("BatchNormalization", mul.name, [x] + params, add.outputs, {"epsilon": 0.0})
    return fuse_adjacent(graph, "Mul", "Add", batch_norm)


def _one_constant(graph: OnnxGraph, inputs: list[str]) -> str | None:
    consts = [b for b in inputs if b in graph.consts]
    return consts[0] if len(consts) == 1 else None



def _per_channel_or_one(value: np.ndarray, shape: tuple[int, ...]) -> bool:
    return (per_channel(value, shape)
            or (value.size == 1 and value.dtype.kind == "f" and value.ndim <= len(shape)))
