"""Float stand-ins of int8 layers, for passes that measure quantization error.

A quantized convolution or inner product computes ``S[o] · (Σ q_w · q_x + bq[o])`` before its
output is requantized (spec int8 §12.3, §13), where ``S`` already holds the input scale. With
the input dequantized, ``x = s_in · q_x``, the float kernel computes the same sums from the
effective weights ``q_w · S[o] / s_in[i]`` and bias ``S[o] · bq[o]``: ``float_resource`` builds
them, so any float kernel (and the float executor) evaluates the int8 layer up to the final
rounding of its output.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..exec import int8_math
from ..formats.rawbuffer import DataType, RawBuffer
from ..ir.graph import BlobScale, Layer
from ..layers._resources import ConvResource
from ..layers.convolution import Convolution
from ..layers.inner_product import InnerProductResource

f32 = np.float32


def fake_quantize(x: np.ndarray, blob_scale: BlobScale) -> np.ndarray:
    """``x`` quantized to int8 with ``blob_scale`` as TNN's x86 runtime does and dequantized
    (with a folded zero point: as the blob's producer writes it)."""
    zero_point = blob_scale.folded_zero_point
    if zero_point is not None:   # the producer writes round(y / s + z) (passes/zero_points.py)
        q = int8_math.quantize(x, blob_scale.scale, zero_point, device="naive")
        return int8_math.dequantize(q, blob_scale.scale, folded=zero_point)
    q = int8_math.quantize(x, blob_scale.scale)
    return int8_math.dequantize(q, blob_scale.scale)


def _float(values: np.ndarray) -> RawBuffer:
    return RawBuffer.of(np.asarray(values, f32).reshape(-1), DataType.FLOAT)


def effective_weights(layer: Layer, res, in_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float weights [O, in-per-group, ...] flattened per output row, float bias [O]) of an
    int8 conv / inner product whose input blob has scale ``in_scale``."""
    weight = res.weights
    out_ch = len(res.scale.data) if res.scale.size > 1 else (
        layer.params.output_channel if layer.kind is Convolution else layer.params.num_output)
    q = weight.data.astype(f32).reshape(out_ch, -1)
    s = np.broadcast_to(res.scale.data.astype(f32), (out_ch,))
    if layer.kind is Convolution:
        p = layer.params
        taps = p.kernel_h * p.kernel_w
        in_per_group = q.shape[1] // taps
        group = max(p.group, 1)
        if in_scale.size == 1:
            s_in = np.broadcast_to(in_scale[0], (out_ch, in_per_group))
        else:
            g = np.arange(out_ch) // (out_ch // group)
            s_in = in_scale[g[:, None] * in_per_group + np.arange(in_per_group)]
        s_in = np.repeat(s_in, taps, axis=1)
    else:
        s_in = np.broadcast_to(in_scale[0], q.shape)
    ratio = np.zeros(q.shape, f32)
    np.divide(s[:, None], s_in, out=ratio, where=s_in != 0)
    w = (q * ratio).astype(f32)
    bias = None
    has_bias = res.has_bias if layer.kind is Convolution else layer.params.has_bias
    if has_bias and res.bias is not None and res.bias.size:
        bias = (res.bias.data.astype(np.float64) * s).astype(f32)
    return w, bias


def zero_point_sums(layer: Layer, res, zero_point: np.ndarray) -> np.ndarray:
    """``Σ q_w·z`` over each output row of an int8 convolution / inner product (int64), ``z``
    the input blob's folded zero point: one value, or one per input channel (a convolution)."""
    weight = res.weights
    rows = len(res.bias.data)
    q = weight.data.astype(np.int64).reshape(rows, -1)
    z = np.asarray(zero_point, np.int64).reshape(-1)
    if z.size == 1:
        return q.sum(axis=1) * z[0]
    p = layer.params
    taps = p.kernel_h * p.kernel_w
    in_per_group = q.shape[1] // taps
    group = np.arange(rows) // (rows // max(p.group, 1))
    z_rows = z[group[:, None] * in_per_group + np.arange(in_per_group)]
    return (q.reshape(rows, in_per_group, taps).sum(axis=2) * z_rows).sum(axis=1)


def unfold(layer: Layer, fake, res, in_scale: BlobScale | None, out_scale: BlobScale | None):
    """``fake`` (``float_resource`` of the int8 ``res``) with the zero points folded into its
    int32 bias (passes/zero_points.py) taken out of its float bias: what the int8 layer
    computes on its input dequantized as ``s·(q - z)``, for its output dequantized the same
    way."""
    z_in = None if in_scale is None else in_scale.folded_zero_point
    z_out = None if out_scale is None else out_scale.folded_zero_point
    if (z_in is None and z_out is None) or fake.bias is None:
        return fake
    rows = len(res.bias.data)
    s = np.broadcast_to(res.scale.data.astype(np.float64), (rows,))
    bias = fake.bias.data.astype(np.float64)
    if z_in is not None:
        bias = bias + s * zero_point_sums(layer, res, z_in)
    if z_out is not None:
        bias = bias - np.broadcast_to(out_scale.scale.astype(np.float64) * z_out, (rows,))
    return dataclasses.replace(fake, bias=_float(bias))


def float_resource(layer: Layer, res, in_scale: np.ndarray):
    """A float resource that makes the float kernel compute what the int8 layer ``res``
    computes on its dequantized input (module docstring)."""
    w, bias = effective_weights(layer, res, in_scale)
    if layer.kind is Convolution:
        return ConvResource(res.name, res.has_bias, _float(w),
                            None if bias is None else _float(bias))
    return InnerProductResource(res.name, _float(w),
                                _float(bias) if bias is not None else res.bias)
