"""TNN's NAIVE CPU fp32 numerics, bit for bit: the arithmetic whose blobs TNN's quantization
tool calibrates on (spec int8 §0, §5, §14).

The fast kernels (BLAS, numpy's vectorized ``exp``) land within ~1 ulp of TNN, which flips KL
near-ties and ADMM fixed points; mirroring the NAIVE kernels' order reproduces TNN's output
files byte for byte. Three things make the difference:

* **Sequential f32 accumulation.** NAIVE sums ``r = f32(r + f32(x·w))`` from ``r = 0`` in loop
  order (spec int8 §0: no FMA, no reassociation). ``seq_matmul`` and ``seq_sum`` do exactly
  that, vectorized over the *other* axes. They use ``np.add.reduce`` over an axis that is never
  the innermost one: numpy then adds whole rows in index order (pairwise summation is only used
  along the innermost axis). tests/exec/test_naive_math.py pins this down.
* **glibc's ``expf``.** numpy's float32 ``exp`` differs from glibc on ~40% of inputs and a
  float64 ``exp`` rounded to float on ~0.07%; ``expf`` below is glibc's algorithm itself.
* **Double-precision formulas** where TNN writes them (standalone Swish, ``swish_f64``).

Everything is numpy; ctypes reaches the C library only to settle the rare ties of ``swish_f64``
(and in the tests).
"""
from __future__ import annotations

import ctypes
import functools
import platform

import numpy as np

F32 = np.float32
F64 = np.float64

# --- expf: glibc's algorithm ------------------------------------------------------------------
# glibc >= 2.27, sysdeps/ieee754/flt-32/e_expf.c with the table of e_exp2f_data.c (Szabolcs Nagy,
# ARM, 2017). x·N/ln2 = k + r with |r| <= 1/2 (k rounded to nearest by the 1.5·2^52 shift);
# exp(x) = 2^(k/N) · 2^(r/N), 2^(k/N) from a 32-entry table whose entries carry the exponent
# offset (k << 47 is added to the bits), 2^(r/N) ~ C0·r^3 + C1·r^2 + C2·r + 1, all in double,
# rounded to float once. Error 0.502 ulp; this port reproduces every bit of it (the tests run
# it against the C library's expf). x86-64 glibc may run an FMA build of the same source; its
# contracted polynomial differs from this one only in double bits far below float rounding.

EXP2F_TABLE_BITS = 5
_N = 1 << EXP2F_TABLE_BITS
# asuint64(2^(i/32)) - (i << 47), i = 0..31 (e_exp2f_data.c ``tab``)
EXP2F_TABLE = np.array([
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
    0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
    0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
    0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
    0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
    0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
], dtype=np.uint64)
INVLN2_N = float.fromhex("0x1.71547652b82fep+0") * _N     # N/ln2 (``invln2_scaled``)
SHIFT = float.fromhex("0x1.8p+52")                          # rounds z to an integer
EXPF_C0 = float.fromhex("0x1.c6af84b912394p-5") / _N ** 3   # ``poly_scaled`` (exact divisions)
EXPF_C1 = float.fromhex("0x1.ebfce50fac4f3p-3") / _N ** 2
EXPF_C2 = float.fromhex("0x1.62e42ff0c52d6p-1") / _N
EXPF_SPECIAL = F32(88.0)                                   # |x| >= 88 (top12 test) or NaN
EXPF_OVERFLOW = F32(float.fromhex("0x1.62e42ep6"))         # x above: +inf (log 2^128 ~ 88.72)
EXPF_UNDERFLOW = F32(float.fromhex("-0x1.9fe368p6"))       # x below: 0 (log 2^-150 ~ -103.97)

_CHUNK = 1 << 14   # elements per pass of the element-wise double formulas (cache-sized)
_U31 = np.uint64(_N - 1)
_U47 = np.uint64(52 - EXP2F_TABLE_BITS)


def _expf_chunk(x: np.ndarray, out: np.ndarray, xd: np.ndarray, z: np.ndarray, kd: np.ndarray,
                t: np.ndarray, idx: np.ndarray, y: np.ndarray) -> None:
    """glibc expf of a 1-D float32 chunk into ``out``, every double operation in C's order;
    the other arguments are float64/uint64/int64 scratch arrays of the same length."""
    np.copyto(xd, x)                        # xd = (double) x
    np.multiply(xd, INVLN2_N, out=z)        # z = InvLn2N * xd
    np.add(z, SHIFT, out=kd)                # kd = z + SHIFT; ki = asuint64(kd)
    ki = kd.view(np.uint64)
    np.bitwise_and(ki, _U31, out=idx.view(np.uint64))       # ki % N
    np.left_shift(ki, _U47, out=t)          # ki << (52 - 5), wrapping like C's uint64_t
    kd -= SHIFT                             # kd -= SHIFT (ki is not needed any more)
    np.subtract(z, kd, out=z)               # r = z - kd
    r = z
    t += EXP2F_TABLE[idx]                   # t = T[ki % N] + (ki << 47); s = asdouble(t)
    s = t.view(F64)
    np.multiply(r, EXPF_C0, out=kd)         # z = C0 * r + C1
    kd += EXPF_C1
    np.multiply(r, EXPF_C2, out=y)          # y = C2 * r + 1
    y += 1.0
    np.multiply(r, r, out=xd)               # r2 = r * r
    kd *= xd                                # y = z * r2 + y
    y += kd
    y *= s                                  # y = y * s
    np.copyto(out, y, casting="same_kind")  # one rounding to float
    if not (np.abs(x) < EXPF_SPECIAL).all():   # |x| >= 88, inf or NaN: glibc's special cases
        big = ~np.isfinite(x)
        out[big] = (x + x)[big]             # NaN stays NaN, +inf -> inf ...
        out[x == -np.inf] = 0.0             # ... -inf -> 0
        out[(x > EXPF_OVERFLOW) & ~big] = np.inf
        out[(x < EXPF_UNDERFLOW) & ~big] = 0.0


def expf(x: np.ndarray) -> np.ndarray:
    """glibc's ``expf`` (float32 in, float32 out, any shape), bit for bit."""
    x = np.asarray(x, dtype=F32)
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(flat)
    size = min(flat.size, _CHUNK)
    scratch = [np.empty(size, F64), np.empty(size, F64), np.empty(size, F64),
               np.empty(size, np.uint64), np.empty(size, np.int64), np.empty(size, F64)]
    with np.errstate(all="ignore"):
        for i in range(0, flat.size, _CHUNK):
            j = min(i + _CHUNK, flat.size)
            _expf_chunk(flat[i:j], out[i:j], *(a[:j - i] for a in scratch))
    return out.reshape(x.shape)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """NAIVE Sigmoid: ``f32(1 / f32(1 + expf(-x)))``."""
    e = expf(np.negative(x, dtype=F32))
    e += F32(1)
    return np.divide(F32(1), e, out=e)


def sigmoid_mul(x: np.ndarray) -> np.ndarray:
    """NAIVE conv activation 256 (spec int8 §14): ``f32(f32(1 / f32(1 + expf(-x))) · x)``."""
    s = sigmoid(x)
    return np.multiply(s, x, out=s)


# --- swish in double ---------------------------------------------------------------------------
# TNN's standalone Swish evaluates x / (1.0 + exp(-x)) with x promoted to double and C's double
# exp. numpy's float64 exp may differ from glibc's by an ulp of double (on AVX-512 machines for
# a few % of inputs); that changes the float result only when the double quotient lies within a
# few double ulps of a float rounding boundary, which ``_TIE_WINDOW`` detects; those elements are
# recomputed with the C library's exp.

_TIE_WINDOW = 2.0 ** -40   # relative distance to a float rounding boundary that is re-checked


@functools.lru_cache(maxsize=1)
def libm() -> ctypes.CDLL | None:
    """glibc's libm (exp, expf signatures set), or None where there is none."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        lib = ctypes.CDLL("libm.so.6")   # glibc's soname (ctypes.util costs ~10 ms of start-up)
    except OSError:
        return None
    lib.exp.restype, lib.exp.argtypes = ctypes.c_double, [ctypes.c_double]
    lib.expf.restype, lib.expf.argtypes = ctypes.c_float, [ctypes.c_float]
    return lib


def near_float_tie(q: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mask of the doubles ``q`` (rounded to the floats ``y``) that lie within ``_TIE_WINDOW``
    (relative) of a float rounding boundary."""
    yd = y.astype(F64)
    with np.errstate(all="ignore"):
        lo = (yd + np.nextafter(y, F32(-np.inf)).astype(F64)) * 0.5
        hi = (yd + np.nextafter(y, F32(np.inf)).astype(F64)) * 0.5
        gap = np.minimum(np.abs(q - lo), np.abs(q - hi))
        return np.isfinite(q) & (gap <= np.abs(q) * _TIE_WINDOW)


def swish_f64(x: np.ndarray) -> np.ndarray:
    """NAIVE standalone Swish: ``f32(x / (1.0 + exp(-x)))`` evaluated in double."""
    x = np.asarray(x, dtype=F32)
    xd = x.astype(F64)
    with np.errstate(over="ignore", invalid="ignore"):
        q = xd / (1.0 + np.exp(-xd))
    y = q.astype(F32)
    lib = libm()
    if lib is not None:
        ties = np.flatnonzero(near_float_tie(q, y))
        if ties.size:
            flat_x, flat_y = xd.reshape(-1), y.reshape(-1)
            for i in ties:
                v = float(flat_x[i])
                flat_y[i] = v / (1.0 + lib.exp(-v))
    return y


# --- sequential f32 sums -----------------------------------------------------------------------

def seq_sum_of(terms: list[np.ndarray]) -> np.ndarray:
    """``r = 0; r = f32(r + term)`` for the equally shaped float32 arrays ``terms`` in order,
    element-wise."""
    shape = np.shape(terms[0]) if terms else ()
    m = int(np.prod(shape, dtype=np.int64))
    # row 0 is the +0 TNN starts from; a second column keeps the summed axis outer for m = 1
    rows = np.empty((len(terms) + 1, max(m, 2)), dtype=F32)
    rows[0] = 0
    if m < 2:
        rows[1:, m:] = 0
    for i, term in enumerate(terms):
        rows[i + 1, :m] = np.reshape(term, -1)
    return np.add.reduce(rows, axis=0)[:m].reshape(shape)


def seq_sum(x: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    """``r = 0; r = f32(r + x[i])`` for i in order along ``axis`` (float32)."""
    x = np.asarray(x, dtype=F32)
    moved = np.moveaxis(x, axis, 0)
    rest = moved.shape[1:]
    m = int(np.prod(rest, dtype=np.int64))
    rows = np.empty((moved.shape[0] + 1, max(m, 2)), dtype=F32)
    rows[0] = 0
    if m < 2:
        rows[1:, m:] = 0
    rows[1:, :m] = moved.reshape(moved.shape[0], m)
    y = np.add.reduce(rows, axis=0)[:m].reshape(rest)
    return np.expand_dims(y, axis) if keepdims else y


# --- sequential matrix product -----------------------------------------------------------------
# out[g, m, p] = sum_k f32(a[g, m, k] * b[g, k, p]), accumulated from +0 in k order. Per block:
# one broadcast multiply writes the products of a (g, m, k-block, p-block) tile behind a row
# holding the running sums, and one np.add.reduce over that row axis adds them in order. The
# k-blocks run outside the (g, m) blocks, so the b rows of a k-block are read into cache once
# and used by every m; numpy's inner loops run along p. About 4e9 products per second on one
# core; splitting the columns over two threads measured at most 1.2x faster on an idle 2-core
# machine and slower on a busy one, so there is one thread.

PROD_BLOCK = 1 << 17    # floats in one product tile (512 KB: tile + operands stay in L2)
RUN_BLOCK = 4096        # longest p run of a tile (numpy's inner loops)


def _tiles(g: int, m: int, k: int, run: int) -> tuple[int, int, int]:
    """(groups, rows of a, k) per product tile of ``run`` columns."""
    rows = max(PROD_BLOCK // run, 2)
    kb = min(k, rows - 1)
    per = max(rows // (kb + 1), 1)        # (g, m) pairs per tile
    if per >= m:
        return min(g, max(per // m, 1)), m, kb
    return 1, per, kb


class _bufsize:
    """numpy's ufunc buffer size (context-local) set to at most ``run`` floats for a block of
    code: numpy copies a broadcast operand through its buffer whenever the inner loop is
    shorter than the buffer (8192 elements by default), which makes the tile multiplies ~3x
    slower (same values, only the copy differs)."""

    def __init__(self, run: int) -> None:
        self.size = max(16, min(8192, run // 16 * 16))

    def __enter__(self) -> None:
        self.old = np.setbufsize(self.size)

    def __exit__(self, *exc) -> None:
        np.setbufsize(self.old)


def _seq_matmul_tiles(a: np.ndarray, b: np.ndarray, out: np.ndarray, p0: int, p1: int,
                      run: int) -> None:
    g, m, k = a.shape
    gb, mb, kb = _tiles(g, m, k, run)
    buf = np.empty(gb * mb * (kb + 1) * run, dtype=F32)
    a4 = a[:, :, :, None]
    b4 = b[:, None]
    for q0 in range(p0, p1, run):
        q1 = min(q0 + run, p1)
        if q1 - q0 < 2:          # never a 1-wide tile (its reduction would run along k)
            q0 = q1 - 2          # p1 - p0 >= 2: recompute one column of the previous tile
        w = q1 - q0
        for k0 in range(0, k, kb):           # k outermost: the b rows of a k-block stay in
            k1 = min(k0 + kb, k)             # cache for every (g, m) block
            for g0 in range(0, g, gb):
                g1 = min(g0 + gb, g)
                for m0 in range(0, m, mb):
                    m1 = min(m0 + mb, m)
                    acc = out[g0:g1, m0:m1, q0:q1]
                    tile = buf[:(g1 - g0) * (m1 - m0) * (k1 - k0 + 1) * w].reshape(
                        g1 - g0, m1 - m0, k1 - k0 + 1, w)
                    tile[:, :, 0] = 0 if k0 == 0 else acc     # running sums from +0
                    np.multiply(a4[g0:g1, m0:m1, k0:k1], b4[g0:g1, :, k0:k1, q0:q1],
                                out=tile[:, :, 1:])
                    np.add.reduce(tile, axis=2, out=acc)


def seq_matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``out[g, m, p] = Σ_k f32(a[g, m, k] · b[g, k, p])``, summed from +0 in k order with a
    binary32 rounding after every product and every addition (TNN's NAIVE loops).

    ``a`` (G, M, K), ``b`` (G, K, P) float32 (any strides); ``out`` (G, M, P) may be a view.
    """
    a = np.asarray(a, dtype=F32)
    b = np.asarray(b, dtype=F32)
    g, m, k = a.shape
    p = b.shape[2]
    if b.shape[:2] != (g, k):
        raise ValueError(f"seq_matmul: a {a.shape} and b {b.shape} do not match")
    if out is None:
        out = np.empty((g, m, p), dtype=F32)
    if p == 0 or g == 0 or m == 0:
        return out
    if k == 0:
        out[...] = 0
        return out
    if p == 1:   # a 1-wide reduction would run along k itself: pad to 2 columns
        out[...] = seq_matmul(a, np.concatenate([b, b], axis=2))[:, :, :1]
        return out
    tiles = -(-p // RUN_BLOCK)
    run = -(-p // tiles)                    # equal tiles of at most RUN_BLOCK columns
    with _bufsize(run):
        _seq_matmul_tiles(a, b, out, 0, p, run)
    return out


# glibc sysdeps/ieee754/flt-32/e_logf_data.c (table bits 4, polynomial order 4)
_LOGF_TAB = np.array([[float.fromhex(a), float.fromhex(b)] for a, b in [
    ("0x1.661ec79f8f3bep+0", "-0x1.57bf7808caadep-2"),
    ("0x1.571ed4aaf883dp+0", "-0x1.2bef0a7c06ddbp-2"),
    ("0x1.49539f0f010bp+0", "-0x1.01eae7f513a67p-2"),
    ("0x1.3c995b0b80385p+0", "-0x1.b31d8a68224e9p-3"),
    ("0x1.30d190c8864a5p+0", "-0x1.6574f0ac07758p-3"),
    ("0x1.25e227b0b8eap+0", "-0x1.1aa2bc79c81p-3"),
    ("0x1.1bb4a4a1a343fp+0", "-0x1.a4e76ce8c0e5ep-4"),
    ("0x1.12358f08ae5bap+0", "-0x1.1973c5a611cccp-4"),
    ("0x1.0953f419900a7p+0", "-0x1.252f438e10c1ep-5"),
    ("0x1p+0", "0x0p+0"),
    ("0x1.e608cfd9a47acp-1", "0x1.aa5aa5df25984p-5"),
    ("0x1.ca4b31f026aap-1", "0x1.c5e53aa362eb4p-4"),
    ("0x1.b2036576afce6p-1", "0x1.526e57720db08p-3"),
    ("0x1.9c2d163a1aa2dp-1", "0x1.bc2860d22477p-3"),
    ("0x1.886e6037841edp-1", "0x1.1058bc8a07ee1p-2"),
    ("0x1.767dcf5534862p-1", "0x1.4043057b6ee09p-2"),
]])
_LN2 = float.fromhex("0x1.62e42fefa39efp-1")
_A0, _A1, _A2 = (float.fromhex(v) for v in
                 ("-0x1.00ea348b88334p-2", "0x1.5575b0be00b6ap-2", "-0x1.ffffef20a4123p-2"))


def logf(x: np.ndarray) -> np.ndarray:
    """glibc's logf on a float32 array (positive normal/subnormal inputs; others -> NaN).

    Evaluated without FMA contraction; glibc's FMA variant differs only when the double
    result lies within an ulp of a float32 rounding boundary (~1e-8 of inputs).
    """
    x = np.asarray(x, F32)
    ix = x.view(np.uint32).astype(np.int64)
    finite_pos = (ix > 0) & (ix < 0x7F800000)
    one = ix == 0x3F800000
    sub = (ix > 0) & (ix < 0x00800000)
    if sub.any():  # subnormal: normalise
        ix[sub] = (x[sub] * F32(2.0 ** 23)).view(np.uint32).astype(np.int64) - (23 << 23)
    tmp = (ix - 0x3F330000) & 0xFFFFFFFF
    i = (tmp >> 19) % 16
    k = tmp.astype(np.uint32).view(np.int32).astype(np.int64) >> 23
    iz = (ix - (tmp & 0xFF800000)) & 0xFFFFFFFF
    z = iz.astype(np.uint32).view(F32).astype(np.float64)
    invc, logc = _LOGF_TAB[i, 0], _LOGF_TAB[i, 1]
    r = z * invc - 1
    y0 = logc + k * _LN2
    r2 = r * r
    y = _A1 * r + _A2
    y = _A0 * r2 + y
    y = y * r2 + (y0 + r)
    out = y.astype(F32)
    out[one] = 0
    out[~finite_pos] = np.nan
    return out
