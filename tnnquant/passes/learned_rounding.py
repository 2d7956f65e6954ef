"""Learned weight rounding: each int8 weight rounded up or down so that the layer's *output*
error on the calibration data is smallest, not each weight's own error.

Rounding to nearest minimizes ``|w - q·S|`` weight by weight; what matters is the output
``Σ_k w_k x_k``, whose error ``Σ_k (w_k - q_k S) x_k`` depends on how the inputs co-vary. With
the input second moments ``H = E[x xᵀ]`` from the calibration data, the output error of a row
is ``(w - qS) H (w - qS)ᵀ``. AdaRound learns the up/down choice by gradient descent on that
objective; here it is solved the closed-form greedy way of Optimal Brain Quantization /
GPTQ (Frantar et al. 2022, "GPTQ", Algorithm 1): weights are rounded one input column at a
time and each rounding error is compensated on the columns not yet rounded, through the
Cholesky factor of ``H⁻¹``. Plain numpy, one float pass for ``H`` and ``O(O·K²)`` per layer
(bounded time: no iterations).

The rows keep the scales ``S`` of the recipe's weight method; only the integer codes change.
The weights are rounded in the domain the runtime uses: folded with the input blob scale
(``w·s_in``, spec int8 §8.1) against input codes ``x / s_in``. Ordinary convolutions
(group 1), depthwise convolutions (one 9x9-sized problem per channel) and inner products are
handled; other grouped convolutions keep their rounding.
"""
from __future__ import annotations

import threading

import numpy as np

from ..exec.executor import Executor
from ..formats.rawbuffer import DataType, RawBuffer
from ..ir.graph import Graph, Layer
from ..layers.convolution import Convolution, conv_pads, tap_dilation
from ..layers.inner_product import InnerProduct
from ..parallel import PARALLEL_MIN_ELEMS, map_blocks
from ..weights.methods.base import QMAX
from .context import PassContext

# H += DAMP · mean(diag H) · I: GPTQ's default, keeps the Cholesky factor well conditioned
# when some inputs are (nearly) collinear or constant on the few calibration samples
DAMP = 0.01
BLOCK = 128          # columns rounded before the lazy update of the rest (GPTQ's block size)
# a layer is re-rounded only when H (K x K) is estimated from at least this many input
# windows per dimension: with fewer (an inner product on 14 samples: rank 14 for K = 1152)
# H is singular or noisy and the rounding would fit the calibration samples, not the layer
MIN_WINDOWS_PER_K = 4
# windows (float64) turned into H at once: H is summed over chunks of this many bytes (or of
# as many windows as H has rows, when that is more)
WINDOW_BYTES = 1 << 24


def _kind(layer: Layer) -> str | None:
    if layer.kind is InnerProduct:
        return "dense"
    if layer.kind is not Convolution:
        return None
    p = layer.params
    if p.group == 1:
        return "dense"
    if p.group == p.output_channel and p.input_channel == 1:
        return "depthwise"
    return None


def _padded(x: np.ndarray, layer: Layer):
    """(x zero-padded to exactly the rows and columns the convolution's windows cover, the
    window geometry, the tap dilations)."""
    p = layer.params
    n, c, h, w = x.shape
    geo = conv_pads(p, h, w)
    dil_h, dil_w = tap_dilation(p)
    rows = (geo.out_h - 1) * p.stride_h + dil_h * (p.kernel_h - 1) + 1
    cols = (geo.out_w - 1) * p.stride_w + dil_w * (p.kernel_w - 1) + 1
    padded = np.zeros((n, c, rows, cols), np.float32)
    src_t, src_l = max(-geo.pad_top, 0), max(-geo.pad_left, 0)
    dst_t, dst_l = max(geo.pad_top, 0), max(geo.pad_left, 0)
    hh = min(h - src_t, rows - dst_t)
    ww = min(w - src_l, cols - dst_l)
    padded[:, :, dst_t:dst_t + hh, dst_l:dst_l + ww] = x[:, :, src_t:src_t + hh,
                                                         src_l:src_l + ww]
    return padded, geo, (dil_h, dil_w)


def patches_at(x: np.ndarray, layer: Layer, at: np.ndarray | None,
               out: np.ndarray | None = None, padded: tuple | None = None) -> np.ndarray:
    """Convolution input windows (C, taps, len(at)) at the flat (sample, position) indices
    ``at`` (sample·out_h·out_w + position; None: every one, in that order), taps in the
    filter's (kh, kw) order, zeros in the padding; an InnerProduct's flattened input as
    (K, 1, len(at)). Only the windows asked for are built. ``out``: a C-contiguous array to
    fill (any float dtype; e.g. a buffer reused between calls: these arrays reach hundreds of
    MB, and fresh ones cost their page faults every time). ``padded``: ``_padded(x, layer)``
    when the caller already has it (several calls on one input)."""
    n = len(x)
    if out is not None and not out.flags.c_contiguous:
        raise ValueError("patches_at: out must be C-contiguous")
    if layer.kind is InnerProduct:
        cols = x.reshape(n, -1)[slice(None) if at is None else at].T[:, None, :]
        if out is None:
            return np.ascontiguousarray(cols)
        out[...] = cols
        return out
    p = layer.params
    padded, geo, (dil_h, dil_w) = padded or _padded(x, layer)
    count = n * geo.out_h * geo.out_w if at is None else len(at)
    if out is None:
        out = np.empty((x.shape[1], p.kernel_h * p.kernel_w, count), padded.dtype)
    if at is not None:
        sample, position = np.divmod(at, geo.out_h * geo.out_w)
        row, col = np.divmod(position, geo.out_w)
        row, col = row * p.stride_h, col * p.stride_w
    last_row, last_col = (geo.out_h - 1) * p.stride_h + 1, (geo.out_w - 1) * p.stride_w + 1
    # (C, taps, N, out_h, out_w): a view, out being contiguous
    every = out.reshape(x.shape[1], -1, n, geo.out_h, geo.out_w) if at is None else None
    for t, (i, j) in enumerate((i, j) for i in range(p.kernel_h) for j in range(p.kernel_w)):
        top, left = i * dil_h, j * dil_w
        if at is None:   # (N, C, out_h, out_w) -> (C, N, out_h, out_w), one copy per tap
            every[:, t] = padded[:, :, top:top + last_row:p.stride_h,
                                 left:left + last_col:p.stride_w].transpose(1, 0, 2, 3)
        else:
            out[:, t, :] = padded[sample, :, row + top, col + left].T   # (len(at), C)
    return out


def window_shape(x: np.ndarray, layer: Layer) -> tuple[int, int, int]:
    """(C, taps, M): channels, taps and positions per sample of the windows ``patches_at``
    builds."""
    if layer.kind is InnerProduct:
        return int(np.prod(x.shape[1:])), 1, 1
    p = layer.params
    geo = conv_pads(p, *x.shape[2:])
    return x.shape[1], p.kernel_h * p.kernel_w, geo.out_h * geo.out_w


class _Hessians:
    """Σ x xᵀ of every handled layer's input windows, every window of every calibration
    sample (a random subset of them made the codes, and PP-LCNet's worst photo, depend on
    the draw), a chunk of ``WINDOW_BYTES`` at a time so that memory holds one run's blobs and
    one chunk. In float64 throughout: with GPTQ's damping H's condition number reaches
    ~100·K, and float32 products moved MobileNetV2's mean photo cosine by 0.001."""

    def __init__(self, graph: Graph) -> None:
        self.layers = {lay.name: lay for lay in graph.layers
                       if lay.quantized and _kind(lay) is not None}
        self.by_input: dict[str, list[Layer]] = {}
        for lay in self.layers.values():
            self.by_input.setdefault(lay.inputs[0], []).append(lay)
        self.h: dict[str, np.ndarray] = {}
        self.windows: dict[str, int] = {}   # input windows seen per layer
        self._buffers = threading.local()   # each thread's chunk of windows, float64, reused

    def _scratch(self, size: int) -> np.ndarray:
        buffer = getattr(self._buffers, "array", None)
        if buffer is None or buffer.size < size:
            buffer = self._buffers.array = np.empty(size)
        return buffer[:size]

    def _chunks(self, x: np.ndarray, lay: Layer) -> list[tuple[slice, np.ndarray | None]]:
        """``x``'s windows in chunks of ``WINDOW_BYTES``: (samples, None) for whole samples
        (strided copies) when one sample's windows fit in a chunk, else (every sample, flat
        (sample, position) indices) for runs of positions."""
        c, t, m = window_shape(x, lay)
        # windows per chunk: no fewer than H has rows, so that adding a chunk's product to H
        # costs ~1/K of computing it, and a chunk's memory stays within H's own
        step = max(WINDOW_BYTES // (8 * c * t), c * t)
        if m <= step:
            per = step // m
            return [(slice(i, i + per), None) for i in range(0, len(x), per)]
        return [(slice(None), np.arange(i, min(i + step, len(x) * m)))
                for i in range(0, len(x) * m, step)]

    def _product(self, x: np.ndarray, lay: Layer, padded: tuple | None,
                 chunk: tuple[slice, np.ndarray | None]) -> np.ndarray:
        """Σ x xᵀ over one chunk's windows (depthwise: per channel, taps x taps); ``padded``:
        ``_padded(x, lay)`` for chunks of positions, None for chunks of whole samples."""
        samples, at = chunk
        part = x[samples]
        c, t, m = window_shape(part, lay)
        count = len(part) * m if at is None else len(at)
        cols = patches_at(part, lay, at, self._scratch(c * t * count).reshape(c, t, -1),
                          padded)
        if _kind(lay) == "depthwise":
            return np.matmul(cols, cols.transpose(0, 2, 1))
        flat = cols.reshape(c * t, -1)
        return flat @ flat.T

    def hook(self, name: str, x: np.ndarray, layer: Layer | None) -> None:
        for lay in self.by_input.get(name, []):
            c, t, m = window_shape(x, lay)
            self.windows[lay.name] = self.windows.get(lay.name, 0) + len(x) * m
            chunks = self._chunks(x, lay)
            padded = _padded(x, lay) if lay.kind is Convolution and chunks[0][1] is not None \
                else None
            # two chunks at a time on two threads (one BLAS thread each: the recipe's
            # setting), their products added in chunk order: H does not depend on the
            # thread count
            parallel = len(chunks) > 1 and c * t * len(x) * m >= 2 * PARALLEL_MIN_ELEMS
            for i in range(0, len(chunks), 2):
                for h in map_blocks(lambda chunk: self._product(x, lay, padded, chunk),
                                    chunks[i:i + 2], parallel):
                    if lay.name in self.h:
                        self.h[lay.name] += h
                    else:
                        self.h[lay.name] = h


def _rhaz_clip(v: np.ndarray) -> np.ndarray:
    return np.clip(np.copysign(np.floor(np.abs(v) + 0.5), v), -QMAX, QMAX)


def _inverse_cholesky(h: np.ndarray) -> np.ndarray:
    """Upper Cholesky factor of H⁻¹ (batched over leading axes), H damped (module docstring)."""
    k = h.shape[-1]
    diag = np.diagonal(h, axis1=-2, axis2=-1)
    damp = DAMP * diag.mean(axis=-1)[..., None, None] * np.eye(k) + 1e-12 * np.eye(k)
    inv = np.linalg.inv(h + damp)
    return np.swapaxes(np.linalg.cholesky(inv), -1, -2)


def gptq_round(w: np.ndarray, scale: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Integer codes (O, K) for weights ``w`` (O, K) on the grid ``scale`` (O,) minimizing the
    output error under input second moments ``h`` (K, K) greedily (GPTQ, module docstring)."""
    w = np.array(w, np.float64)
    s = np.asarray(scale, np.float64)[:, None]
    h = np.array(h, np.float64)
    dead = np.diagonal(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    u = _inverse_cholesky(h)
    live = s[:, 0] != 0
    safe = np.where(s != 0, s, 1)
    q = np.zeros_like(w)
    k = w.shape[1]
    for b0 in range(0, k, BLOCK):
        b1 = min(b0 + BLOCK, k)
        wb = w[:, b0:b1].copy()
        err = np.zeros_like(wb)
        for i in range(b1 - b0):
            col = wb[:, i]
            qi = _rhaz_clip(col / safe[:, 0]) * live
            q[:, b0 + i] = qi
            e = (col - qi * s[:, 0]) / u[b0 + i, b0 + i]
            wb[:, i:] -= np.outer(e, u[b0 + i, b0 + i:b1])
            err[:, i] = e
        w[:, b1:] -= err @ u[b0:b1, b1:]
    return q


def gptq_round_depthwise(w: np.ndarray, scale: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``gptq_round`` for C independent rows: ``w`` (C, T), ``scale`` (C,), ``h`` (C, T, T)."""
    w = np.array(w, np.float64)
    s = np.asarray(scale, np.float64)
    h = np.array(h, np.float64)
    t = w.shape[1]
    dead = np.diagonal(h, axis1=1, axis2=2) == 0
    idx = np.arange(t)
    h[:, idx, idx] = np.where(dead, 1, h[:, idx, idx])
    w[dead] = 0
    u = _inverse_cholesky(h)
    live = s != 0
    safe = np.where(live, s, 1)
    q = np.zeros_like(w)
    for i in range(t):
        qi = _rhaz_clip(w[:, i] / safe) * live
        q[:, i] = qi
        e = (w[:, i] - qi * s) / u[:, i, i]
        w[:, i:] -= e[:, None] * u[:, i, i:]
    return q


def _folded(layer: Layer, float_res, in_scale: np.ndarray, taps: int) -> np.ndarray:
    """Float weights (O, K) folded with the input scale as TNN folds them (spec int8 §8.1);
    for a depthwise conv the scale multiplies in afterwards, so ``w·s_in`` is the same grid."""
    buf = float_res.weights
    out_ch = layer.params.output_channel if layer.kind is Convolution else \
        layer.params.num_output
    w = buf.data.astype(np.float64).reshape(out_ch, -1)
    if _kind(layer) == "depthwise":
        s_in = in_scale if in_scale.size > 1 else np.full(out_ch, in_scale[0])
        return w * s_in[:, None]
    s_in = np.broadcast_to(in_scale, (w.shape[1] // taps,)) if in_scale.size == 1 else in_scale
    return w * np.repeat(s_in, taps)[None, :]


def learn_rounding(graph: Graph, ctx: PassContext) -> Graph:
    """Return a copy whose handled int8 layers hold GPTQ-rounded codes (module docstring)."""
    hessians = _Hessians(graph)
    if not hessians.layers:
        return graph
    executor = Executor(ctx.float_graph, fp32=ctx.config.fp32)
    done = 0
    for run in ctx.runs()():
        executor.run(run, hooks=[hessians.hook], observe=hessians.by_input)
        done += len(next(iter(run.values())))
        ctx.tick("learned rounding", done)
    graph = graph.copy()
    skipped = []
    for name, lay in hessians.layers.items():
        if name not in hessians.h:
            continue
        k = hessians.h[name].shape[-1]
        if hessians.windows[name] < MIN_WINDOWS_PER_K * k:
            skipped.append(name)
            continue
        res = graph.resources[name]
        in_scale = graph.blob_scales[lay.inputs[0]].scale.astype(np.float64)
        taps = lay.params.kernel_h * lay.params.kernel_w if lay.kind is Convolution else 1
        w = _folded(lay, ctx.float_graph.resources[name], in_scale, taps)
        weight_scale = res.scale.data.astype(np.float64)
        grid = np.broadcast_to(weight_scale, (len(w),))   # the stored scale is w·s_in's grid
        if _kind(lay) == "depthwise":
            s_in = in_scale if in_scale.size > 1 else np.full(len(w), in_scale[0])
            h = hessians.h[name] / np.square(_nonzero(s_in))[:, None, None]
            codes = gptq_round_depthwise(w, grid, h)
        else:
            s_cols = np.repeat(np.broadcast_to(in_scale, (w.shape[1] // taps,))
                               if in_scale.size == 1 else in_scale, taps)
            h = hessians.h[name] / np.outer(_nonzero(s_cols), _nonzero(s_cols))
            codes = gptq_round(w, grid, h)
        new = RawBuffer.of(codes.astype(np.int8).reshape(-1), DataType.INT8)
        graph.resources[name] = res.with_weights(new)
    if skipped:
        ctx.notes.append(f"learned rounding: {len(skipped)} layer(s) keep nearest rounding "
                         f"(fewer than {MIN_WINDOWS_PER_K} calibration input windows per "
                         f"weight of a row)")
    return graph


def _nonzero(s: np.ndarray) -> np.ndarray:
    """Scales with 0 (dead channels, whose weights fold to 0 anyway) replaced by 1."""
    return np.where(s != 0, s, 1.0)
