"""TNN's integer numerics (spec int8 §0, §12, §13) against the scalar references of
int8_refs.py, with the rounding corners spelled out."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from int8_refs import float2int8 as ref_float2int8
from int8_refs import fma as ref_fma
from int8_refs import x86_round as ref_x86_round

from tnnquant.exec import int8_math as m

f32 = np.float32
JUST_BELOW_HALF = np.nextafter(f32(0.5), f32(0))   # 0.49999997f


@pytest.mark.parametrize("x, naive, x86", [
    (0.5, 1, 1), (-0.5, -1, -1),                       # exact halves go away from zero
    (JUST_BELOW_HALF, 1, 1), (-JUST_BELOW_HALF, -1, -1),  # +0.5f rounds up to 1.0f in f32
    (0.49999994, 0, 0), (1.5, 2, 2), (2.5, 3, 3), (-2.5, -3, -3), (0.0, 0, 0), (-0.0, 0, 0),
    (126.5, 127, 127), (127.0, 127, 127), (127.49, 127, 127), (300.0, 127, 127),
    (-127.5, -128, -128), (-128.0, -128, -128), (-128.49, -128, -128), (-1e9, -128, -128),
    (1e10, 127, -128),      # cvttps2dq overflows to INT32_MIN, which the packs keep at -128
    (np.inf, 127, -128), (-np.inf, -128, -128), (np.nan, 127, -128),
])
def test_rounding_corners(x, naive, x86):
    assert ref_float2int8(x) == naive and ref_x86_round(x) == x86
    assert m.float2int8(np.array([x], f32))[0] == naive
    assert m.x86_round(np.array([x], f32))[0] == x86


def test_rhaz_is_not_the_runtime_cast():
    x = np.array([0.5, -0.5, 2.5, -2.5, JUST_BELOW_HALF, 1.4999999], f32)
    np.testing.assert_array_equal(m.rhaz(x), [1, -1, 3, -3, 0, 1])
    assert m.float2int8(x)[4] == 1      # same input, different rule (spec §0)
    np.testing.assert_array_equal(m.trunc(np.array([-1.7, 1.7])), [-1, 1])


def _rhaz_exact(v: float) -> float:
    """Round half away from zero on the exact value (Fraction), sign of zero kept;
    infinities are their own rounding."""
    if not np.isfinite(v):
        return v
    whole = int(abs(Fraction(v)) + Fraction(1, 2))   # floor of a non-negative value
    return math.copysign(float(whole), v)   # exact: |v| >= 2^52 is whole already


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([32, 64]),
       st.lists(st.one_of(st.floats(width=32, allow_nan=False, allow_infinity=False),
                          st.integers(-2 ** 25, 2 ** 25).map(lambda n: n + 0.5),
                          st.integers(-2 ** 25, 2 ** 25).map(lambda n: n / 4)),
                min_size=1, max_size=40))
def test_rhaz_is_exact_in_both_widths(width, values):
    dtype = f32 if width == 32 else np.float64
    x = np.array(values, dtype)
    with np.errstate(over="ignore"):   # the neighbours of ±FLT_MAX are ±inf
        x = np.concatenate([x, np.nextafter(x, dtype(np.inf)), np.nextafter(x, dtype(-np.inf))])
    got = m.rhaz(x)
    assert got.dtype == dtype
    want = np.array([_rhaz_exact(float(v)) for v in x], dtype)
    np.testing.assert_array_equal(got, want)
    assert (np.signbit(got) == np.signbit(want)).all()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=1,
                max_size=40))
def test_rounding_matches_the_scalar_reference(values):
    x = np.array(values, f32)
    np.testing.assert_array_equal(m.float2int8(x), [ref_float2int8(v) for v in x])
    np.testing.assert_array_equal(m.x86_round(x), [ref_x86_round(v) for v in x])


def test_x86_quantize_multiplies_by_a_double_reciprocal():
    rng = np.random.default_rng(0)
    scale = (rng.uniform(0.001, 0.1, 8)).astype(f32)
    x = rng.normal(0, 3, (2, 8, 5, 5)).astype(f32)
    recip = [f32(1.0 / float(s)) for s in scale]            # double division, rounded once
    expect = np.vectorize(ref_x86_round)(x * np.array(recip, f32).reshape(1, 8, 1, 1))
    np.testing.assert_array_equal(m.quantize(x, scale), expect)


def test_naive_quantize_divides_adds_the_zero_point_and_guards_zero_scales():
    rng = np.random.default_rng(1)
    scale = np.array([0.037, 0.0, 0.21], f32)
    zp = np.array([3, 0, -5], np.int8)
    x = rng.normal(0, 4, (1, 3, 20)).astype(f32)
    q = m.quantize(x, scale, zp, device="naive")
    for c in range(3):
        for v, got in zip(x[0, c], q[0, c]):
            want = 0 if scale[c] == 0 else ref_float2int8(f32(v / scale[c]) + f32(zp[c]))
            assert got == want


def test_division_and_reciprocal_disagree_somewhere():
    """Why quantize has two formulas: x / s and x * f32(1/s) round differently."""
    s = f32(0.0123457)
    halves = (np.arange(-127, 127) + f32(0.5)) * s        # near every rounding boundary
    x = np.concatenate([halves + k * np.spacing(halves) for k in range(-3, 4)]).astype(f32)
    naive = m.quantize(x, np.array([s]), device="naive")
    x86 = m.quantize(x, np.array([s]))
    differ = np.flatnonzero(naive != x86)
    assert differ.size > 0 and np.all(np.abs(naive[differ] - x86[differ].astype(int)) == 1)


def test_dequantize():
    q = np.array([[[-128, 0, 127]], [[5, -5, 1]]], np.int8).reshape(1, 2, 3)
    scale = np.array([0.5, 0.25], f32)
    np.testing.assert_array_equal(m.dequantize(q, scale),
                                  [[[-64, 0, 63.5], [1.25, -1.25, 0.25]]])
    zp = np.array([1, -1], np.int8)
    np.testing.assert_array_equal(m.dequantize(q, scale, zp, device="naive"),
                                  [[[-64.5, -0.5, 63], [1.5, -1, 0.5]]])
    np.testing.assert_array_equal(m.dequantize(q, scale, zp), m.dequantize(q, scale))  # x86


def test_per_channel_vectors_must_match_the_channels():
    with pytest.raises(ValueError, match="3 channel values"):
        m.dequantize(np.zeros((1, 4, 2), np.int8), np.ones(3, f32))


def test_ratio_is_zero_below_flt_min():
    tiny = np.finfo(f32).tiny
    den = np.array([tiny, np.nextafter(tiny, f32(0)), 0.0, 0.5], f32)
    np.testing.assert_array_equal(m.ratio(np.array([tiny], f32), den),
                                  [1, 0, 0, f32(tiny) / f32(0.5)])


def test_relu6_limit():
    np.testing.assert_array_equal(m.relu6_limit(np.array([6 / 126.5, 0.1, 0.01], f32)),
                                  [127, 60, 127])
    assert m.relu6_limit(np.array([f32(6) / f32(40.5)], f32))[0] == \
        ref_float2int8(f32(6) / (f32(6) / f32(40.5)))


def test_fma_rounds_once():
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, 2000).astype(f32)
    b = rng.uniform(-1, 1, 2000).astype(f32)
    c = rng.normal(0, 50, 2000).astype(f32)
    got = m.fma_f32(a, b, c)
    want = np.array([ref_fma(*t) for t in zip(a, b, c)], f32)
    np.testing.assert_array_equal(got, want)
    assert np.count_nonzero(got != a * b + c) > 0    # two roundings differ somewhere


def test_fma_double_rounding_trap():
    """a*b + c whose double sum lands exactly on an f32 midpoint: rounding the double to f32
    would go to even, the true value is just above the midpoint."""
    # (2^23 + 2048)(2^24 - 4095) = 2^47 + 2048, so a*b = 2^-24 + 2^-60 exactly
    a = f32(Fraction(2**23 + 2048, 2**23) * Fraction(1, 2**25))
    b = f32(Fraction(2**24 - 4095, 2**23))
    c = f32(1.0)
    exact = Fraction(float(a)) * Fraction(float(b)) + 1
    assert exact == 1 + Fraction(1, 2**24) + Fraction(1, 2**60)
    assert float(exact) == 1 + 2.0**-24            # double rounding would land on the midpoint
    assert f32(float(exact)) == c                  # ... and tie to even, down to 1.0
    assert m.fma_f32(np.array([a]), np.array([b]), np.array([c]))[0] == f32(1 + 2.0**-23)


def test_int_matmul_is_exact_for_long_sums():
    k = 5000   # 5000 * 128 * 127 > 2**24: a single f32 sum would round
    a = np.full((2, k), -128, f32)
    a[1, ::2] = 127
    b = np.full((k, 3), -127, f32)
    b[::3, 1] = 1
    want = a.astype(np.int64) @ b.astype(np.int64)
    assert np.abs(want).max() > 2**24
    np.testing.assert_array_equal(m.int_matmul(a, b), want)
    assert m.exact_terms(a, b) == 2**24 // (128 * 127)


def test_accumulator_rounds_the_int32_sum_once():
    acc = np.array([[2**24 + 1, 2**24 + 3, -(2**25) - 3]], np.float64)
    np.testing.assert_array_equal(m.accumulator_f32(acc, np.array([2, 0, 0]), 2),
                                  [[2**24 + 4, 2**24 + 4, -(2**25) - 4]])


@pytest.mark.parametrize("device", ["x86", "naive"])
def test_average_pooling_truncates_and_x86_wraps_in_int16(device):
    sums = np.array([-7, 7, 127 * 289, -128 * 289, 127 * 258])
    counts = np.array([2, 2, 289, 289, 258])
    # 127 * 289 = 36703 wraps to -28833 in int16 (-99.77 truncates to -99); -128 * 289 =
    # -36992 wraps to 28544 (98.77 -> 98)
    wrapped = [-99, 98] if device == "x86" else [127, -128]
    np.testing.assert_array_equal(m.pool_average(sums, counts, device),
                                  [-3, 3, *wrapped, 127])


def test_requantize_tensor():
    q = np.array([-128, -1, 0, 1, 127], np.int8)
    s_in, s_out = f32(0.02), f32(0.03)
    ratio = s_in / s_out
    np.testing.assert_array_equal(m.requantize_tensor(q, [s_in], [s_out]),
                                  [ref_x86_round(f32(v) * ratio) for v in q])
    naive = m.requantize_tensor(q, [s_in], [s_out], zp_in=2, zp_out=-1, device="naive")
    np.testing.assert_array_equal(
        naive, [ref_float2int8(f32(f32(f32(int(v) - 2) * s_in) / s_out) + f32(-1)) for v in q])


def test_requantize_add_x86_and_naive():
    rng = np.random.default_rng(4)
    a, b = (rng.integers(-128, 128, (1, 2, 9)).astype(np.int8) for _ in range(2))
    sa, sb, so = np.array([0.05, 0.07], f32), np.array([0.02], f32), np.array([0.06, 0.1], f32)
    got = m.requantize_add([a, b], [sa, sb], so)
    for c in range(2):
        recip = f32(1.0 / float(so[c]))
        want = [ref_x86_round(f32(f32(x * sa[c]) + f32(y * sb[0])) * recip)
                for x, y in zip(a[0, c], b[0, c])]
        np.testing.assert_array_equal(got[0, c], want)
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        m.requantize_add([a, b, a], [sa, sb, sa], so)
    naive = m.requantize_add([a, b, a], [sa, sa, sa], so, device="naive")
    for c in range(2):
        want = [ref_float2int8(f32(f32(f32(f32(x * sa[c]) + f32(y * sa[c])) + f32(x * sa[c]))
                                   / so[c]))
                for x, y in zip(a[0, c], b[0, c])]
        np.testing.assert_array_equal(naive[0, c], want)


def test_x86_fused_add_is_one_fma():
    """Near a rounding boundary f32(v + f32(a*A)) and fma(a, A, v) give different codes; x86
    takes the FMA (the MobileNetV2 goldens need it, spec int8 §13), NAIVE the two roundings."""
    a_factor = f32(0.0370001)
    add = np.arange(-128, 128).astype(np.int8)
    product = add.astype(np.float64) * float(a_factor)
    base = (np.round(product) + 10.5 - product).astype(f32)   # v + a*A lands near 10.5
    v = np.concatenate([base + k * np.spacing(base) for k in range(-4, 5)]).astype(f32)
    add = np.tile(add, 9)
    acc, m_one = v.astype(np.float64).reshape(1, -1), np.array([1.0], f32)

    def codes(device):
        return m.requantize_conv(acc, None, m_one, np.array([1.0], f32), add=add.reshape(1, -1),
                                 add_factor=np.array([a_factor]), fusion=m.FUSION_ADD_ACT,
                                 device=device)[0]
    x86, naive = codes("x86"), codes("naive")
    np.testing.assert_array_equal(x86, [ref_x86_round(ref_fma(q, a_factor, t))
                                        for q, t in zip(add, v)])
    np.testing.assert_array_equal(naive, [ref_float2int8(t + f32(q) * a_factor)
                                          for q, t in zip(add, v)])
    assert np.count_nonzero(x86 != naive) > 0
