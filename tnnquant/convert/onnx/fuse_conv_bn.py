"""Conv + BatchNormalization -> Conv with folded weights (onnx2tnn's FuseConv): the BN must be
the Conv's only reader, with constant parameters. ``w' = w * s``, ``b' = b * s + o`` per output
channel with ``s = gamma / sqrt(var + eps)`` and ``o = beta - mean * s`` (``norm.scale_and_bias``)."""
from __future__ import annotations

import numpy as np

from .model import OnnxGraph
from .norm import scale_and_bias


def fuse_conv_bn(graph: OnnxGraph) -> OnnxGraph:
    producers = {o: n for n in graph.nodes for o in n.outputs}
    removed = set()
    for bn in graph.nodes:
        if bn.op != "BatchNormalization" or len(bn.inputs) < 5:
            continue
        conv = producers.get(bn.inputs[0])
        if conv is None or conv.op != "Conv" or id(conv) in removed:
            continue
        params = [graph.consts.get(b) for b in bn.inputs[1:5]]
        weight = graph.consts.get(conv.inputs[1]) if len(conv.inputs) > 1 else None
        bias = graph.consts.get(conv.inputs[2]) if len(conv.inputs) > 2 and conv.inputs[2] else None
        if (any(p is None for p in params) or weight is None or weight.ndim < 3
                or (len(conv.inputs) > 2 and conv.inputs[2] and bias is None)
                or len(graph.consumers(conv.outputs[0])) != 1
                or conv.outputs[0] in graph.outputs):
            continue
        gamma, beta, mean, var = (np.asarray(p, np.float32).reshape(-1) for p in params)
        out_channels = weight.shape[0]
        if (any(p.size != out_channels for p in (gamma, beta, mean, var))
                or bn.attrs.get("spatial", 1) != 1):
            continue
        # TNN's arithmetic: slope and offset in double, rounded to float32, then applied in
        # float32 (w * slope; b * slope + offset)
        slope, offset = scale_and_bias(gamma, beta, mean, var, bn.attrs.get("epsilon", 1e-5))
        bias = np.zeros(out_channels, np.float32) if bias is None else bias.astype(np.float32)
        new_weight = (weight.astype(np.float32)
                      * slope.reshape((-1,) + (1,) * (weight.ndim - 1))).astype(np.float32)
        new_bias = (bias.reshape(-1) * slope + offset).astype(np.float32)
        w_name, b_name = f"{conv.name}/bn_folded_weight", f"{conv.name}/bn_folded_bias"
        graph.consts[w_name], graph.consts[b_name] = new_weight, new_bias
        conv.inputs = [conv.inputs[0], w_name, b_name]
        conv.outputs = [bn.outputs[0]]
        removed.add(id(bn))
    graph.nodes = [n for n in graph.nodes if id(n) not in removed]
    return graph
