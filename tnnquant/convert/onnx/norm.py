"""Normalizations: BatchNormalization that ``fuse_conv_bn`` could not fold -> BatchNormCxx
(per-channel ``x * scale + bias`` with ``scale = gamma / sqrt(var + eps)``, ``bias = beta -
mean * scale``); InstanceNormalization -> InstBatchNormCxx; LayerNormalization ->
LayerNorm and GroupNormalization -> GroupNorm (ONNX's ops and the fusions of the same names),
their scale and bias in the constant map; LRN -> LRN."""
from __future__ import annotations

import numpy as np

from ...layers._resources import BatchNormResource
from ...layers.base import NoParams
from .model import Node
from .registry import ONNX_OPS, Context, buffer


@ONNX_OPS.register("BatchNormalization")
def batch_norm(node: Node, ctx: Context) -> None:
    if len(node.inputs) < 5 or any(o for o in node.outputs[1:]):
        raise ctx.fail(node, "only inference BatchNormalization (5 inputs, 1 output) is "
                             "supported")
    if node.attrs.get("training_mode", 0):
        raise ctx.fail(node, "training_mode=1 is not supported")
    if node.attrs.get("spatial", 1) != 1:   # opset < 9: spatial=0 normalizes per element
        raise ctx.fail(node, "spatial=0 (statistics per element) is not supported")
    gamma, beta, mean, var = (ctx.weight(node, i, what).astype(np.float32).reshape(-1)
                              for i, what in enumerate(("scale", "bias", "mean", "var"), 1))
    shape = ctx.shape(node.inputs[0])
    if shape is not None and (len(shape) < 2 or any(p.size != shape[1]
                                                    for p in (gamma, beta, mean, var))):
        raise ctx.fail(node, "parameters must have one value per channel (axis 1)")
    scale, bias = scale_and_bias(gamma, beta, mean, var, node.attrs.get("epsilon", 1e-5))
    ctx.emit(node, "BatchNormCxx", NoParams(),
             resource=BatchNormResource(buffer(scale), buffer(bias)))


def scale_and_bias(gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray,
                   epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``scale = gamma / sqrt(var + eps)``, ``bias = beta - gamma * mean /
    sqrt(var + eps)``, computed in double from float32 values and rounded once to float32, as
    onnx2tnn's BatchNormalization converter and its Conv+BN fusion compute them."""
    sqrt_var = np.sqrt(var.astype(np.float64) + np.float64(np.float32(epsilon)))
    scale = gamma.astype(np.float64) / sqrt_var
    bias = beta.astype(np.float64) - gamma.astype(np.float64) * mean.astype(np.float64) / sqrt_var
    return scale.astype(np.float32), bias.astype(np.float32)


@ONNX_OPS.register("InstanceNormalization")
def instance_norm(node: Node, ctx: Context) -> None:
    from ...layers.inst_batch_norm import InstBatchNormParams
    scale, bias = (ctx.weight(node, i, what).astype(np.float32).reshape(-1)
                   for i, what in ((1, "scale"), (2, "bias")))
    shape = ctx.shape(node.inputs[0])
    if shape is not None and (len(shape) < 3 or scale.size != shape[1] or bias.size != shape[1]):
        raise ctx.fail(node, "scale and bias must have one value per channel of an N,C,... input")
    ctx.emit(node, "InstBatchNormCxx",
             InstBatchNormParams(scale.size, node.attrs.get("epsilon", 1e-5)),
             resource=BatchNormResource(buffer(scale), buffer(bias)))


@ONNX_OPS.register("LayerNormalization")
def layer_norm(node: Node, ctx: Context) -> None:
    """ONNX's LayerNormalization (opset 17) and ``fuse_layer_norm``'s: TNN's LayerNorm over the
    last dims from ``axis`` on, scale and bias as constant-map inputs."""
    from ...layers.layer_norm import LayerNormParams
    if any(node.outputs[1:]):
        raise ctx.fail(node, "the Mean and InvStdDev outputs have no TNN form")
    rank = ctx.rank(node)
    axis = ctx.axis(node, int(node.attrs.get("axis", -1)), rank)
    inner = int(np.prod(ctx.shape(node.inputs[0])[axis:]))
    scale = ctx.constant_input(node, 1, "scale")
    if len(node.inputs) > 2 and node.inputs[2]:
        bias = ctx.constant_input(node, 2, "bias")
    else:   # TNN's LayerNorm always takes a bias
        bias = f"{node.name}/zero_bias"
        ctx.constants[bias] = buffer(np.zeros(ctx.constants[scale].dims, np.float32))
    if any(ctx.constants[b].size != inner for b in (scale, bias)):
        raise ctx.fail(node, f"scale and bias must cover the normalized dims "
                             f"{list(ctx.shape(node.inputs[0])[axis:])}")
    ctx.emit(node, "LayerNorm", LayerNormParams(rank - axis, node.attrs.get("epsilon", 1e-5)),
             inputs=[node.inputs[0], scale, bias], outputs=node.outputs[:1])


@ONNX_OPS.register("GroupNormalization")
def group_norm(node: Node, ctx: Context) -> None:
    """ONNX's GroupNormalization (opset 18: scale and bias per group; 21: per channel) and
    ``fuse_group_norm``'s (per channel): TNN's GroupNorm, scale and bias per channel as
    constant-map inputs."""
    from ...layers.group_norm import GroupNormParams
    groups = int(node.attrs.get("num_groups", 0))
    shape = ctx.shape(node.inputs[0])
    if shape is None or len(shape) < 3 or groups <= 0 or shape[1] % groups:
        raise ctx.fail(node, f"num_groups {groups} does not divide the channels of an N,C,... "
                             f"input")
    channels = shape[1]
    names = []
    for index, what in ((1, "scale"), (2, "bias")):
        value, name = ctx.weight(node, index, what).astype(np.float32).reshape(-1), node.inputs[index]
        if value.size == groups and groups != channels:   # opset 18: one value per group
            value, name = np.repeat(value, channels // groups), f"{node.name}/{what}_per_channel"
        if value.size != channels:
            raise ctx.fail(node, f"{what} has {value.size} values for {channels} channels and "
                                 f"{groups} groups")
        ctx.constants[name] = buffer(value)
        names.append(name)
    ctx.emit(node, "GroupNorm", GroupNormParams(groups, node.attrs.get("epsilon", 1e-5)),
             inputs=[node.inputs[0], *names])


@ONNX_OPS.register("LRN")
def lrn(node: Node, ctx: Context) -> None:
    from ...layers.lrn import LRNParams
    size = int(node.attrs.get("size", 0))
    if size <= 0:
        raise ctx.fail(node, f"size {size} must be positive")
    ctx.emit(node, "LRN", LRNParams(node.attrs.get("alpha", 1e-4), node.attrs.get("beta", 0.75),
                                    node.attrs.get("bias", 1.0), size))
