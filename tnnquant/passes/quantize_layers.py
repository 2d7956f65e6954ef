"""Flag the layers TNN quantizes and quantize their weights (spec int8 §7, §8).

Weights are folded with the *input* blob scale before quantization, so the stored weight scale
is ``S_w * s_in`` (depthwise convs multiply it in afterwards), and biases become int32 in that
unit, truncated toward zero as TNN does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import TnnQuantError
from ..formats.rawbuffer import DataType, RawBuffer
from ..ir.graph import Graph, Layer
from ..layers._resources import ConvResource
from ..layers.add import Add
from ..layers.convolution import Convolution, ConvParams
from ..layers.inner_product import InnerProduct, InnerProductParams, InnerProductResource
from ..weights import quantize_bias

WeightMethod = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
f32 = np.float32


@dataclass(frozen=True)
class LayerQuantOptions:
    weight_method: WeightMethod
    per_tensor_weights: bool = False          # -t 2


def _int8(q: np.ndarray) -> RawBuffer:
    return RawBuffer.of(np.asarray(q, np.int8).reshape(-1), DataType.INT8)


def _weights_as(w: np.ndarray, rows: int, per_tensor: bool) -> np.ndarray:
    return w.reshape(1, -1) if per_tensor else w.reshape(rows, -1)


def quantize_conv(p: ConvParams, res: ConvResource, in_scale: np.ndarray,
                  method: WeightMethod, per_tensor: bool) -> ConvResource:
    """int8 filter, int32 bias and weight scales of one convolution (spec int8 §8.1)."""
    out_ch = p.output_channel
    taps = p.kernel_h * p.kernel_w
    group = max(p.group, 1)
    in_per_group = res.filter.size // out_ch // taps
    depthwise = out_ch // group == 1 and in_per_group == 1
    w = res.filter.data.astype(f32).reshape(out_ch, in_per_group, taps)
    in_merged = in_scale.size == 1
    if not depthwise:
        if in_merged:
            s = in_scale[0]
        else:  # global input channel of (o, i) is g*Ig + i, g = o // (O/G)
            g = np.arange(out_ch) // (out_ch // group)
            s = in_scale[g[:, None] * in_per_group + np.arange(in_per_group)][:, :, None]
        w = (w * s).astype(f32)
    q, scale, zero_point = method(_weights_as(w, out_ch, per_tensor))
    scale = np.asarray(scale, f32)
    if depthwise:  # the input scale multiplies the weight scale afterwards (spec int8 §8.1)
        scale = (scale * (in_scale[0] if in_merged else in_scale[:scale.size])).astype(f32)
    bias = None
    if res.has_bias:
        bias = RawBuffer.of(quantize_bias(res.bias.data.astype(f32), scale), DataType.INT32)
    return ConvResource(res.name, res.has_bias, _int8(q), bias, _int8(zero_point),
                        RawBuffer.of(scale, DataType.FLOAT))


def quantize_inner_product(p: InnerProductParams, res: InnerProductResource,
                           in_scale: np.ndarray, method: WeightMethod,
                           per_tensor: bool) -> InnerProductResource:
    """spec int8 §8.2: the input blob is always per-tensor, so one scale folds everything."""
    if in_scale.size != 1:
        raise ValueError("InnerProduct needs a per-tensor input scale")
    n = p.num_output
    w = (res.weight.data.astype(f32).reshape(n, -1) * in_scale[0]).astype(f32)
    q, scale, zero_point = method(_weights_as(w, n, per_tensor))
    scale = np.asarray(scale, f32)
    bias = res.bias
    if p.has_bias:
        bias = RawBuffer.of(quantize_bias(res.bias.data.astype(f32), scale), DataType.INT32)
    return InnerProductResource(res.name, _int8(q), bias, _int8(zero_point),
                                RawBuffer.of(scale, DataType.FLOAT))


def flag_quantized_layers(graph: Graph, exclude: frozenset[str] = frozenset()) -> Graph:
    """Return a copy with Convolution, Add, Concat and InnerProduct layers flagged quantized
    (spec int8 §7), except excluded ones and those lacking a blob scale."""
    graph = graph.copy()
    for layer in graph.layers:
        if not layer.kind.quantizable or layer.name in exclude:
            continue
        if not all(b in graph.blob_scales for b in layer.inputs + layer.outputs):
            continue
        # an Add with its own constant stays float (spec int8 §7)
        if layer.kind is Add and layer.name in graph.resources:
            continue
        layer.quantized = True
    return graph


def quantize_weights(graph: Graph, options: LayerQuantOptions) -> Graph:
    """Return a copy where flagged convolutions and inner products hold int8 weights folded
    with their input blob's current scale (spec int8 §8)."""
    graph = graph.copy()
    for layer in graph.layers:
        if layer.quantized and layer.kind in (Convolution, InnerProduct):
            graph.resources[layer.name] = layer_weights(
                layer, graph.resources[layer.name], graph.blob_scales[layer.inputs[0]].scale,
                options)
    return graph


def layer_weights(layer: Layer, res, in_scale: np.ndarray, options: LayerQuantOptions):
    """The int8 resource of a convolution or inner product whose float resource is ``res``
    and whose input blob has scale ``in_scale``."""
    quantize = quantize_conv if layer.kind is Convolution else quantize_inner_product
    try:
        return quantize(layer.params, res, in_scale, options.weight_method,
                        options.per_tensor_weights)
    except ValueError as err:
        raise TnnQuantError(f"cannot quantize weights: {err}", layer=layer.name,
                            layer_type=layer.proto_type) from None
