"""Conv + Add of a constant -> Conv with that bias, as the second half of onnx2tnn's FuseConv
("Conv <= Conv - Add"; Paddle and TensorFlow exports write a convolution's bias as an Add): the
Add is the only reader of the Conv's output, which is its first operand, and adds one value or
one per output channel (a ``[1, C, ...]`` constant). A Conv without bias takes the constant as
its bias, with its dims, as onnx2tnn stores it; a Conv with one adds the two in float32.

onnx2tnn would turn a one-value constant into a one-value bias on a Conv without bias (wrong
for more than one channel); here it is repeated per channel."""
from __future__ import annotations

import numpy as np

from ._adjacent import only_read_by
from .model import OnnxGraph


def fuse_conv_add(graph: OnnxGraph) -> OnnxGraph:
    removed = set()
    for conv in graph.nodes:
        weight = graph.consts.get(conv.inputs[1]) if conv.op == "Conv" and len(conv.inputs) > 1 else None
        if weight is None or weight.ndim != 4 or len(conv.outputs) != 1:
            continue
        readers = graph.consumers(conv.outputs[0])
        add = readers[0] if len(readers) == 1 else None
        if (add is None or add.op != "Add" or len(add.inputs) != 2
                or add.inputs[0] != conv.outputs[0] or not only_read_by(graph, conv.outputs[0], add)):
            continue
        value = graph.consts.get(add.inputs[1])
        channels = weight.shape[0]
        if (value is None or value.dtype.kind != "f"
                or not (value.size == 1 or (value.ndim >= 2 and value.size == channels
                                            and value.shape[1] == channels))):
            continue
        has_bias = len(conv.inputs) > 2 and conv.inputs[2]
        if has_bias and conv.inputs[2] not in graph.consts:
            continue
        name = f"{conv.name}/add_folded_bias"
        if has_bias:
            bias = graph.consts[conv.inputs[2]].astype(np.float32).reshape(-1)
            graph.consts[name] = (bias + value.astype(np.float32).reshape(-1)).astype(np.float32)
        elif value.size == 1:
            graph.consts[name] = np.full(channels, value.reshape(-1)[0], np.float32)
        else:
            graph.consts[name] = value.astype(np.float32)   # its dims, as onnx2tnn writes them
        conv.inputs = [conv.inputs[0], conv.inputs[1], name]
        conv.outputs = list(add.outputs)
        removed.add(id(add))
    graph.nodes = [n for n in graph.nodes if id(n) not in removed]
    return graph
