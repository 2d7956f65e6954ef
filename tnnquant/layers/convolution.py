"""Convolution (spec model-format §3.3.1; int8 §8.1, §12.3, §14)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._resources import ConvResource
from ._spatial import StridePlanes, c_div, ceil_div, need_4d, stride_planes
from .base import LayerType, Params, register


@dataclass(frozen=True)
class ConvParams(Params):
    # TNN writers emit 14 words, older files 13 (no activation); TNN would read a shorter line
    # with pad_type 0 (SAME) and dilation 1, so it can only be a damaged file (spec §3.2)
    min_fields = 13

    group: int = 0
    input_channel: int = 0      # per group
    output_channel: int = 0
    kernel_h: int = 0
    kernel_w: int = 0
    stride_h: int = 0
    stride_w: int = 0
    pad_h: int = 0
    pad_w: int = 0
    bias: int = 0
    pad_type: int = 0           # -1 explicit, 0 SAME, 1 VALID (Deconvolution also 2, 3)
    dilation_h: int = 1
    dilation_w: int = 1
    activation_type: int = 0    # 0 none, 1 ReLU, 2 ReLU6, 256 x*sigmoid(x)


ACT_NONE, ACT_RELU, ACT_RELU6, ACT_SIGMOID_MUL = 0, 1, 2, 256
PAD_EXPLICIT, PAD_SAME, PAD_VALID = -1, 0, 1

# Images are stacked into one matmul while their window columns stay under this size (few, wide
# matmuls run BLAS faster); depthwise columns are built in blocks that fit a 2 MB L2 cache.
GEMM_COLUMN_BYTES = 8 << 20
DEPTHWISE_COLUMN_BYTES = 1 << 20


class ConvGeometry(NamedTuple):
    """Output size and the begin/end pads TNN derives for one convolution input size."""

    out_h: int
    out_w: int
    pad_top: int        # may be negative for VALID: the first window starts inside the input
    pad_left: int
    pad_bottom: int
    pad_right: int


def _conv_axis(size: int, extent: int, stride: int, pad: int, pad_type: int,
               axis: str) -> tuple[int, int, int]:
    """(out, pad_begin, pad_end) along one axis; ``extent`` is the dilated kernel size."""
    if stride <= 0:
        raise ValueError(f"stride_{axis} must be positive, got {stride}")
    if pad_type == PAD_EXPLICIT:
        out, begin, end = c_div(size + 2 * pad - extent, stride) + 1, pad, pad
    elif pad_type in (PAD_SAME, PAD_VALID):
        out = ceil_div(size if pad_type == PAD_SAME else size - extent + 1, stride)
        total = (out - 1) * stride + extent - size
        begin = c_div(total, 2)          # C division: a negative VALID total shifts the window
        end = max(total - begin, 0)      # the odd pixel goes to the bottom/right
    else:
        raise ValueError(f"pad_type {pad_type} is not supported (TNN knows -1, 0, 1)")
    if out <= 0:
        raise ValueError(f"input {axis} {size} is too small for kernel extent {extent}: "
                         f"output {axis} would be {out}")
    return out, begin, end


def conv_pads(p: ConvParams, in_h: int, in_w: int) -> ConvGeometry:
    """Output size and pads of a Convolution (spec model-format §3.3.1); shared by the fp32
    and int8 kernels so both see identical geometry."""
    extent_h = p.dilation_h * (p.kernel_h - 1) + 1
    extent_w = p.dilation_w * (p.kernel_w - 1) + 1
    out_h, top, bottom = _conv_axis(in_h, extent_h, p.stride_h, p.pad_h, p.pad_type, "h")
    out_w, left, right = _conv_axis(in_w, extent_w, p.stride_w, p.pad_w, p.pad_type, "w")
    return ConvGeometry(out_h, out_w, top, left, bottom, right)


def tap_dilation(p: ConvParams) -> tuple[int, int]:
    """(row, column) dilation of the kernel taps. TNN's NAIVE CPU kernel, whose fp32 blobs
    define the calibration statistics, steps both axes by the vertical dilation and ignores
    dilation_w (spec int8 §12.3, §14); the output size still uses dilation_w (§3.3.1)."""
    return p.dilation_h, p.dilation_h


def apply_activation(y: np.ndarray, activation_type: int) -> np.ndarray:
    """The fused activation of Convolution/Deconvolution, in place on ``y`` (spec int8 §14)."""
    if activation_type == ACT_RELU:
        np.maximum(y, 0, out=y)
    elif activation_type == ACT_RELU6:
        np.clip(y, 0, 6, out=y)
    elif activation_type == ACT_SIGMOID_MUL:
        # f32(f32(1 / f32(1 + expf(-r))) * r); exp overflows to inf for r < -88, giving 0
        with np.errstate(over="ignore"):
            sig = np.exp(-y)
        sig += 1
        np.reciprocal(sig, out=sig)
        y *= sig
    elif activation_type != ACT_NONE:
        raise ValueError(f"activation_type {activation_type} is not supported "
                         f"(TNN knows 0, 1, 2, 256)")
    return y


def conv_filter(p: ConvParams, res: ConvResource, in_channels: int) -> tuple[int, np.ndarray]:
    """(group, float filter [O][C/group][kH][kW]) after checking them against the input."""
    group = p.group
    if group <= 0 or in_channels % group or p.output_channel % group:
        raise ValueError(f"group {group} does not divide the input channels ({in_channels}) "
                         f"and output channels ({p.output_channel})")
    shape = (p.output_channel, in_channels // group, p.kernel_h, p.kernel_w)
    if res is not None and res.filter.data.dtype != np.float32:
        raise ValueError(f"the filter is {res.filter.data_type.name}, the fp32 kernel needs a "
                         f"float filter")
    if res is None or res.filter.size != int(np.prod(shape)):
        size = "no filter" if res is None else f"a filter of {res.filter.size} values"
        raise ValueError(f"{size} for a {in_channels}-channel input; expected "
                         f"{'x'.join(map(str, shape))}")
    return group, res.filter.data.reshape(shape)


def conv_bias(res: ConvResource, out_channels: int) -> np.ndarray:
    if res.bias is None or res.bias.size != out_channels:
        have = "none" if res.bias is None else f"{res.bias.size} values"
        raise ValueError(f"bias=1 needs a bias of {out_channels} values, the model has {have}")
    return res.bias.data.astype(np.float32, copy=False)


def _taps(p: ConvParams) -> list[tuple[int, int]]:
    """(row, col) offset of every kernel tap in input pixels, in the filter's (kh, kw) order."""
    dil_h, dil_w = tap_dilation(p)
    return [(i * dil_h, j * dil_w) for i in range(p.kernel_h) for j in range(p.kernel_w)]


def _planes(x_nchw: np.ndarray, taps: list[tuple[int, int]], p: ConvParams,
            geo: ConvGeometry) -> StridePlanes:
    extent_h = max(r for r, _ in taps) + 1
    extent_w = max(c for _, c in taps) + 1
    return stride_planes(x_nchw, geo.pad_top, geo.pad_left, geo.out_h, geo.out_w, p.stride_h,
                         p.stride_w, extent_h, extent_w)


def _store(out: np.ndarray, y: np.ndarray, bias: np.ndarray | None) -> None:
    """out = y + bias (per channel, axis 1 of ``out``), or a plain copy without bias."""
    if bias is None:
        np.copyto(out, y)
    else:
        np.add(y, bias.reshape(-1, 1, 1), out=out)


def _conv_pointwise(x_nchw: np.ndarray, weight: np.ndarray, group: int, p: ConvParams,
                    geo: ConvGeometry) -> np.ndarray:
    """1x1 kernel without padding: a plain matmul over the (strided) pixels."""
    n, c = x_nchw.shape[:2]
    if (p.stride_h, p.stride_w) != (1, 1):
        x_nchw = x_nchw[:, :, ::p.stride_h, ::p.stride_w][:, :, :geo.out_h, :geo.out_w]
    pixels = np.ascontiguousarray(x_nchw).reshape(n, group, c // group, geo.out_h * geo.out_w)
    o = weight.shape[0]
    y = np.matmul(weight.reshape(group, o // group, c // group), pixels)
    return y.reshape(n, o, geo.out_h, geo.out_w)


def _conv_gemm(planes: StridePlanes, weight: np.ndarray, group: int,
               taps: list[tuple[int, int]], bias: np.ndarray | None, out: np.ndarray) -> None:
    """Dense or grouped convolution: for a block of images, the window columns
    [C/g][taps][images][run] of each group and one float32 BLAS matmul with the filter
    [O/g][C/g * taps]; the result is cropped (and biased) straight into ``out``."""
    n = planes.data.shape[0]
    o, cg = weight.shape[:2]
    og, k = o // group, cg * len(taps)
    w_groups = weight.reshape(group, og, k)
    images = max(1, min(n, GEMM_COLUMN_BYTES // (4 * k * planes.run)))
    cols = np.empty((cg, len(taps), images, planes.run), dtype=np.float32)
    for b0 in range(0, n, images):
        b1 = min(b0 + images, n)
        block = cols[:, :, :b1 - b0]
        for g in range(group):
            channels = slice(g * cg, (g + 1) * cg)
            for t, (row, col) in enumerate(taps):
                block[:, t] = planes.tap(row, col)[b0:b1, channels].transpose(1, 0, 2)
            y = w_groups[g] @ block.reshape(k, (b1 - b0) * planes.run)
            y = planes.crop(y.reshape(og, b1 - b0, planes.run)).transpose(1, 0, 2, 3)
            outputs = slice(g * og, (g + 1) * og)
            _store(out[b0:b1, outputs], y, None if bias is None else bias[outputs])


def _conv_depthwise(planes: StridePlanes, weight: np.ndarray, taps: list[tuple[int, int]],
                    bias: np.ndarray | None, out: np.ndarray) -> None:
    """One output channel per input channel: per block of channels, the tap columns
    [channel][taps][run] and a batched (1 x taps) @ (taps x run) matmul."""
    n, _, c, _ = planes.data.shape
    w_rows = weight.reshape(c, 1, len(taps))
    block = max(1, min(c, DEPTHWISE_COLUMN_BYTES // (4 * len(taps) * planes.run)))
    cols = np.empty((block, len(taps), planes.run), dtype=np.float32)
    y = np.empty((block, 1, planes.run), dtype=np.float32)
    for b in range(n):
        for c0 in range(0, c, block):
            c1 = min(c0 + block, c)
            for t, (row, col) in enumerate(taps):
                cols[:c1 - c0, t] = planes.tap(row, col)[b, c0:c1]
            np.matmul(w_rows[c0:c1], cols[:c1 - c0], out=y[:c1 - c0])
            cropped = planes.crop(y[None, :c1 - c0, 0])[0]
            _store(out[b, c0:c1], cropped, None if bias is None else bias[c0:c1])


def conv2d(x_nchw: np.ndarray, p: ConvParams, res: ConvResource) -> np.ndarray:
    """TNN fp32 Convolution: NCHW float32 input -> contiguous NCHW float32 output."""
    n, c, h, w = need_4d(x_nchw, "Convolution")
    group, weight = conv_filter(p, res, c)
    geo = conv_pads(p, h, w)
    bias = conv_bias(res, p.output_channel) if p.bias else None
    x_nchw = x_nchw.astype(np.float32, copy=False)
    if p.kernel_h == p.kernel_w == 1 and geo.pad_top == geo.pad_left == 0:
        out = _conv_pointwise(x_nchw, weight, group, p, geo)
        if bias is not None:
            out += bias.reshape(-1, 1, 1)
    else:
        taps = _taps(p)
        planes = _planes(x_nchw, taps, p, geo)
        out = np.empty((n, p.output_channel, geo.out_h, geo.out_w), dtype=np.float32)
        if group == c == p.output_channel and group > 1:
            _conv_depthwise(planes, weight, taps, bias, out)
        else:
            _conv_gemm(planes, weight, group, taps, bias, out)
    return apply_activation(out, p.activation_type)


@register
class Convolution(LayerType):
    names = ("Convolution", "Convolution_nhwc")
    quantized_names = ("QuantizedConvolution", "QuantizedConvolution_nhwc")
    dynamic_names = ("DynamicRangeQuantizedConvolution",)
    enum = 1
    Params = ConvParams
    Resource = ConvResource
    collects_stats = True
    quantizable = True

    @classmethod
    def forward(cls, p: ConvParams, res: ConvResource, *xs: np.ndarray) -> np.ndarray:
        return conv2d(xs[0], p, res)

    @classmethod
    def check_resource(cls, p: ConvParams, res: ConvResource) -> str | None:
        expected = p.output_channel * p.input_channel * p.kernel_h * p.kernel_w
        if res.filter.size != expected:
            return (f"filter has {res.filter.size} values, the parameters need "
                    f"{p.output_channel}x{p.input_channel}x{p.kernel_h}x{p.kernel_w} = {expected}")
        if bool(p.bias) != bool(res.has_bias):
            return f"proto says bias={p.bias} but the model says has_bias={res.has_bias}"
        if res.bias is not None and res.bias.size != p.output_channel:
            return f"bias has {res.bias.size} values, expected {p.output_channel}"
        return None
