"""Pooling (spec model-format §3.3.2; int8 §12.7, §14)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import UnsupportedError
from ..exec.int8_math import MAXPOOL_START, pool_average
from ..exec.naive_math import seq_sum, seq_sum_of
from ._spatial import (PAD_EXPLICIT, PAD_SAME, PAD_VALID, ceil_div, need_4d, onnx_window,
                       same_valid_axis, tap, window_input)
from .base import Int8Context, LayerType, Params, Value, register


@dataclass(frozen=True)
class PoolingParams(Params):
    min_fields = 11   # TNN writers emit 14 words, older files 11 (no adaptive fields; §3.2)

    pool_type: int = 0          # 0 max, 1 average
    kernel_h: int = 0           # 0 = whole input extent (global)
    kernel_w: int = 0
    stride_h: int = 0
    stride_w: int = 0
    pad_h: int = 0
    pad_w: int = 0
    kernel_index_h: int = -1
    kernel_index_w: int = -1
    pad_type: int = 0           # -1 explicit, 0 SAME, 1 VALID
    ceil_mode: int = 0
    is_adaptive_pool: int = 0
    output_h: int = 0           # TNN's writer emits these two swapped (spec §3.3.2)
    output_w: int = 0


POOL_MAX, POOL_AVG = 0, 1
FLT_MAX = float(np.finfo(np.float32).max)  # TNN's max pooling starts from -FLT_MAX (int8 §14)


class PoolGeometry(NamedTuple):
    """Kernel, output size and begin/end pads TNN derives for one pooling input size."""

    kernel_h: int
    kernel_w: int
    out_h: int
    out_w: int
    pad_top: int        # may be negative for VALID: the first window starts inside the input
    pad_left: int
    pad_bottom: int
    pad_right: int


def pool_kernel(p: PoolingParams, dims: tuple[int, ...]) -> tuple[int, int]:
    """(kernel_h, kernel_w): 0 means the whole input extent; a kernel_index names the input
    dimension that gives the size (kernel_index_w -1 falls back to kernel_index_h, §3.3.2)."""
    kernel_h = p.kernel_h or dims[2]
    kernel_w = p.kernel_w or dims[3]
    index_h = p.kernel_index_h
    index_w = p.kernel_index_w if p.kernel_index_w != -1 else index_h
    for index in (index_h, index_w):
        if index != -1 and not 0 <= index < len(dims):
            raise ValueError(f"kernel_index {index} is not a dimension of the "
                             f"{len(dims)}-D input")
    if index_h != -1:
        kernel_h = dims[index_h]
    if index_w != -1:
        kernel_w = dims[index_w]
    return kernel_h, kernel_w


def _pool_axis(size: int, kernel: int, stride: int, pad: int, pad_type: int, ceil_mode: int,
               axis: str) -> tuple[int, int, int]:
    """(out, pad_begin, pad_end) along one axis (spec model-format §3.3.2)."""
    if stride <= 0:
        raise ValueError(f"stride_{axis} must be positive, got {stride}")
    if pad_type == PAD_EXPLICIT:
        # computed in f32 by TNN; exact for any realistic size
        ratio = (size + 2 * pad - kernel) / stride + 1
        out = math.ceil(ratio) if ceil_mode else math.floor(ratio)
        begin = pad
        end = max((out - 1) * stride + kernel - size - begin, 0)
    elif pad_type in (PAD_SAME, PAD_VALID):
        out, begin, total = same_valid_axis(size, kernel, stride, pad_type)
        end = total - begin              # unlike Convolution, not clamped (spec §3.3.2)
    else:
        raise ValueError(f"pad_type {pad_type} is not supported (TNN knows -1, 0, 1)")
    if out <= 0:
        raise ValueError(f"input {axis} {size} is too small for kernel {kernel}: "
                         f"output {axis} would be {out}")
    return out, begin, end


def pool_pads(p: PoolingParams, dims: tuple[int, ...]) -> PoolGeometry:
    """Geometry of a non-adaptive Pooling on an input of shape ``dims`` (NCHW); shared by the
    fp32 and int8 kernels."""
    kernel_h, kernel_w = pool_kernel(p, dims)
    out_h, top, bottom = _pool_axis(dims[2], kernel_h, p.stride_h, p.pad_h, p.pad_type,
                                    p.ceil_mode, "h")
    out_w, left, right = _pool_axis(dims[3], kernel_w, p.stride_w, p.pad_w, p.pad_type,
                                    p.ceil_mode, "w")
    return PoolGeometry(kernel_h, kernel_w, out_h, out_w, top, left, bottom, right)


def in_bounds_count(size: int, out: int, kernel: int, stride: int, pad_begin: int) -> np.ndarray:
    """Per output position, the number of window elements inside the input, computed as
    TNN's CPU kernel does: ``min(start + k, size) - max(start, 0)`` (a window entirely in the
    padding gives 0 or less, so its average is NaN or -0, as in TNN)."""
    start = np.arange(out) * stride - pad_begin
    return np.minimum(start + kernel, size) - np.maximum(start, 0)


def _window_reduce(x_nchw: np.ndarray, p: PoolingParams, geo: PoolGeometry,
                   reduce: np.ufunc, fill: float) -> np.ndarray:
    """Max or sum over each window (``fill`` outside the input), separably: columns first,
    then rows."""
    rows = (geo.out_h - 1) * p.stride_h + geo.kernel_h
    cols = (geo.out_w - 1) * p.stride_w + geo.kernel_w
    x_window = window_input(x_nchw, geo.pad_top, geo.pad_left, rows, cols, fill=fill)
    row_pass = tap(x_window, 0, 0, rows, geo.out_w, 1, p.stride_w).copy()
    for j in range(1, geo.kernel_w):
        reduce(row_pass, tap(x_window, 0, j, rows, geo.out_w, 1, p.stride_w), out=row_pass)
    y = tap(row_pass, 0, 0, geo.out_h, geo.out_w, p.stride_h, 1).copy()
    for i in range(1, geo.kernel_h):
        reduce(y, tap(row_pass, i, 0, geo.out_h, geo.out_w, p.stride_h, 1), out=y)
    return y


def _window_counts(x_nchw: np.ndarray, p: PoolingParams, geo: PoolGeometry) -> np.ndarray:
    """In-bounds elements of each window, (out_h, out_w)."""
    count_h = in_bounds_count(x_nchw.shape[2], geo.out_h, geo.kernel_h, p.stride_h, geo.pad_top)
    count_w = in_bounds_count(x_nchw.shape[3], geo.out_w, geo.kernel_w, p.stride_w,
                              geo.pad_left)
    return np.outer(count_h, count_w)


def _pool_window(x_nchw: np.ndarray, p: PoolingParams, geo: PoolGeometry) -> np.ndarray:
    """Max or in-bounds average over each window."""
    if p.pool_type == POOL_MAX:
        return _window_reduce(x_nchw, p, geo, np.maximum, -FLT_MAX)
    y = _window_reduce(x_nchw, p, geo, np.add, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        y /= _window_counts(x_nchw, p, geo).astype(np.float32)
    return y


def _pool_global(x_nchw: np.ndarray, is_max: bool) -> np.ndarray:
    n, c, h, w = x_nchw.shape
    flat = x_nchw.reshape(n, c, h * w)
    y = flat.max(axis=2) if is_max else flat.sum(axis=2, dtype=np.float32) / np.float32(h * w)
    return y.reshape(n, c, 1, 1)


def adaptive_bounds(size: int, out: int) -> list[tuple[int, int]]:
    """Window [start, end) of each adaptive output position: floor(o*size/out) to
    ceil((o+1)*size/out), the usual adaptive-pooling rule."""
    return [((o * size) // out, ceil_div((o + 1) * size, out)) for o in range(out)]


def _pool_adaptive(x_nchw: np.ndarray, p: PoolingParams) -> np.ndarray:
    """Adaptive pooling, separably: one reduction per output row, then per output column."""
    n, c, h, w = x_nchw.shape
    if p.output_h <= 0 or p.output_w <= 0:
        raise ValueError(f"adaptive pooling needs a positive output size, got "
                         f"{p.output_h}x{p.output_w}")
    reduce = np.max if p.pool_type == POOL_MAX else np.sum
    rows = np.stack([reduce(x_nchw[:, :, a:b], axis=2)
                     for a, b in adaptive_bounds(h, p.output_h)], axis=2)
    y = np.stack([reduce(rows[:, :, :, a:b], axis=3)
                  for a, b in adaptive_bounds(w, p.output_w)], axis=3)
    if p.pool_type != POOL_MAX:
        count_h = [b - a for a, b in adaptive_bounds(h, p.output_h)]
        count_w = [b - a for a, b in adaptive_bounds(w, p.output_w)]
        y /= np.outer(count_h, count_w).astype(np.float32)
    return y.astype(np.float32, copy=False)


def pool2d(x_nchw: np.ndarray, p: PoolingParams) -> np.ndarray:
    """TNN fp32 Pooling: NCHW float32 input -> NCHW float32 output."""
    n, c, h, w = need_4d(x_nchw, "Pooling")
    if p.pool_type not in (POOL_MAX, POOL_AVG):
        raise ValueError(f"pool_type {p.pool_type} is not supported (0 max, 1 average)")
    x_nchw = x_nchw.astype(np.float32, copy=False)
    if p.is_adaptive_pool:
        return _pool_adaptive(x_nchw, p)
    geo = pool_pads(p, x_nchw.shape)
    if (geo.kernel_h, geo.kernel_w, geo.out_h, geo.out_w) == (h, w, 1, 1) \
            and geo.pad_top == geo.pad_left == 0:
        return _pool_global(x_nchw, p.pool_type == POOL_MAX)
    return _pool_window(x_nchw, p, geo)


def pool_output_shape(p: PoolingParams, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The output shape of ``pool2d`` (with its checks)."""
    n, c, h, w = need_4d(shape, "Pooling")
    if p.pool_type not in (POOL_MAX, POOL_AVG):
        raise ValueError(f"pool_type {p.pool_type} is not supported (0 max, 1 average)")
    if p.is_adaptive_pool:
        if p.output_h <= 0 or p.output_w <= 0:
            raise ValueError(f"adaptive pooling needs a positive output size, got "
                             f"{p.output_h}x{p.output_w}")
        return n, c, p.output_h, p.output_w
    geo = pool_pads(p, shape)
    return n, c, geo.out_h, geo.out_w


def pool2d_onnx(g, p: PoolingParams, x: Value, out: str) -> None:
    """``pool2d`` as ONNX pooling: TNN's geometry as a crop and explicit pads; padding is
    ignored by MaxPool and, with ``count_include_pad=0``, not counted by AveragePool, which
    gives TNN's in-bounds divisor. Adaptive pooling other than global has no export."""
    n, c, h, w = pool_output_shape(p, x.shape)[:2] + x.shape[2:]
    is_max = p.pool_type == POOL_MAX
    if p.is_adaptive_pool:
        if (p.output_h, p.output_w) != (1, 1):
            raise UnsupportedError("adaptive pooling to more than 1x1 has no ONNX export")
        g.node("GlobalMaxPool" if is_max else "GlobalAveragePool", [x.name], out)
        return
    geo = pool_pads(p, x.shape)
    if (geo.kernel_h, geo.kernel_w, geo.out_h, geo.out_w) == (h, w, 1, 1) \
            and geo.pad_top == geo.pad_left == 0:
        g.node("GlobalMaxPool" if is_max else "GlobalAveragePool", [x.name], out)
        return
    kernel = (geo.kernel_h, geo.kernel_w)
    x_name, pads = onnx_window(g, x.name, (h, w), (geo.pad_top, geo.pad_left),
                               (geo.out_h, geo.out_w), (p.stride_h, p.stride_w), kernel)
    if any(pad >= k for pad, k in zip(pads, kernel + kernel)):
        raise UnsupportedError("a pooling window lies entirely in the padding")
    g.node("MaxPool" if is_max else "AveragePool", [x_name], out, kernel_shape=list(kernel),
           pads=pads, strides=[p.stride_h, p.stride_w],
           count_include_pad=None if is_max else 0)


def pool2d_naive(x_nchw: np.ndarray, p: PoolingParams) -> np.ndarray:
    """TNN's NAIVE fp32 Pooling bit for bit (spec int8 §14). Average: the window's in-bounds
    elements summed row by row from 0 in f32 (padding adds exact zeros instead), divided by
    their count. Max pooling is exact in any order, and the NAIVE order of adaptive average
    pooling is not known: both run ``pool2d``."""
    n, c, h, w = need_4d(x_nchw, "Pooling")
    if p.pool_type != POOL_AVG or p.is_adaptive_pool:
        return pool2d(x_nchw, p)
    x = x_nchw.astype(np.float32, copy=False)
    geo = pool_pads(p, x.shape)
    if (geo.kernel_h, geo.kernel_w, geo.out_h, geo.out_w) == (h, w, 1, 1) \
            and geo.pad_top == geo.pad_left == 0:
        return (seq_sum(x.reshape(n, c, h * w), axis=2) / np.float32(h * w)).reshape(n, c, 1, 1)
    rows = (geo.out_h - 1) * p.stride_h + geo.kernel_h
    cols = (geo.out_w - 1) * p.stride_w + geo.kernel_w
    x_window = window_input(x, geo.pad_top, geo.pad_left, rows, cols)
    y = seq_sum_of([tap(x_window, i, j, geo.out_h, geo.out_w, p.stride_h, p.stride_w)
                    for i in range(geo.kernel_h) for j in range(geo.kernel_w)])
    with np.errstate(divide="ignore", invalid="ignore"):
        y /= _window_counts(x, p, geo).astype(np.float32)
    return y


def pool2d_int8(x_q: np.ndarray, p: PoolingParams, device: str) -> np.ndarray:
    """TNN int8 Pooling, no rescaling (input and output share a scale, spec int8 §9): max
    starting from -127; average as the truncated quotient of the window sum, which x86 keeps
    in int16 (spec int8 §12.7, §13). Adaptive pooling has no int8 path."""
    need_4d(x_q, "Pooling")
    if p.pool_type not in (POOL_MAX, POOL_AVG):
        raise ValueError(f"pool_type {p.pool_type} is not supported (0 max, 1 average)")
    if p.is_adaptive_pool:
        raise ValueError("TNN has no int8 adaptive pooling (spec int8 §12.7)")
    geo = pool_pads(p, x_q.shape)
    if p.pool_type == POOL_MAX:
        y = _window_reduce(x_q, p, geo, np.maximum, MAXPOOL_START)
        return np.maximum(y, np.int8(MAXPOOL_START), out=y)
    sums = _window_reduce(x_q.astype(np.int32), p, geo, np.add, 0)
    return pool_average(sums, _window_counts(x_q, p, geo), device)


@register
class Pooling(LayerType):
    names = ("Pooling", "Pooling_nhwc", "Pooling_split_CC")
    quantized_names = ("QuantizedPooling",)
    enum = 4
    Params = PoolingParams
    collects_stats = True

    @classmethod
    def forward(cls, p: PoolingParams, res: None, *xs: np.ndarray) -> np.ndarray:
        return pool2d(xs[0], p)

    @classmethod
    def forward_naive(cls, p: PoolingParams, res: None, *xs: np.ndarray) -> np.ndarray:
        return pool2d_naive(xs[0], p)

    @classmethod
    def output_types(cls, p: PoolingParams, res: None, *xs):
        return [(pool_output_shape(p, xs[0][0]), np.dtype(np.float32))]

    @classmethod
    def to_onnx(cls, p: PoolingParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        pool2d_onnx(g, p, xs[0], ys[0])

    @classmethod
    def exact_onnx(cls, p: PoolingParams) -> bool:
        # a maximum is exact; ONNX pooling ignores the padding where pool2d fills -FLT_MAX,
        # which no finite window maximum is below. Average pooling sums in another order
        return p.pool_type == POOL_MAX and (
            not p.is_adaptive_pool or (p.output_h, p.output_w) == (1, 1))

    @classmethod
    def value_bound(cls, p: PoolingParams, res: None, in_bounds: list[float | None]
                    ) -> float | None:
        return in_bounds[0]   # the window maximum is an input value

    @classmethod
    def forward_int8(cls, p: PoolingParams, res: None, q: Int8Context,
                     *xs: np.ndarray) -> np.ndarray:
        return pool2d_int8(xs[0], p, q.device)
