"""BatchNormalization that ``fuse_conv_bn`` could not fold -> BatchNormCxx (per-channel
``x * scale + bias`` with ``scale = gamma / sqrt(var + eps)``, ``bias = beta - mean * scale``)."""
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
    gamma, beta, mean, var = (ctx.weight(node, i, what).astype(np.float32).reshape(-1)
                              for i, what in enumerate(("scale", "bias", "mean", "var"), 1))
    shape = ctx.shape(node.inputs[0])
    if shape is not None and (len(shape) < 2 or any(p.size != shape[1]
                                                    for p in (gamma, beta, mean, var))):
        raise ctx.fail(node, "parameters must have one value per channel (axis 1)")
    scale = gamma / np.sqrt(var + np.float32(node.attrs.get("epsilon", 1e-5)))
    bias = beta - mean * scale
    ctx.emit(node, "BatchNormCxx", NoParams(),
             resource=BatchNormResource(buffer(scale), buffer(bias)))
