"""Convolution (spec model-format §3.3.1; int8 §8.1, §12.3, §14)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from ..exec.int8_math import (FUSION_NONE, channel_view, check_channels, exact_terms, ratio,
                               relu6_limit, requantize_conv)
from ..errors import TnnQuantError
from ..exec.naive_math import seq_matmul, sigmoid_mul
from ._resources import ConvResource
from ._spatial import (PAD_EXPLICIT, PAD_SAME, PAD_VALID, StridePlanes, c_div, need_4d,
                       onnx_window, same_valid_axis, stride_planes, window_input)
from .base import Int8Context, LayerType, Params, Value, register
from .sigmoid import sigmoid_onnx


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
        out, begin, total = same_valid_axis(size, extent, stride, pad_type)
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


def check_group(p: ConvParams, in_channels: int) -> int:
    """The group count, checked against the input and output channels."""
    group = p.group
    if group <= 0 or in_channels % group or p.output_channel % group:
        raise ValueError(f"group {group} does not divide the input channels ({in_channels}) "
                         f"and output channels ({p.output_channel})")
    return group


def checked_filter(res: ConvResource | None, shape: tuple[int, ...], in_channels: int,
                   dtype: type = np.float32) -> np.ndarray:
    """The filter reshaped to ``shape`` after checking its type and size; ``dtype`` is float32
    for fp32 kernels, int8 for the int8 one (which also needs the scales)."""
    if res is not None and res.filter.data.dtype != dtype:
        kernel = "int8" if dtype == np.int8 else "fp32"
        raise ValueError(f"the filter is {res.filter.data_type.name}, the {kernel} kernel needs "
                         f"{'an INT8' if dtype == np.int8 else 'a float'} filter")
    if res is None or res.filter.size != int(np.prod(shape)):
        size = "no filter" if res is None else f"a filter of {res.filter.size} values"
        raise ValueError(f"{size} for a {in_channels}-channel input; expected "
                         f"{'x'.join(map(str, shape))}")
    if dtype == np.int8 and res.scale is None:
        raise ValueError("the int8 filter has no scales")
    return res.filter.data.reshape(shape)


def conv_filter(p: ConvParams, res: ConvResource, in_channels: int,
                dtype: type = np.float32) -> tuple[int, np.ndarray]:
    """(group, filter [O][C/group][kH][kW]) after checking them against the input."""
    group = check_group(p, in_channels)
    shape = (p.output_channel, in_channels // group, p.kernel_h, p.kernel_w)
    return group, checked_filter(res, shape, in_channels, dtype)


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


def conv_accumulate(x_nchw: np.ndarray, weight: np.ndarray, group: int, p: ConvParams,
                    bias: np.ndarray | None = None) -> np.ndarray:
    """The convolution sums (plus bias) of a float32 NCHW input and a float32 filter
    [O][C/group][kH][kW]: contiguous NCHW float32, before any activation."""
    n, c, h, w = need_4d(x_nchw, "Convolution")
    geo = conv_pads(p, h, w)
    if p.kernel_h == p.kernel_w == 1 and geo.pad_top == geo.pad_left == 0:
        out = _conv_pointwise(x_nchw, weight, group, p, geo)
        if bias is not None:
            out += bias.reshape(-1, 1, 1)
        return out
    taps = _taps(p)
    planes = _planes(x_nchw, taps, p, geo)
    out = np.empty((n, weight.shape[0], geo.out_h, geo.out_w), dtype=np.float32)
    if group == c == weight.shape[0] and group > 1:
        _conv_depthwise(planes, weight, taps, bias, out)
    else:
        _conv_gemm(planes, weight, group, taps, bias, out)
    return out


def conv2d(x_nchw: np.ndarray, p: ConvParams, res: ConvResource) -> np.ndarray:
    """TNN fp32 Convolution: NCHW float32 input -> contiguous NCHW float32 output."""
    n, c, h, w = need_4d(x_nchw, "Convolution")
    group, weight = conv_filter(p, res, c)
    bias = conv_bias(res, p.output_channel) if p.bias else None
    out = conv_accumulate(x_nchw.astype(np.float32, copy=False), weight, group, p, bias)
    return apply_activation(out, p.activation_type)


def onnx_activation(g, y: str, activation_type: int, out: str) -> None:
    """``apply_activation`` as ONNX nodes, from ``y`` to ``out``."""
    if activation_type == ACT_NONE:
        g.node("Identity", [y], out)
    elif activation_type == ACT_RELU:
        g.node("Relu", [y], out)
    elif activation_type == ACT_RELU6:
        g.node("Clip", [y, g.const(np.float32(0)), g.const(np.float32(6))], out)
    elif activation_type == ACT_SIGMOID_MUL:
        g.node("Mul", [y, sigmoid_onnx(g, y)], out)
    else:
        raise ValueError(f"activation_type {activation_type} is not supported "
                         f"(TNN knows 0, 1, 2, 256)")


def planar_output_types(p: ConvParams, res: ConvResource, xs: tuple, layer: str,
                        check_filter: Callable, pads: Callable) -> list:
    """``LayerType.output_types`` of a 2-D (de)convolution for the input types ``xs``:
    ``check_filter(p, res, C)`` raises on a filter that does not fit, ``pads(p, H, W)`` gives
    the output size."""
    (shape, _), = xs[:1]
    n, c, h, w = need_4d(shape, layer)
    check_filter(p, res, c)
    geo = pads(p, h, w)
    return [((n, p.output_channel, geo.out_h, geo.out_w), np.dtype(np.float32))]


def conv2d_onnx(g, p: ConvParams, res: ConvResource, x: Value, out: str) -> None:
    """``conv2d`` as an ONNX Conv: TNN's pads and output size (``conv_pads``) become a crop
    and explicit pads (``onnx_window``), the taps step by ``tap_dilation`` on both axes."""
    n, c, h, w = need_4d(x.shape, "Convolution")
    group, weight = conv_filter(p, res, c)
    geo = conv_pads(p, h, w)
    dil_h, dil_w = tap_dilation(p)
    extents = (dil_h * (p.kernel_h - 1) + 1, dil_w * (p.kernel_w - 1) + 1)
    x_name, pads = onnx_window(g, x.name, (h, w), (geo.pad_top, geo.pad_left),
                               (geo.out_h, geo.out_w), (p.stride_h, p.stride_w), extents)
    inputs = [x_name, g.const(weight)]
    if p.bias:
        inputs.append(g.const(conv_bias(res, p.output_channel)))
    y = g.node("Conv", inputs, group=group, kernel_shape=[p.kernel_h, p.kernel_w], pads=pads,
               strides=[p.stride_h, p.stride_w], dilations=[dil_h, dil_w])
    onnx_activation(g, y, p.activation_type, out)


# --- NAIVE fp32 (spec int8 §14) ----------------------------------------------------------------

NAIVE_COLUMN_BYTES = 4 << 20   # window columns of one block of groups and images (cache-sized)
NAIVE_DIRECT_PIXELS = 2048     # output pixels from which images are done one by one


def apply_activation_naive(y: np.ndarray, activation_type: int) -> np.ndarray:
    """The fused activation as TNN's NAIVE kernel writes it (spec int8 §14), in place: ReLU
    ``r > 0 ? r : 0``, ReLU6 clamp, 256 ``f32(f32(1/f32(1 + expf(-r))) · r)`` with glibc's
    expf."""
    if activation_type == ACT_RELU:
        np.copyto(y, 0, where=~(y > 0))
    elif activation_type == ACT_SIGMOID_MUL:
        y[...] = sigmoid_mul(y)
    else:
        apply_activation(y, activation_type)
    return y


def conv2d_naive(x_nchw: np.ndarray, p: ConvParams, res: ConvResource) -> np.ndarray:
    """TNN's NAIVE fp32 Convolution bit for bit (spec int8 §14): per output
    ``r = 0; r = f32(r + f32(x·w))`` over kernel row, kernel column, then the group's input
    channels; ``f32(r + bias)``; the activation. Taps in the padding add exact zeros, which
    changes no sum (r starts at +0), so the input is zero-padded instead of clipped.

    The sums are ``naive_math.seq_matmul`` of the filter [group][O/g][taps·C/g] with the window
    columns [group][taps·C/g][pixels] of a block of images.
    """
    n, c, h, w = need_4d(x_nchw, "Convolution")
    group, weight = conv_filter(p, res, c)
    bias = conv_bias(res, p.output_channel) if p.bias else None
    x = x_nchw.astype(np.float32, copy=False)
    geo = conv_pads(p, h, w)
    taps = _taps(p)
    o, cg = weight.shape[:2]
    k = cg * len(taps)
    # column index k = tap * C/g + channel: TNN's kh, kw, channel loop order
    filt = np.ascontiguousarray(weight.reshape(group, o // group, cg, len(taps))
                                .transpose(0, 1, 3, 2)).reshape(group, o // group, k)
    rows = (geo.out_h - 1) * p.stride_h + max(r for r, _ in taps) + 1
    cols = (geo.out_w - 1) * p.stride_w + max(q for _, q in taps) + 1
    pixels = geo.out_h * geo.out_w
    og = o // group
    out = np.empty((n, o, geo.out_h, geo.out_w), dtype=np.float32)
    # one image at a time once its pixels make long rows: the sums then go straight into
    # ``out``, and an unpadded 1x1 convolution reads its input in place (no copies at all)
    per_image = 4 * group * k * pixels
    images = 1 if pixels >= NAIVE_DIRECT_PIXELS else \
        max(1, min(n, NAIVE_COLUMN_BYTES // per_image))
    groups = group if images > 1 else \
        max(1, min(group, NAIVE_COLUMN_BYTES * group // per_image))
    in_place = (len(taps) == 1 and images == 1 and (p.stride_h, p.stride_w) == (1, 1)
                and (geo.out_h, geo.out_w, geo.pad_top, geo.pad_left) == (h, w, 0, 0))
    col_buf = None if in_place else np.empty(groups * k * images * pixels, dtype=np.float32)
    sum_buf = None if images == 1 else np.empty(groups * og * images * pixels, dtype=np.float32)
    for n0 in range(0, n, images):
        n1 = min(n0 + images, n)
        nb = n1 - n0
        if not in_place:
            x_window = window_input(x[n0:n1], geo.pad_top, geo.pad_left, rows, cols)
            windows = x_window.reshape(nb, group, cg, rows, cols)
        for g0 in range(0, group, groups):
            g1 = min(g0 + groups, group)
            gn = g1 - g0
            if in_place:
                columns = x[n0].reshape(group, cg, pixels)[g0:g1]
            else:
                columns = col_buf[:gn * k * nb * pixels].reshape(gn, len(taps), cg, nb,
                                                                  geo.out_h, geo.out_w)
                for t, (row, col) in enumerate(taps):
                    view = windows[:, g0:g1, :,
                                   row:row + (geo.out_h - 1) * p.stride_h + 1:p.stride_h,
                                   col:col + (geo.out_w - 1) * p.stride_w + 1:p.stride_w]
                    columns[:, t] = view.transpose(1, 2, 0, 3, 4)
                columns = columns.reshape(gn, k, nb * pixels)
            channels = slice(g0 * og, g1 * og)
            if images == 1:   # (groups, O/g, pixels) of this image, in place
                target = out[n0].reshape(group, og, pixels)[g0:g1]
                seq_matmul(filt[g0:g1], columns, out=target)
                if bias is not None:
                    target += bias[channels].reshape(gn, og, 1)
                continue
            sums = sum_buf[:gn * og * nb * pixels].reshape(gn, og, nb * pixels)
            seq_matmul(filt[g0:g1], columns, out=sums)
            y = sums.reshape(gn * og, nb, geo.out_h, geo.out_w).transpose(1, 0, 2, 3)
            if bias is None:
                out[n0:n1, channels] = y
            else:
                np.add(y, bias[channels].reshape(-1, 1, 1), out=out[n0:n1, channels])
    return apply_activation_naive(out, p.activation_type)


# --- int8 (spec int8 §12.3, §13) ---------------------------------------------------------------

# activation 256 (x*sigmoid) has no int8 implementation: TNN's int8 conv ignores it (spec §2)
INT8_ACTIVATIONS = {ACT_NONE: None, ACT_RELU: "relu", ACT_RELU6: "relu6", ACT_SIGMOID_MUL: None}


@dataclass(frozen=True)
class FusedConvParams(ConvParams):
    """Runtime-only parameters of a quantized conv that absorbed the Add after it (spec int8
    §11.2): the layer's extra inputs are the Add's other operands and ``fusion`` says whether
    the add comes before (FUSION_ADD_ACT) or after (FUSION_ACT_ADD) the activation. Parsing and
    writing see the ConvParams fields only, so such a layer is written as a plain conv."""

    fusion: int = FUSION_NONE

    @classmethod
    def _fields(cls):
        return ConvParams._fields()


def conv_accumulate_int8(x: np.ndarray, weight: np.ndarray, group: int,
                         p: ConvParams) -> np.ndarray:
    """Exact int32 convolution sums (spec int8 §12.3 step 1) of integer-valued float32 codes,
    padding being code 0.

    The fp32 kernel is exact on such data while a sum has at most ``exact_terms`` terms: its
    float32 result is returned as is. Longer sums are split over input channels (each group
    keeps its share) and the partial convolutions added in double (float64 result).
    """
    cg = weight.shape[1]
    step = max(exact_terms(x, weight) // (p.kernel_h * p.kernel_w), 1)
    if cg <= step:
        return conv_accumulate(x, weight, group, p)
    acc = None
    for c0 in range(0, cg, step):
        width = min(step, cg - c0)
        channels = (np.arange(group)[:, None] * cg + c0 + np.arange(width)).reshape(-1)
        part = conv_accumulate(np.ascontiguousarray(x[:, channels]),
                               np.ascontiguousarray(weight[:, c0:c0 + width]), group, p)
        acc = part.astype(np.float64) if acc is None else acc + part
    return acc


def _int8_epilogue(p: ConvParams, res: ConvResource, q: Int8Context, out_shape: tuple
                   ) -> tuple[np.ndarray | None, np.ndarray, str | None]:
    """(int32 bias or None, factors M, activation) of an int8 convolution, checked."""
    bias = None
    if p.bias:
        if res.bias is None or res.bias.data.dtype != np.int32 \
                or res.bias.size != p.output_channel:
            raise ValueError(f"bias=1 needs an int32 bias of {p.output_channel} values")
        bias = res.bias.data
    m = ratio(res.scale.data, q.outputs[0].scale)
    check_channels(m, out_shape, "weight / output scale")
    if p.activation_type not in INT8_ACTIVATIONS:
        raise ValueError(f"activation_type {p.activation_type} is not supported "
                         f"(TNN knows 0, 1, 2, 256)")
    return bias, m, INT8_ACTIVATIONS[p.activation_type]


def _fused_add(p: ConvParams, q: Int8Context, shapes: tuple[tuple[int, ...], ...],
               out_shape: tuple[int, ...]) -> tuple[int, np.ndarray | None, np.ndarray | None]:
    """(fusion, factors A = s_add / s_out, NAIVE's add zero points) of a conv that absorbed
    an Add (spec int8 §11.2), checked against the input shapes; Nones without one."""
    fusion = p.fusion if isinstance(p, FusedConvParams) else FUSION_NONE
    if fusion == FUSION_NONE:
        return fusion, None, None
    if len(shapes) != 2:
        raise ValueError(f"a conv with a fused add takes 2 inputs, got {len(shapes)}")
    if tuple(shapes[1]) != out_shape:
        raise ValueError(f"fused add operand {tuple(shapes[1])} differs from the conv output "
                         f"{out_shape}")
    add_factor = ratio(q.inputs[1].scale, q.outputs[0].scale)
    check_channels(add_factor, out_shape, "add / output scale")
    zp_add = q.inputs[1].zero_points if q.device == "naive" else None
    return fusion, add_factor, zp_add


def _int8_plan(p: ConvParams, res: ConvResource, q: Int8Context,
               shapes: tuple[tuple[int, ...], ...]):
    """Everything an int8 convolution needs besides its input codes, checked: (group,
    filter, geometry, int32 bias or None, M, activation, fusion, A, NAIVE's add zero
    points)."""
    n, c, h, w = need_4d(shapes[0], "Convolution")
    group, weight = conv_filter(p, res, c, np.int8)
    geo = conv_pads(p, h, w)
    out_shape = (n, p.output_channel, geo.out_h, geo.out_w)
    bias, m, activation = _int8_epilogue(p, res, q, out_shape)
    fusion, add_factor, zp_add = _fused_add(p, q, shapes, out_shape)
    return group, weight, geo, bias, m, activation, fusion, add_factor, zp_add


def conv2d_int8(p: ConvParams, res: ConvResource, q: Int8Context,
                *xs: np.ndarray) -> np.ndarray:
    """TNN's int8 Convolution (any group; fused ReLU/ReLU6; fused add): exact int32 sums, then
    ``requantize_conv`` (spec int8 §12.3, §13). x86 runs in onnxruntime where that is
    provably exact (``exec.ort_kernels``), else in numpy.

    x86 ignores zero points (§13). NAIVE's sum ``Σ x_q·q − x_q·zp_w`` (in-bounds) ``+
    Σ zp_in·q − zp_in·zp_w`` (padding) ``+ Z[o]`` equals the convolution of ``x_q − zp_in``
    with ``q − zp_w`` and zero padding, which is how it is computed here.
    """
    x_q = xs[0]
    group, weight, geo, bias, m, activation, fusion, add_factor, zp_add = \
        _int8_plan(p, res, q, tuple(x.shape for x in xs))
    add = xs[1] if fusion != FUSION_NONE else None
    out, zp_out = q.outputs[0], None
    if q.device == "x86":
        from ..exec.ort_kernels import conv_int8_x86
        y = conv_int8_x86(_int8_conv(p, res, q, x_q.shape, group, weight, geo, bias, m,
                                     activation, fusion, add_factor), x_q, add)
        if y is not None:
            return y
    x, weight = x_q.astype(np.float32), weight.astype(np.float32)
    if q.device == "naive":
        x -= channel_view(q.inputs[0].zero_points.astype(np.float32), 4)
        if res.zero_point is not None:
            weight -= res.zero_point.data.astype(np.float32).reshape(-1, 1, 1, 1)
        zp_out = out.zero_points
    acc = conv_accumulate_int8(x, weight, group, p)
    return requantize_conv(acc, bias, m, out.scale, activation, add, add_factor, fusion,
                           q.device, zp_out, zp_add)


def _int8_conv(p: ConvParams, res: ConvResource, q: Int8Context, in_shape: tuple[int, ...],
               group: int, weight: np.ndarray, geo: ConvGeometry, bias: np.ndarray | None,
               m: np.ndarray, activation: str | None, fusion: int,
               add_factor: np.ndarray | None):
    """The x86 int8 convolution as ``exec.ort_kernels`` runs it in onnxruntime."""
    from ..exec.ort_kernels import Int8Conv
    dil = tap_dilation(p)
    r6 = relu6_limit(q.outputs[0].scale).astype(np.float32) if activation == "relu6" else None
    extents = (dil[0] * (p.kernel_h - 1) + 1, dil[1] * (p.kernel_w - 1) + 1)
    window = ((geo.pad_top, geo.pad_left), (geo.out_h, geo.out_w), (p.stride_h, p.stride_w),
              extents)
    geometry = (group, (p.kernel_h, p.kernel_w), (p.stride_h, p.stride_w), dil, window)
    return Int8Conv(res, weight, bias, m, r6, activation, geometry, tuple(in_shape),
                    add_factor, fusion)


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
    def forward_naive(cls, p: ConvParams, res: ConvResource, *xs: np.ndarray) -> np.ndarray:
        return conv2d_naive(xs[0], p, res)

    @classmethod
    def output_types(cls, p: ConvParams, res: ConvResource, *xs):
        return planar_output_types(p, res, xs, "Convolution", conv_filter, conv_pads)

    @classmethod
    def to_onnx(cls, p: ConvParams, res: ConvResource, g, xs: list[Value],
                ys: list[str]) -> None:
        conv2d_onnx(g, p, res, xs[0], ys[0])

    @classmethod
    def forward_int8(cls, p: ConvParams, res: ConvResource, q: Int8Context,
                     *xs: np.ndarray) -> np.ndarray:
        return conv2d_int8(p, res, q, *xs)

    @classmethod
    def int8_onnxruntime(cls, p: ConvParams, res: ConvResource, q: Int8Context,
                         *shapes: tuple[int, ...]):
        if q.device != "x86":
            return None
        try:
            group, weight, geo, bias, m, activation, fusion, add_factor, _ = \
                _int8_plan(p, res, q, shapes)
        except (ValueError, TnnQuantError):   # the layer's own kernel reports it
            return None
        out_shape = (shapes[0][0], p.output_channel, geo.out_h, geo.out_w)
        return _int8_conv(p, res, q, shapes[0], group, weight, geo, bias, m, activation,
                          fusion, add_factor), out_shape

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
