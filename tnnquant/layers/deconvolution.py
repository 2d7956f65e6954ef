"""Deconvolution (transposed convolution; spec model-format §2.5, §3.3.1). Never quantized by
TNN."""
from __future__ import annotations

import numpy as np

from ._resources import ConvResource
from ._spatial import PAD_EXPLICIT, PAD_SAME, PAD_VALID, c_div, need_4d
from .base import LayerType, Value, register
from .convolution import (ConvGeometry, ConvParams, apply_activation, check_group, checked_filter,
                          conv_bias, onnx_activation, planar_output_types)

# pad types of Deconvolution (spec model-format §3.3.1)
PAD_FULL, PAD_SAME_SWAPPED = 2, 3   # Deconvolution only (spec model-format §3.3.1)


def _deconv_axis(size: int, extent: int, stride: int, pad: int, pad_type: int,
                 axis: str) -> tuple[int, int, int]:
    """(out, pad_begin, pad_end) along one axis; ``extent`` is the dilated kernel size."""
    if stride <= 0:
        raise ValueError(f"stride_{axis} must be positive, got {stride}")
    if pad_type == PAD_EXPLICIT:
        out = stride * (size - 1) + extent - 2 * pad
        begin, end = pad, pad
    elif pad_type in (PAD_SAME, PAD_VALID, PAD_FULL, PAD_SAME_SWAPPED):
        out = {PAD_SAME: size * stride,
               PAD_SAME_SWAPPED: size * stride,
               PAD_VALID: size * stride + max(extent - stride, 0),
               PAD_FULL: size * stride - (stride + extent - 2)}[pad_type]
        total = (size - 1) * stride + extent - out
        if pad_type == PAD_SAME_SWAPPED:
            total = max(total, 0)
            end = c_div(total, 2)
            begin = total - end
        else:
            begin = c_div(total, 2)
            end = total - begin
    else:
        raise ValueError(f"pad_type {pad_type} is not supported (TNN knows -1, 0, 1, 2, 3)")
    if out <= 0:
        raise ValueError(f"output {axis} would be {out}")
    return out, begin, end


def deconv_pads(p: ConvParams, in_h: int, in_w: int) -> ConvGeometry:
    """Output size and pads of a Deconvolution (spec model-format §3.3.1)."""
    extent_h = p.dilation_h * (p.kernel_h - 1) + 1
    extent_w = p.dilation_w * (p.kernel_w - 1) + 1
    out_h, top, bottom = _deconv_axis(in_h, extent_h, p.stride_h, p.pad_h, p.pad_type, "h")
    out_w, left, right = _deconv_axis(in_w, extent_w, p.stride_w, p.pad_w, p.pad_type, "w")
    return ConvGeometry(out_h, out_w, top, left, bottom, right)


def deconv_filter(p: ConvParams, res: ConvResource, in_channels: int) -> tuple[int, np.ndarray]:
    """(group, filter [group][C/group][O/group][kH][kW]) after checking them against the input."""
    group = check_group(p, in_channels)
    shape = (group, in_channels // group, p.output_channel // group, p.kernel_h, p.kernel_w)
    return group, checked_filter(res, shape, in_channels)


def deconv2d(x_nchw: np.ndarray, p: ConvParams, res: ConvResource) -> np.ndarray:
    """TNN fp32 Deconvolution: every input pixel scatters ``w * x`` into a full-size canvas
    (one BLAS matmul, then one strided add per kernel tap); the output is the canvas window
    starting at (pad_top, pad_left), zero where it reaches beyond the canvas."""
    n, c, h, w = need_4d(x_nchw, "Deconvolution")
    group, weight = deconv_filter(p, res, c)
    geo = deconv_pads(p, h, w)
    _, cg, og, kh, kw = weight.shape
    x = x_nchw.astype(np.float32, copy=False).reshape(n, group, cg, h * w)
    # cols[n, g, (o, i, j), pixel] = sum_c weight[g, c, o, i, j] * x[n, g, c, pixel]
    cols = np.matmul(weight.reshape(group, cg, og * kh * kw).transpose(0, 2, 1), x)
    cols = cols.reshape(n, p.output_channel, kh, kw, h, w)
    full_h = (h - 1) * p.stride_h + p.dilation_h * (kh - 1) + 1
    full_w = (w - 1) * p.stride_w + p.dilation_w * (kw - 1) + 1
    canvas = np.zeros((n, p.output_channel, full_h, full_w), dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            top, left = i * p.dilation_h, j * p.dilation_w
            canvas[:, :, top:top + (h - 1) * p.stride_h + 1:p.stride_h,
                   left:left + (w - 1) * p.stride_w + 1:p.stride_w] += cols[:, :, i, j]
    y = _crop(canvas, geo)
    if p.bias:
        y += conv_bias(res, p.output_channel).reshape(-1, 1, 1)
    return apply_activation(y, p.activation_type)


def _crop(canvas: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """Rows [pad_top, pad_top + out_h) and columns [pad_left, pad_left + out_w) of the
    canvas, zeros outside it (negative pads come from pad types 1 and 2)."""
    n, o, full_h, full_w = canvas.shape
    if geo.pad_top == geo.pad_left == 0 and (geo.out_h, geo.out_w) == (full_h, full_w):
        return canvas
    y = np.zeros((n, o, geo.out_h, geo.out_w), dtype=np.float32)
    src_top, src_left = max(geo.pad_top, 0), max(geo.pad_left, 0)
    dst_top, dst_left = max(-geo.pad_top, 0), max(-geo.pad_left, 0)
    copy_h = min(full_h - src_top, geo.out_h - dst_top)
    copy_w = min(full_w - src_left, geo.out_w - dst_left)
    if copy_h > 0 and copy_w > 0:
        y[:, :, dst_top:dst_top + copy_h, dst_left:dst_left + copy_w] = \
            canvas[:, :, src_top:src_top + copy_h, src_left:src_left + copy_w]
    return y


def deconv2d_onnx(g, p: ConvParams, res: ConvResource, x: Value, out: str) -> None:
    """``deconv2d`` as an ONNX ConvTranspose (TNN's filter layout is ONNX's [I][O/group][kH][kW]):
    TNN's window of the full canvas becomes ConvTranspose pads where it lies inside the canvas;
    otherwise (pad types 1 and 2 reach beyond it) the canvas is cropped and zero-padded, and the
    bias added after, as ``deconv2d`` does."""
    n, c, h, w = need_4d(x.shape, "Deconvolution")
    group, weight = deconv_filter(p, res, c)
    geo = deconv_pads(p, h, w)
    full = ((h - 1) * p.stride_h + p.dilation_h * (p.kernel_h - 1) + 1,
            (w - 1) * p.stride_w + p.dilation_w * (p.kernel_w - 1) + 1)
    begins = (geo.pad_top, geo.pad_left)
    ends = (full[0] - geo.pad_top - geo.out_h, full[1] - geo.pad_left - geo.out_w)
    inside = min(*begins, *ends) >= 0
    inputs = [x.name, g.const(weight.reshape(c, -1, p.kernel_h, p.kernel_w))]
    bias = conv_bias(res, p.output_channel) if p.bias else None
    if inside and bias is not None:
        inputs.append(g.const(bias))
    y = g.node("ConvTranspose", inputs, group=group, kernel_shape=[p.kernel_h, p.kernel_w],
               strides=[p.stride_h, p.stride_w], dilations=[p.dilation_h, p.dilation_w],
               pads=[*begins, *ends] if inside else [0, 0, 0, 0])
    if not inside:
        crop = [max(b, 0) for b in begins] + [max(e, 0) for e in ends]
        y = g.node("Slice", [y, g.ints(crop[:2]), g.ints([f - e for f, e in zip(full, crop[2:])]),
                             g.ints([2, 3])])
        y = g.node("Pad", [y, g.ints([0, 0, max(-begins[0], 0), max(-begins[1], 0),
                                      0, 0, max(-ends[0], 0), max(-ends[1], 0)])])
        if bias is not None:
            y = g.node("Add", [y, g.const(bias.reshape(-1, 1, 1))])
    onnx_activation(g, y, p.activation_type, out)


@register
class Deconvolution(LayerType):
    names = ("Deconvolution",)
    enum = 22
    Params = ConvParams
    Resource = ConvResource

    @classmethod
    def forward(cls, p: ConvParams, res: ConvResource, *xs: np.ndarray) -> np.ndarray:
        return deconv2d(xs[0], p, res)

    @classmethod
    def output_types(cls, p: ConvParams, res: ConvResource, *xs):
        return planar_output_types(p, res, xs, "Deconvolution", deconv_filter, deconv_pads)

    @classmethod
    def to_onnx(cls, p: ConvParams, res: ConvResource, g, xs: list[Value],
                ys: list[str]) -> None:
        deconv2d_onnx(g, p, res, xs[0], ys[0])

    @classmethod
    def check_resource(cls, p: ConvParams, res: ConvResource) -> str | None:
        group = max(p.group, 1)
        expected = p.output_channel * p.input_channel * p.kernel_h * p.kernel_w
        if p.input_channel and res.filter.size != expected:
            return (f"filter has {res.filter.size} values, expected {expected} "
                    f"(group {group}, {p.input_channel} in/group, {p.output_channel} out)")
        if res.bias is not None and res.bias.size != p.output_channel:
            return f"bias has {res.bias.size} values, expected {p.output_channel}"
        return None
