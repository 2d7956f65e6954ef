"""naive_math: glibc's expf bit for bit (against the C library where there is one), the double
Swish, and the sequential f32 sums (against plain loops, on data where any other order or an
FMA changes the result)."""
from __future__ import annotations

import itertools
import math
import struct
from decimal import Decimal, getcontext

import numpy as np
import pytest

from tnnquant.exec import naive_math
from tnnquant.exec.naive_math import (EXP2F_TABLE, EXPF_OVERFLOW, EXPF_UNDERFLOW, expf,
                                      near_float_tie, seq_matmul, seq_sum, seq_sum_of,
                                      sigmoid, sigmoid_mul, swish_f64)

F32 = np.float32
LIBM = naive_math.libm()
need_libm = pytest.mark.skipif(LIBM is None, reason="no glibc libm to compare with")


def bits(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, F32).view(np.uint32)


def libm_expf(x: np.ndarray) -> np.ndarray:
    f = LIBM.expf
    return np.array([f(v) for v in np.asarray(x, F32).tolist()], F32)


def f32_range(lo: float, hi: float) -> np.ndarray:
    """Every float32 in [lo, hi] (same sign), by bit pattern."""
    a, b = (struct.unpack("<I", struct.pack("<f", v))[0] for v in (lo, hi))
    a, b = min(a, b), max(a, b)
    return np.arange(a, b + 1, dtype=np.uint32).view(F32)


# --- expf ----------------------------------------------------------------------------------------

def test_exp2f_table_is_two_to_the_i_over_32():
    """The hex table is the correctly rounded 2^(i/32) with the exponent offset removed."""
    getcontext().prec = 60
    for i, entry in enumerate(EXP2F_TABLE.tolist()):
        exact = float(Decimal(2) ** (Decimal(i) / 32))   # correctly rounded to double
        u = struct.unpack("<Q", struct.pack("<d", exact))[0]
        assert entry == (u - (i << 47)) % 2**64, i


def special_inputs() -> np.ndarray:
    edges = [0.0, -0.0, np.inf, -np.inf, 88.0, -88.0, 1.0, -1.0,
             np.finfo(F32).tiny, -np.finfo(F32).tiny, 1e-45, -1e-45, np.finfo(F32).max,
             -np.finfo(F32).max, 2.0 ** -25, -(2.0 ** -25)]
    nans = np.array([0x7FC00000, 0xFFC00000, 0x7FC00001, 0x7F800001, 0xFFA00000],
                    np.uint32).view(F32)
    return np.concatenate([np.array(edges, F32), nans])


def structured_inputs() -> np.ndarray:
    """Every float32 around the overflow and underflow thresholds, the |x| = 88 special-case
    boundary, the first subnormal results, the ties of k = round(x·32/ln2) (the 1.5·2^52
    shift), and |x| ~ 2^-25 where the result leaves 1. About 0.5 million values."""
    parts = [f32_range(88.0, float(EXPF_OVERFLOW) * 1.0001),           # big x, overflow edge
             f32_range(-88.0, -87.9),
             f32_range(float(EXPF_UNDERFLOW) * 1.0001, -103.0),      # underflow edge, subnormals
             f32_range(-87.34, -87.33),                              # first subnormal results
             f32_range(2.975e-8, 2.985e-8), f32_range(-2.985e-8, -2.975e-8)]   # 2^-25
    k = np.arange(-4800, 4100) + 0.5                                  # z = x·32/ln2 at k + 1/2
    x = (k * math.log(2) / 32).astype(F32)
    near = (x.view(np.uint32).astype(np.int64)[:, None] + np.arange(-3, 4)[None]) \
        .astype(np.uint32)
    parts.append(near.reshape(-1).view(F32))
    return np.concatenate(parts)


def random_inputs(n: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.concatenate([
        rng.uniform(-104.0, 89.0, n // 2).astype(F32),                 # the whole finite range
        (rng.standard_normal(n // 4) * 4).astype(F32),                 # activations
        rng.integers(0, 2**32, n // 4, dtype=np.uint64).astype(np.uint32).view(F32),  # any bits
    ])


def test_expf_specials_without_libm():
    x = special_inputs()
    y = expf(x)
    assert y[0] == 1 and y[1] == 1                                    # ±0
    assert y[2] == np.inf and y[3] == 0                               # ±inf
    assert np.isnan(y[-5:]).all()
    assert expf(np.array([EXPF_OVERFLOW], F32))[0] < np.inf
    assert expf(np.nextafter(EXPF_OVERFLOW, F32(np.inf))[None])[0] == np.inf
    assert expf(np.array([EXPF_UNDERFLOW], F32))[0] > 0               # the smallest subnormal
    assert expf(np.nextafter(EXPF_UNDERFLOW, F32(-np.inf))[None])[0] == 0


def test_expf_shape_and_dtype():
    x = np.linspace(-3, 3, 60, dtype=F32).reshape(3, 4, 5)[:, ::2]
    y = expf(x)
    assert y.shape == x.shape and y.dtype == F32
    np.testing.assert_allclose(y, np.exp(x.astype(np.float64)), rtol=2e-7)
    assert expf(np.zeros((0, 3), F32)).shape == (0, 3)


@need_libm
@pytest.mark.parametrize("kind", ["special", "structured", "random"])
def test_expf_equals_libm(kind):
    """Bit for bit against the C library's expf, NaN payloads included (~3.4 million values)."""
    x = {"special": special_inputs, "structured": structured_inputs,
         "random": lambda: random_inputs(3_000_000)}[kind]()
    ours, theirs = bits(expf(x)), bits(libm_expf(x))
    bad = np.flatnonzero(ours != theirs)
    assert bad.size == 0, (f"{bad.size} of {x.size} differ, e.g. expf({x[bad[:3]]}) = "
                           f"{expf(x[bad[:3]])} vs {libm_expf(x[bad[:3]])}")


def test_expf_differs_from_numpy_float32_exp():
    """Why the port exists: numpy's float32 exp is not glibc's (on most machines)."""
    x = (np.random.default_rng(0).standard_normal(10000) * 4).astype(F32)
    ours = expf(x)
    np.testing.assert_allclose(ours, np.exp(x), rtol=3e-7)


def test_sigmoid_formulas():
    x = np.array([-100, -88.5, -3, -0.0, 0, 1e-8, 2.5, 17, 88.8, 200, np.nan], F32)
    e = expf(-x)
    want = (F32(1) / (F32(1) + e)).astype(F32)
    assert np.array_equal(bits(sigmoid(x)), bits(want))
    assert np.array_equal(bits(sigmoid_mul(x)), bits((want * x).astype(F32)))
    assert sigmoid(np.array([-200], F32))[0] == 0 and sigmoid_mul(np.array([-200], F32))[0] == 0


# --- swish in double -----------------------------------------------------------------------------

@need_libm
def test_swish_f64_equals_c_formula():
    rng = np.random.default_rng(2)
    x = np.concatenate([(rng.standard_normal(200_000) * 6).astype(F32),
                        np.array([0, -0.0, 750, -750, 1e-30, -88, np.inf, -np.inf], F32)])
    want = []
    for v in x.astype(np.float64).tolist():
        try:
            want.append(v / (1.0 + LIBM.exp(-v)))
        except ZeroDivisionError:
            want.append(math.nan)
    want = np.array(want).astype(F32)
    got = swish_f64(x)
    same = (bits(got) == bits(want)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), x[~same][:5]


def test_near_float_tie_finds_rounding_boundaries():
    y = np.array([1.0, 3.0, 1e-3, 6.0e4], F32)
    up = np.nextafter(y, F32(np.inf)).astype(np.float64)
    mid = (y.astype(np.float64) + up) / 2                     # exactly on the boundary
    assert near_float_tie(mid, y).all()
    close = mid * (1 - 2.0 ** -50)                            # a few double ulps away
    assert near_float_tie(close, close.astype(F32)).all()
    far = y.astype(np.float64) * (1 + 2.0 ** -30)             # well inside the float's interval
    assert not near_float_tie(far, far.astype(F32)).any()


# --- sequential sums -----------------------------------------------------------------------------

def adversarial(shape, rng) -> np.ndarray:
    """Values spanning 40 binary orders of magnitude: nearly every reordering or fused
    multiply-add of their products and sums changes the f32 result."""
    mag = np.exp2(rng.integers(-20, 20, shape)).astype(F32)
    return (rng.standard_normal(shape).astype(F32) * mag).astype(F32)


def loop_sum(terms) -> np.ndarray:
    r = np.zeros(np.shape(terms[0]), F32)
    for t in terms:
        r = (r + np.asarray(t, F32)).astype(F32)
    return r


def loop_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    g, m, k = a.shape
    r = np.zeros((g, m, b.shape[2]), F32)
    for i in range(k):
        r = (r + (a[:, :, i, None] * b[:, None, i, :]).astype(F32)).astype(F32)
    return r


@pytest.mark.parametrize("shape,axis", [((37,), 0), ((1, 40), 1), ((40, 1), 0), ((5, 300), 1),
                                        ((300, 5), 0), ((2, 3, 130), 2), ((2, 130, 3), 1),
                                        ((130, 2, 2), 0), ((0, 4), 0), ((4, 0), 1)])
def test_seq_sum_is_sequential(shape, axis):
    rng = np.random.default_rng(3)
    x = adversarial(shape, rng)
    rows = list(np.moveaxis(x, axis, 0))
    want = loop_sum(rows) if rows else np.zeros(np.delete(shape, axis), F32)
    got = seq_sum(x, axis)
    assert np.array_equal(bits(got), bits(want))
    assert seq_sum(x, axis, keepdims=True).shape == np.expand_dims(want, axis).shape
    if rows:
        assert np.array_equal(bits(seq_sum_of(rows)), bits(want))


def test_seq_sum_starts_from_plus_zero():
    assert bits(seq_sum(np.array([-0.0, -0.0], F32), 0)) == 0
    assert bits(seq_sum_of([np.array(-0.0, F32)])) == 0
    assert seq_sum(np.array([1.0, 2.0 ** -24, 2.0 ** -24], F32), 0) == 1   # not (1 + 2^-23)


SHAPES = list(itertools.product([1, 3], [1, 2, 5], [1, 9, 130], [1, 2, 3, 65, 300]))


@pytest.mark.parametrize("g,m,k,p", SHAPES)
def test_seq_matmul_is_sequential(g, m, k, p):
    rng = np.random.default_rng(g * 1000 + m * 100 + k * 10 + p)
    a, b = adversarial((g, m, k), rng), adversarial((g, k, p), rng)
    want = loop_matmul(a, b)
    assert np.array_equal(bits(seq_matmul(a, b)), bits(want))


@pytest.mark.parametrize("prod,run", [(64, 7), (40, 2), (300, 16)])
@pytest.mark.parametrize("g,m,k,p", [s for s in SHAPES if s[3] <= 65])
def test_seq_matmul_in_small_tiles(monkeypatch, prod, run, g, m, k, p):
    """Tiles of a few dozen floats: every blocking path (k-blocks chained through the running
    sums, (g, m) blocks, p tiles and their tails) gives the same bits."""
    monkeypatch.setattr(naive_math, "PROD_BLOCK", prod)
    monkeypatch.setattr(naive_math, "RUN_BLOCK", run)
    rng = np.random.default_rng(k * 7 + p)
    a, b = adversarial((g, m, k), rng), adversarial((g, k, p), rng)
    assert np.array_equal(bits(seq_matmul(a, b)), bits(loop_matmul(a, b)))


def test_seq_matmul_strided_operands_and_out_view():
    rng = np.random.default_rng(5)
    a = adversarial((2, 6, 40), rng)[:, ::2, ::2]                 # (2, 3, 20), strided
    b = adversarial((2, 20, 90), rng)[:, :, ::3]                  # (2, 20, 30), strided
    big = np.full((2, 3, 70), 7, F32)
    out = big[:, :, 10:40]
    seq_matmul(a, b, out=out)
    assert np.array_equal(bits(out), bits(loop_matmul(a, b)))
    assert (big[:, :, :10] == 7).all() and (big[:, :, 40:] == 7).all()


def test_seq_matmul_is_not_blas():
    """The same products summed in another order (reversed), or exactly and rounded once (what
    BLAS's blocked FMA sums approach), differ: the test data can tell the NAIVE order from
    others. Not compared with ``a @ b`` itself: whether a BLAS kernel set sums a product this
    small in k order depends on the machine (OpenBLAS's Sandybridge kernels do)."""
    rng = np.random.default_rng(6)
    a, b = adversarial((1, 8, 200), rng), adversarial((1, 200, 50), rng)
    products = (a[:, :, :, None] * b[:, None, :, :]).astype(F32)   # (1, 8, 200, 50)
    reversed_order = np.cumsum(products[:, :, ::-1], axis=2, dtype=F32)[:, :, -1]
    rounded_once = (a.astype(np.float64) @ b.astype(np.float64)).astype(F32)
    naive = seq_matmul(a, b)
    assert not np.array_equal(naive, reversed_order)
    assert not np.array_equal(naive, rounded_once)


def test_seq_matmul_edge_sizes():
    a = np.ones((1, 2, 0), F32)
    assert (seq_matmul(a, np.ones((1, 0, 3), F32)) == 0).all()
    assert seq_matmul(np.ones((1, 0, 4), F32), np.ones((1, 4, 3), F32)).shape == (1, 0, 3)
    with pytest.raises(ValueError, match="do not match"):
        seq_matmul(np.ones((1, 2, 3), F32), np.ones((1, 4, 3), F32))


def test_buffer_size_is_restored():
    before = np.getbufsize()
    seq_matmul(np.ones((1, 2, 3), F32), np.ones((1, 3, 100), F32))
    assert np.getbufsize() == before
