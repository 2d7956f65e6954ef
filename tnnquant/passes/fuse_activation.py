"""Convolution + activation fusion, as TNN's network init does it (spec int8 §2).

TNN calibrates and writes the fused graph: a conv followed in the *list* by ReLU, ReLU6, Swish
or Sigmoid+Mul takes the activation's outputs and ``activation_type``; the activation layer
disappears. The fused conv's output blob is therefore the post-activation data.
"""
from __future__ import annotations

from ..ir.graph import Graph, Layer
from ..layers.convolution import ACT_RELU, ACT_RELU6, ACT_SIGMOID_MUL, ConvParams

_ACTIVATIONS = {"ReLU": ACT_RELU, "Relu": ACT_RELU, "ReLU6": ACT_RELU6, "Relu6": ACT_RELU6,
                "Swish": ACT_SIGMOID_MUL}


def _sigmoid_mul(conv: Layer, sigmoid: Layer, mul: Layer | None) -> bool:
    return (sigmoid.type == "Sigmoid" and mul is not None and mul.type == "Mul"
            and mul.inputs == [conv.outputs[0], sigmoid.outputs[0]])


def fuse_conv_activation(graph: Graph, quantized_only: bool = False,
                         swish: bool = True) -> Graph:
    """Return a copy of ``graph`` with conv+activation pairs fused (spec int8 §2).

    ``quantized_only``: the runtime variant for int8 graphs (spec int8 §11.2), where only
    ReLU/ReLU6 are fused into quantized convolutions. ``swish=False`` leaves Swish and
    Sigmoid+Mul alone (TNN's int8 convolution ignores the activation 256 they fuse into).
    """
    graph = graph.copy()
    layers = graph.layers
    i = 0
    while i < len(layers) - 1:
        conv, act = layers[i], layers[i + 1]
        nxt = layers[i + 2] if i + 2 < len(layers) else None
        if not isinstance(conv.params, ConvParams) or conv.params.activation_type != 0 \
                or len(conv.outputs) != 1 or act.inputs[:1] != conv.outputs:
            i += 1
            continue
        if quantized_only and not (conv.quantized and act.type in ("ReLU", "Relu", "ReLU6",
                                                                   "Relu6")):
            i += 1
            continue
        if act.type in _ACTIVATIONS and len(act.inputs) == 1 and (
                swish or _ACTIVATIONS[act.type] != ACT_SIGMOID_MUL):
            absorbed, code = [act], _ACTIVATIONS[act.type]
        elif not quantized_only and swish and _sigmoid_mul(conv, act, nxt):
            absorbed, code = [act, nxt], ACT_SIGMOID_MUL
        else:
            i += 1
            continue
        last = i + len(absorbed)
        if any(conv.outputs[0] in later.inputs for later in layers[last + 1:]):
            i += 1
            continue
        layers[i] = conv.replace(params=conv.params.replace(activation_type=code),
                                 outputs=list(absorbed[-1].outputs))
        del layers[i + 1:last + 1]
        i += 1
    return graph
