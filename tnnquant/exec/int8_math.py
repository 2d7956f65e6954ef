"""TNN's integer numerics: rounding, saturation, quantize/dequantize, requantization.

The only module that knows how TNN turns floats into int8 codes. Every function is vectorized
numpy and evaluates in IEEE binary32 in the order TNN writes it (spec int8 §0 ``f32(...)``).
Three rounding rules exist and must not be mixed up (spec int8 §0):

* ``float2int8`` — TNN's NAIVE saturating cast: ±0.5 added *in f32*, clamp, truncate.
* ``x86_round`` — the same rounding emulated with SSE/AVX: ±0.5 in f32, truncating
  ``cvttps2dq``, saturating packs (spec int8 §13); differs only for NaN and huge values.
* ``rhaz`` — exact round-half-away-from-zero (C ``roundf``), used by the weight quantizer
  and by ARMv8's ``fcvtas``; ``np.round`` (half to even) is none of these.

Scales are float32 vectors of 1 or C entries (index "c, or 0 if the buffer has one element",
spec int8 §12); ``channel_view`` broadcasts them over axis 1 of an NCHW (or NC) blob.
"""
from __future__ import annotations

import numpy as np

f32 = np.float32

QMIN = -128          # runtime activations use [-128, 127] (spec int8 §12.1); weight codes
QMAX = 127           # stay in [-127, 127] (§8.6), which is the weight quantizer's business
MAXPOOL_START = -127  # int8 max pooling starts from -127, not -128 (spec int8 §12.7, §13)
HALF = f32(0.5)      # the rounding offset, added in binary32 (spec int8 §0)
FLT_MIN = f32(np.finfo(np.float32).tiny)  # requantization factors are 0 below it (§12.3)
INT32_INDEFINITE = np.iinfo(np.int32).min  # cvttps2dq result for NaN / out of range (Intel SDM)
F32_EXACT_INT = 2**24  # binary32 holds every integer up to here: exact f32 sums of products

DEVICES = ("x86", "naive")  # x86 stands for ARM too: both give identical blobs on symmetric models


# --- rounding rules ---------------------------------------------------------------------------

def rhaz(x: np.ndarray) -> np.ndarray:
    """Exact round-half-away-from-zero (C ``roundf``): 2.5 -> 3, -2.5 -> -3,
    0.49999997 -> 0 (spec int8 §0). Returns float values (float64 for integer input)."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    # x ± 0.5 rounds up ties it should not (0.49999997 + 0.5 is 1.0 in f32); adding the float
    # just below 0.5 reaches the next integer exactly when |frac(x)| >= 0.5, then trunc drops
    # the rest: equal to the floor-and-compare formula on all 2^32 binary32 values (checked
    # exhaustively; the binary64 argument is the same), in 3 array passes instead of 7
    below_half = np.nextafter(x.dtype.type(0.5), x.dtype.type(0))
    with np.errstate(invalid="ignore"):
        return np.trunc(x + np.copysign(below_half, x))


def trunc(x: np.ndarray) -> np.ndarray:
    """C conversion to integer: toward zero (spec int8 §0). Returns float values."""
    return np.trunc(x)


def _plus_half(x: np.ndarray) -> np.ndarray:
    """``x + 0.5f`` if x >= 0 else ``x - 0.5f``, one binary32 addition (spec int8 §0).
    copysign agrees with the comparison everywhere (-0.0 gives -0.5, which truncates to 0 too)."""
    x = np.asarray(x, dtype=f32)
    return x + np.copysign(HALF, x)


def float2int8(x: np.ndarray) -> np.ndarray:
    """TNN's NAIVE saturating cast (spec int8 §0, §12.1): ±0.5 added in f32, clamp to
    [-128, 127] (``t < 127 ? t : 127`` then ``t > -128 ? t : -128``, so NaN -> 127), truncate."""
    t = _plus_half(x)
    # fmin/fmax return the number when the other operand is NaN: NaN -> 127 like TNN's ternaries
    np.fmin(t, f32(QMAX), out=t)
    np.fmax(t, f32(QMIN), out=t)
    return t.astype(np.int8)


def x86_round(x: np.ndarray) -> np.ndarray:
    """TNN's x86 SSE/AVX rounding (spec int8 §13): ``x ± 0.5f`` chosen by ``x >= 0`` (NaN takes
    -0.5), truncating ``cvttps2dq`` (NaN and |t| >= 2**31 give INT32_MIN), then saturating
    packs to [-128, 127]. Equal to ``float2int8`` except NaN / huge positive values -> -128."""
    t = _plus_half(x)
    # two reductions (NaN makes them fail the test) spare a mask pass in the common case
    if t.size and not (-2.0**31 < t.min() and t.max() < 2.0**31):
        t[~(np.abs(t) < f32(2.0**31))] = INT32_INDEFINITE   # NaN and out-of-range lanes
    np.clip(t, f32(QMIN), f32(QMAX), out=t)                # the saturating packs
    return t.astype(np.int8)


def round_to_int8(x: np.ndarray, device: str) -> np.ndarray:
    """The device's float -> int8 rounding."""
    return x86_round(x) if device == "x86" else float2int8(x)


def fma_f32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``f32(a * b + c)`` with a single rounding, as an FMA instruction computes it.

    The product of two binary32 values is exact in double; the double sum is made
    round-to-odd (its exact error from TwoSum decides the sticky bit), which makes the final
    rounding to binary32 correct, with no double-rounding error.
    """
    p = np.asarray(a, np.float64) * np.asarray(b, np.float64)
    c = np.asarray(c, np.float64)
    s = p + c
    bb = s - p
    err = (p - (s - bb)) + (c - bb)          # TwoSum: p + c == s + err exactly
    inexact_even = (err != 0) & ((s.view(np.int64) & 1) == 0)
    s[inexact_even] = np.nextafter(s[inexact_even], np.copysign(np.inf, err[inexact_even]))
    return s.astype(f32)


# --- per-channel parameters -------------------------------------------------------------------

def channel_view(v: np.ndarray, ndim: int) -> np.ndarray:
    """A per-channel vector shaped to broadcast over axis 1 of an ``ndim``-D blob; a
    one-element vector becomes a scalar (spec int8 §12: index c, or 0)."""
    v = np.asarray(v).reshape(-1)
    if v.size == 1:
        return v.reshape(())
    return v.reshape((1, v.size) + (1,) * max(ndim - 2, 0))


def check_channels(v: np.ndarray, shape: tuple[int, ...], what: str) -> None:
    """A per-channel vector must match the blob's channels (dim 1)."""
    size = np.asarray(v).size
    if size != 1 and (len(shape) < 2 or shape[1] != size):
        raise ValueError(f"{what} has {size} channel values, the blob has shape {shape}")


def reciprocal(scale: np.ndarray) -> np.ndarray:
    """``f32(1.0 / scale)`` with the division in double, as x86 kernels precompute it
    (spec int8 §13); a zero scale gives inf."""
    with np.errstate(divide="ignore"):
        return (1.0 / np.asarray(scale, np.float64)).astype(f32)


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``f32(num / den)``, or 0 where ``den < FLT_MIN`` (spec int8 §12.3: requantization
    factors such as ``M = S / s_out`` and ``A = s_add / s_out``)."""
    num, den = np.broadcast_arrays(np.asarray(num, f32), np.asarray(den, f32))
    out = np.zeros(num.shape, f32)
    ok = den >= FLT_MIN
    out[ok] = num[ok] / den[ok]
    return out


def relu6_limit(s_out: np.ndarray) -> np.ndarray:
    """The int8 code of 6.0, ``r6 = float2int8(f32(6 / s_out))`` (spec int8 §12.3, §13)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float2int8(f32(6) / np.asarray(s_out, f32))


# --- quantize / dequantize --------------------------------------------------------------------

def quantize(x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None = None,
             device: str = "x86") -> np.ndarray:
    """fp32 -> int8 with a blob's scale (Reformat layers, the blob converter).

    x86 (spec int8 §13): ``x86_round(x * f32(1.0 / scale))`` — a reciprocal multiply, no
    zero-scale guard, zero points ignored. NAIVE (§12.2): ``scale != 0 ?
    float2int8(f32(f32(x / scale) + zp)) : 0`` — a real division.
    """
    x = np.asarray(x, f32)
    check_channels(scale, x.shape, "scale")
    if device == "x86":
        with np.errstate(invalid="ignore", over="ignore"):
            return x86_round(x * channel_view(reciprocal(scale), x.ndim))
    s = channel_view(np.asarray(scale, f32), x.ndim)
    zp = 0 if zero_point is None else channel_view(np.asarray(zero_point, f32), x.ndim)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        q = float2int8((x / s) + zp)
    return np.where(s != 0, q, np.int8(0))


def dequantize(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None = None,
               device: str = "x86", folded: np.ndarray | None = None) -> np.ndarray:
    """int8 -> fp32. x86 (spec int8 §13): ``f32(q * scale)``; NAIVE (§12.2):
    ``f32(scale * f32((float)q - (float)zp))`` — identical when the zero point is 0.
    ``folded``: a zero point tnnquant folded into the biases around the blob
    (``BlobScale.folded_zero_point``), subtracted on every device."""
    q = np.asarray(q)
    check_channels(scale, q.shape, "scale")
    s = channel_view(np.asarray(scale, f32), q.ndim)
    if folded is not None:
        q = q.astype(f32) - channel_view(np.asarray(folded, f32), q.ndim)
    if device == "x86" or zero_point is None:
        return q.astype(f32) * s
    return (q.astype(f32) - channel_view(np.asarray(zero_point, f32), q.ndim)) * s


# --- integer accumulation ---------------------------------------------------------------------

def exact_terms(a: np.ndarray, b: np.ndarray) -> int:
    """How many products of an element of ``a`` and one of ``b`` (integer-valued float32
    arrays) an f32 sum adds exactly in any order: every partial sum must stay below 2**24.
    For int8 codes (|q_x * q_w| <= 128 * 127) that is at least 1032 terms; fewer once NAIVE
    subtracts zero points (codes then span [-255, 255])."""
    def max_abs(v: np.ndarray) -> float:   # two reductions, no temporary array
        return max(-float(v.min()), float(v.max()), 1.0) if v.size else 1.0

    return max(int(F32_EXACT_INT // (max_abs(a) * max_abs(b))), 1)


def int_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact ``a @ b`` of integer-valued float32 arrays (any numpy matmul shapes): TNN
    accumulates in int32 (spec int8 §12.3). An f32 BLAS matmul is exact up to ``exact_terms``
    terms and then returned as is (float32 integers below 2**24); longer sums are split and the
    parts added in double (float64 result)."""
    k = a.shape[-1]
    step = exact_terms(a, b)
    if k <= step:
        return np.matmul(a, b)
    out = None
    for k0 in range(0, k, step):
        part = np.matmul(a[..., k0:k0 + step], b[..., k0:k0 + step, :])
        out = part.astype(np.float64) if out is None else out + part
    return out


def accumulator_f32(acc: np.ndarray, bias: np.ndarray | None, ndim: int) -> np.ndarray:
    """``(float)(acc + bq)``: TNN's int32 sum converted to binary32 once, rounding to nearest
    even above 2**24 (spec int8 §12.3 step 3). The sum wraps around like TNN's (x86 adds
    with ``paddd``, the bias its depthwise kernels' first term): a bias at the int32 limits,
    which TNN's tool writes where ``b / S`` is out of range (spec §8.1: x86 converts it to
    INT32_MIN), carries ``acc + bq`` around to the other sign. ``acc`` holds exact integers:
    float32 ones (below 2**24) are updated in place when the sum stays exact in f32, which is
    the common case and spares a wider copy."""
    largest_bias = 0.0 if bias is None else float(
        np.abs(np.asarray(bias, np.float64)).max(initial=0))
    if acc.dtype == f32:
        if acc.size == 0 or max(-float(acc.min()), float(acc.max())) < \
                F32_EXACT_INT - largest_bias:
            if bias is not None:
                acc += channel_view(np.asarray(bias, f32), ndim)
            return acc
    total = np.asarray(acc, np.float64)
    if bias is not None:   # exact: integers far below 2**53
        total = total + channel_view(np.asarray(bias, np.float64), ndim)
    if total.size and not (-2.0**31 <= total.min() and total.max() < 2.0**31):
        total = (total + 2.0**31) % 2.0**32 - 2.0**31   # exact: a power-of-two modulus
    return total.astype(f32)


# --- layer epilogues --------------------------------------------------------------------------

# TNN's FusionType for a conv that absorbed an Add (spec int8 §11.2)
FUSION_NONE, FUSION_ADD_ACT, FUSION_ACT_ADD = 0, 1, 2


def requantize_conv(acc: np.ndarray, bias: np.ndarray | None, m: np.ndarray, s_out: np.ndarray,
                    activation: str | None = None, add: np.ndarray | None = None,
                    add_factor: np.ndarray | None = None, fusion: int = FUSION_NONE,
                    device: str = "x86", zp_out: np.ndarray | None = None,
                    zp_add: np.ndarray | None = None) -> np.ndarray:
    """Convolution / InnerProduct output codes from the exact accumulator (spec int8 §12.3,
    §12.4, §13): ``v = f32((float)(acc + bq) * M[o])``, the fused ``activation`` ("relu",
    "relu6" or None) in f32, the fused add (operand codes ``add``, factor ``A = s_add/s_out``)
    before or after it as ``fusion`` says, then the device rounding. ``acc`` (exact integers,
    see ``accumulator_f32``) may be overwritten.

    x86 ignores zero points, clamps ReLU6 in f32 at ``r6`` and computes the fused add as one
    FMA ``fma(a_q, A[o], v)``: TNN's x86 kernels are built with ``-mfma -ffast-math`` and the
    compiler contracts it (spec int8 §13 allows it; the real X86 goldens confirm it: with two
    roundings 2 of the 12 MobileNetV2 golden outputs differ by up to 6 LSB, with the FMA all 12
    are bit-exact). NAIVE adds ``f32(f32(a_q*A) - f32(zp_a*A))``, applies ReLU6 as
    ``max(0, min(float2int8(v), r6))`` and stops there (no zero point, no later add: a TNN
    quirk), else ends with ``float2int8(f32(v + zp_out))`` (§12.3 steps 3-7).
    """
    ndim = acc.ndim
    v = accumulator_f32(acc, bias, ndim)
    v *= channel_view(m, ndim)

    def add_to(v: np.ndarray) -> np.ndarray:
        a = channel_view(add_factor, ndim)
        if device == "x86":
            return fma_f32(add, a, v)
        term = add.astype(f32) * a
        if zp_add is not None:
            term -= channel_view(np.asarray(zp_add, f32), ndim) * a
        return v + term

    if add is not None and fusion == FUSION_ADD_ACT:
        v = add_to(v)
    if activation == "relu":
        np.maximum(v, 0, out=v)
    elif activation == "relu6":
        r6 = channel_view(relu6_limit(s_out), ndim)
        if device != "x86":
            return np.maximum(np.minimum(float2int8(v), r6), np.int8(0))
        np.minimum(np.maximum(v, 0, out=v), r6.astype(f32), out=v)
    if add is not None and fusion == FUSION_ACT_ADD:
        v = add_to(v)
    if device != "x86" and zp_out is not None:
        v += channel_view(np.asarray(zp_out, f32), ndim)
    return round_to_int8(v, device)


def requantize_add(xs: list[np.ndarray], scales: list[np.ndarray], s_out: np.ndarray,
                   zero_points: list[np.ndarray] | None = None,
                   zp_out: np.ndarray | None = None, device: str = "x86") -> np.ndarray:
    """Element-wise sum of int8 blobs with different scales (spec int8 §12.5, §13).

    x86: ``x86_round(f32(f32(q0*s0 + q1*s1) * f32(1.0/s_out)))``, exactly two inputs, no zero
    points. NAIVE: ``a = s0*(q0-zp0)``, ``a += sj*(qj-zpj)`` for each further input,
    ``float2int8(f32(a / s_out) + zp_out)``; the per-channel decision is input 0's.
    """
    ndim = xs[0].ndim
    if device == "x86":
        if len(xs) != 2:
            raise ValueError(f"TNN's x86 int8 Add takes exactly 2 inputs, got {len(xs)}")
        a = xs[0].astype(f32) * channel_view(scales[0], ndim)
        a += xs[1].astype(f32) * channel_view(scales[1], ndim)
        with np.errstate(invalid="ignore"):   # a dead channel's 0·(1/0): NaN, as in TNN
            a *= channel_view(reciprocal(s_out), ndim)
        return x86_round(a)
    per_channel = np.size(scales[0]) > 1
    zps = zero_points or [np.zeros(1, np.int8)] * len(xs)

    def pick(v: np.ndarray) -> np.ndarray:  # input 0 decides: index c, or 0 for every buffer
        v = np.asarray(v, f32).reshape(-1)
        return channel_view(v if per_channel else v[:1], ndim)

    a = None
    for q, s, zp in zip(xs, scales, zps):
        term = pick(s) * (q.astype(f32) - pick(zp))
        a = term if a is None else a + term
    zo = 0 if zp_out is None else pick(zp_out)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float2int8(a / pick(s_out) + zo)


def requantize_tensor(q: np.ndarray, s_in: np.ndarray, s_out: np.ndarray,
                      zp_in: int = 0, zp_out: int = 0, device: str = "x86") -> np.ndarray:
    """One per-tensor int8 blob to another per-tensor scale (Concat inputs, spec int8 §12.6,
    §13). x86: ``x86_round(q * f32(s_in / s_out))`` with the ratio precomputed; NAIVE:
    ``float2int8(f32(f32(f32((float)(q - zp_in) * s_in) / s_out) + zp_out))``."""
    s_in, s_out = f32(np.asarray(s_in).reshape(-1)[0]), f32(np.asarray(s_out).reshape(-1)[0])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if device == "x86":
            return x86_round(q.astype(f32) * (s_in / s_out))
        d = (q.astype(np.int32) - int(zp_in)).astype(f32)
        return float2int8((d * s_in) / s_out + f32(zp_out))


def pool_average(window_sum: np.ndarray, count: np.ndarray, device: str = "x86") -> np.ndarray:
    """Int8 average pooling from the exact window sums: x86 keeps the sum in int16 (wraps when
    a window has more than 258 elements, e.g. 17x17 global pooling); both divide and truncate
    toward zero (spec int8 §12.7, §13). ``count`` = in-bounds elements of each window."""
    s = np.asarray(window_sum).astype(np.int64)
    if device == "x86":
        s = s.astype(np.int16).astype(np.int64)   # two's-complement wrap of the int16 sum
    count = np.asarray(count).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.abs(s) // np.maximum(count, 1) * np.sign(s)   # C division truncates toward zero
    return q.astype(np.int8)
