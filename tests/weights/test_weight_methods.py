"""Weight methods against spec int8 §8.3–8.5 written out here, plus a bit-exact check against
the real TNN tool's quantized models in ../shared (skipped when absent)."""
from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tnnquant.calib.methods import ACT_METHODS
from tnnquant.errors import ConfigError, TnnQuantError
from tnnquant.weights import (
    WEIGHT_METHOD_CODES,
    WEIGHT_METHODS,
    quantize_bias,
    weight_method_by_code,
)
from tnnquant.weights.methods import WeightRangeError
from tnnquant.weights.methods.admm import admm_solve, admm_step, seq_sum
from tnnquant.exec.int8_math import rhaz

F32 = np.float32
EPS = F32(1e-9)


def rhaz_exact(x) -> float:
    f = Fraction(float(x))
    r = math.floor(abs(f) + Fraction(1, 2))
    return float(r if f >= 0 else -r)


def weights(seed, rows=6, k=40, scale=0.05):
    rng = np.random.default_rng(seed)
    return (rng.laplace(size=(rows, k)) * scale * np.exp(rng.uniform(-2, 2, (rows, 1)))
            ).astype(F32)


# --- rounding ------------------------------------------------------------------------------------


@pytest.mark.parametrize("x,expected", [
    (0.5, 1), (-0.5, -1), (1.5, 2), (-1.5, -2), (2.5, 3), (-2.5, -3),
    (0.49999997, 0), (-0.49999997, 0), (126.5, 127), (-0.0, 0), (8388609.0, 8388609.0),
])
def test_rhaz_corners(x, expected):
    for dtype in (F32, np.float64):
        got = rhaz(np.array([x], dtype))
        assert got.dtype == dtype and got[0] == expected
    assert np.round(2.5) == 2  # what must not be used


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(F32, 16, elements=st.floats(-1e7, 1e7, width=32)))
def test_rhaz_property(x):
    assert rhaz(x).tolist() == [rhaz_exact(v) for v in x]


# --- registry ------------------------------------------------------------------------------------


def test_registry_is_separate_from_blob_methods():
    assert WEIGHT_METHOD_CODES == {0: "minmax", 1: "admm", 3: "asy_minmax"}
    assert "admm" not in ACT_METHODS and "kl" not in WEIGHT_METHODS
    assert weight_method_by_code(1).name == "admm"
    with pytest.raises(ConfigError, match=r"unknown weight method code 2 \(known: 0 minmax"):
        weight_method_by_code(2)
    with pytest.raises(ConfigError, match="unknown weight method 'kl'"):
        WEIGHT_METHODS.get("kl")
    with pytest.raises(ValueError, match=r"expected \(O, K\)"):
        WEIGHT_METHODS.get("minmax")(np.zeros(5, F32))


# --- MIN_MAX -------------------------------------------------------------------------------------


def test_minmax_formula():
    w = weights(0)
    w[2] = 0  # all-zero row: S = 0, q = 0
    w[3, 5] = w[3].max() * 2  # the extreme value maps to exactly ±127
    q, s, zp = WEIGHT_METHODS.get("minmax")(w)
    for o in range(len(w)):
        a = max(abs(w[o].min()), abs(w[o].max()))
        so = F32(a / F32(127))
        inv = F32(F32(1) / so) if a != 0 else F32(1)
        assert s[o] == so
        expected = [min(max(rhaz_exact(F32(v * inv)), -127), 127) for v in w[o]]
        assert q[o].tolist() == expected
    assert q.dtype == np.int8 and s.dtype == F32 and zp.dtype == np.int8 and not zp.any()
    assert s[2] == 0 and not q[2].any() and q[3, 5] == 127


def test_minmax_subnormal_row_saturates_quietly():
    """A row whose maximum is subnormal (seen in a shipped PP-OCR model): 1/S overflows to inf
    as in TNN's f32 arithmetic, so its weights saturate to ±127 and its zeros stay 0, with no
    numpy warning."""
    w = np.array([[3e-40, -1e-40, 0], [1, 0.5, -0.25]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        q, s, _ = WEIGHT_METHODS.get("minmax")(w)
    assert q[0].tolist() == [127, -127, 0] and q[1].tolist() == [127, 64, -32]
    assert s[0] == F32(F32(3e-40) / F32(127)) and s[0] > 0


# --- ADMM ----------------------------------------------------------------------------------------


def admm_step_literal(w_row, s):
    """One TNN ADMM step on one row, element by element in f32 (spec §8.4)."""
    d = F32(s + EPS)
    q = [min(max(rhaz_exact(F32(v / d)), -127.0), 127.0) for v in w_row]
    num = F32(0)
    den = F32(0)
    for v, qi in zip(w_row, q):
        num = F32(num + F32(v * F32(qi)))
        den = F32(den + F32(qi * qi))
    return np.array(q, F32), F32(num / F32(den + EPS))


def test_admm_result_is_a_fixed_point():
    w = weights(1, rows=12, k=75)
    q, s, zp = WEIGHT_METHODS.get("admm")(w)
    _, _, steps = admm_solve(w)
    assert steps.max() < 1000  # these rows all converge
    for o in range(len(w)):
        q2, s2 = admm_step_literal(w[o], s[o])
        assert q2.tolist() == q[o].tolist() and s2 == s[o]
    assert not zp.any()


def test_admm_equals_literal_iterations():
    """admm_solve(iterations=n) == n literal steps (early exit and unconverged rows alike)."""
    w = weights(2, rows=5, k=30)
    w[4] = 0
    for n in (1, 3, 1000):
        q, s, _ = admm_solve(w, iterations=n)
        for o in range(len(w)):
            so = F32(float(max(abs(w[o].min()), abs(w[o].max()))) / 158.75)
            for _ in range(n):
                qo, so = admm_step_literal(w[o], so)
                if n == 1000 and so == s[o] and qo.tolist() == q[o].tolist():
                    break  # fixed point reached: the remaining literal steps repeat it
            assert qo.tolist() == q[o].tolist() and so == s[o], (n, o)


def test_admm_step_rounds_half_away_from_zero_in_f32():
    """t = w / f32(1 + eps) = w: every rounding corner, against RHAZ and the clamp; 0.49999997
    (which ``t + 0.5`` in f32 rounds to 1) included."""
    corners = [0.49999997, 0.5, 0.50000006, 1.4999999, 1.5, 2.5, 126.5, 126.49999, 127.49999,
               127.5, 300.0, 0.0, -0.0, 1e-30]
    w = np.array([c * sign for c in corners for sign in (1, -1)], F32)
    q_t, _ = admm_step(w[:, None], np.ones(1, F32))
    assert q_t[:, 0].tolist() == [min(max(rhaz_exact(v), -127.0), 127.0) for v in w]


def test_admm_blocks_of_rows_on_threads_equal_one_block(monkeypatch):
    w = weights(3, rows=40, k=27)
    whole = admm_solve(w, threads=1)
    monkeypatch.setattr("tnnquant.weights.methods.admm._ROWS_PER_TASK", 7)
    for got, ref in zip(admm_solve(w, threads=2), whole):
        np.testing.assert_array_equal(got, ref)


def test_admm_init_is_divided_in_double():
    w = np.array([[0.3, -1.0, 0.7]], F32)
    _, s, steps = admm_solve(w, iterations=0)
    assert s[0] == F32(1.0 / 158.75) and steps[0] == 0


@pytest.mark.parametrize("cols", [1, 2, 15, 16, 17, 40])
def test_seq_sum_is_sequential(cols):
    rng = np.random.default_rng(cols)
    x = (rng.standard_normal((3000, cols)) * np.exp(rng.uniform(-12, 12, (3000, cols)))
         ).astype(F32)
    expected = np.zeros(cols, F32)
    for row in x:
        expected = (expected + row).astype(F32)
    assert np.array_equal(seq_sum(x).view(np.uint32), expected.view(np.uint32))


# --- ASY_MIN_MAX ---------------------------------------------------------------------------------


def test_asymmetric_formula_and_round_trip():
    w = weights(3, rows=5, k=50)
    w[1] = np.abs(w[1])  # lo = 0
    w[2] = -np.abs(w[2])  # hi = 0
    q, s, zp = WEIGHT_METHODS.get("asy_minmax")(w)
    for o in range(len(w)):
        lo = min(F32(0), w[o].min())
        hi = max(F32(0), w[o].max())
        so = F32(F32(hi - lo) / F32(254))
        inv = F32(F32(1) / so)
        z = 127 - int(rhaz_exact(F32(hi * inv)))
        assert s[o] == so and zp[o] == z
        assert q[o].tolist() == [min(max(int(rhaz_exact(F32(v * inv))) + z, -127), 127)
                                 for v in w[o]]
        deq = s[o].astype(np.float64) * (q[o].astype(np.float64) - zp[o])
        assert np.all(np.abs(deq - w[o]) <= 0.5 * s[o] * (1 + 1e-5))  # within half a step
        assert int(rhaz_exact(F32(hi * inv))) + z == 127  # hi maps to +127 exactly
        assert q[o].max() == 127 or w[o].max() <= 0
    assert zp[1] == -127 and zp[2] == 127


def test_asymmetric_all_zero_row_raises():
    w = weights(4)
    w[[1, 4]] = 0
    with pytest.raises(WeightRangeError, match=r"output channel\(s\) 1, 4 are all zero") as err:
        WEIGHT_METHODS.get("asy_minmax")(w)
    assert isinstance(err.value, ValueError) and isinstance(err.value, TnnQuantError)
    located = err.value.located(layer="conv3", layer_type="Convolution")
    assert str(located).startswith("Convolution 'conv3': asymmetric min-max")


# --- merged weights (-t 2) -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["minmax", "admm", "asy_minmax"])
def test_merged_mode_is_one_row(name):
    w = weights(5, rows=4, k=9)
    q, s, zp = WEIGHT_METHODS.get(name)(w.reshape(1, -1))
    assert q.shape == (1, 36) and s.shape == (1,) and zp.shape == (1,)
    q_rows, _, _ = WEIGHT_METHODS.get(name)(w)
    assert not np.array_equal(q.reshape(4, 9), q_rows)  # one scale for all rows


# --- bias ----------------------------------------------------------------------------------------


def test_quantize_bias_truncates():
    b = np.array([2.7, -2.7, 1.0, 5.0, 3e9, -3e9], F32)
    s = np.array([1.0, 1.0, 0.0, 2.0, 1.0, 1.0], F32)
    assert quantize_bias(b, s).tolist() == [2, -2, 0, 2, 2 ** 31 - 1, -2 ** 31]
    assert quantize_bias(np.array([7.0, -7.0], F32), np.array([2.0], F32)).tolist() == [3, -3]
    assert quantize_bias(b, s).dtype == np.int32
    # f32 quotient first: 0.3f / 0.1f is 3.0000002 in f32 -> 3 (2.9999999 in double would be 2)
    assert quantize_bias(np.array([0.3], F32), np.array([0.1], F32))[0] == int(F32(0.3) / F32(0.1))


# --- the real TNN tool ---------------------------------------------------------------------------


@pytest.mark.parametrize("combo,method", [("b0w0", "minmax"), ("b2w1", "admm")])
def test_bit_exact_against_tnn_quantization_cmd(combo, method):
    """Fold the fp32 weights with the blob scales TNN stored, quantize, compare int8 weights,
    scales and int32 biases with TNN's output (spec §8.1): MobileNetV2's first layers
    (regular, depthwise and pointwise convolutions) and its InnerProduct."""
    from conftest import need_shared

    from tnnquant import load_model

    base = need_shared("models", "mobilenetv2")
    fg = load_model(base / "mobilenetv2.tnnproto", base / "mobilenetv2.tnnmodel")
    qg = load_model(base / "quant" / f"{combo}.quantized.tnnproto",
                    base / "quant" / f"{combo}.quantized.tnnmodel")
    layers = [lay for lay in qg.topo_order()
              if lay.proto_type in ("QuantizedConvolution", "QuantizedInnerProduct")]
    checked = 0
    for lay in layers[:8] + layers[-1:]:
        f, t = fg.resources[lay.name], qg.resources[lay.name]
        s_in = qg.blob_scales[lay.inputs[0]].scale
        if lay.proto_type == "QuantizedInnerProduct":
            o = lay.params.num_output
            w = (f.weight.array().astype(F32).reshape(o, -1) * s_in[0]).astype(F32)
            bias, golden, depthwise = f.bias.array(), t.weight.array().reshape(o, -1), False
        else:
            o, g = lay.params.output_channel, lay.params.group
            k = lay.params.kernel_h * lay.params.kernel_w
            w = f.filter.array().astype(F32).reshape(o, -1, k)
            ig = w.shape[1]
            depthwise = o // g == 1 and ig == 1
            if not depthwise:
                idx = (np.arange(o)[:, None] // (o // g)) * ig + np.arange(ig)[None, :]
                w = (w * s_in[idx if len(s_in) > 1 else 0][..., None]).astype(F32)
            w = w.reshape(o, -1)
            bias, golden = f.bias.array(), t.filter.array().reshape(o, -1)
        q, s, _ = WEIGHT_METHODS.get(method)(w)
        if depthwise:
            s = (s * s_in).astype(F32)
        assert np.array_equal(q, golden), lay.name
        assert np.array_equal(s.view(np.uint32), t.scale.array().view(np.uint32)), lay.name
        assert np.array_equal(quantize_bias(bias, s), t.bias.array()), lay.name
        checked += 1
    assert checked == 9
