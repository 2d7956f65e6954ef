"""Blob-scale methods against the formulas of spec int8 §6 written out here, and the fast KL
against a straightforward f32 transcription of TNN's loop (kl_reference.py)."""
from __future__ import annotations

import ctypes
import ctypes.util
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kl_reference import glibc_logf, kl_curve_reference, kl_threshold_reference

from tnnquant.calib.methods import (
    ACT_METHOD_CODES,
    ACT_METHODS,
    act_method_by_code,
    effective_method,
    kl_divergences,
    kl_thresholds,
)
from tnnquant.calib.observers import (
    AciqMeansObserver,
    BlobStats,
    HistogramObserver,
    RangeObserver,
    tnn_bin_values,
)
from tnnquant.errors import ConfigError

F32 = np.float32


def stats_of(x, channels=None, histogram=False, aciq=False):
    channels = x.shape[1] if channels is None else channels
    r = RangeObserver(channels)
    r.update(x)
    rs = r.result()
    h = a = None
    if histogram:
        ho = HistogramObserver(rs)
        ho.update(x)
        h = ho.result()
    if aciq:
        ao = AciqMeansObserver(channels)
        ao.update(x)
        a = ao.result()
    return BlobStats(rs, h, a)


def rhaz(x) -> int:
    """Exact round half away from zero of a float (C roundf)."""
    f = Fraction(float(x))
    r = math.floor(abs(f) + Fraction(1, 2))
    return r if f >= 0 else -r


def hist_from_counts(counts):
    return tnn_bin_values(np.asarray(counts))


# --- registry and method selection ---------------------------------------------------------------


def test_registry_codes_and_needs():
    assert ACT_METHOD_CODES == {0: "minmax", 2: "kl", 3: "asy_minmax", 4: "aciq_gauss",
                                5: "aciq_laplace"}
    assert ACT_METHODS.get("kl").needs == {"range", "histogram"}
    assert ACT_METHODS.get("minmax").needs == {"range"}
    assert ACT_METHODS.get("aciq_laplace").needs == {"range", "aciq_means"}
    assert act_method_by_code(2).name == "kl"
    with pytest.raises(ConfigError, match="ADMM, a weight method"):
        act_method_by_code(1)
    with pytest.raises(ConfigError, match=r"unknown blob method 'admm' \(known: minmax, kl"):
        ACT_METHODS.get("admm")


def test_method_refuses_missing_stats():
    s = stats_of(np.ones((1, 2, 10, 10), F32))
    with pytest.raises(ValueError, match="needs histogram"):
        ACT_METHODS.get("kl")(s)


@pytest.mark.parametrize("method,dims,is_input,expected", [
    ("kl", (1, 64, 56, 56), False, "kl"),
    ("kl", (1, 64, 7, 7), False, "minmax"),          # H·W = 49 < 100
    ("kl", (1, 64, 10, 10), False, "kl"),            # H·W = 100
    ("aciq_gauss", (1, 1000), False, "minmax"),      # missing dims count as 1
    ("asy_minmax", (1, 64, 7, 7), False, "asy_minmax"),
    ("asy_minmax", (1, 3, 224, 224), True, "minmax"),  # inputs always MIN_MAX
    ("kl", (1, 3, 224, 224), True, "minmax"),
    ("aciq_laplace", (1, 8, 20, 3, 5), False, "minmax"),  # H·W = dims[2]·dims[3] = 60
    ("aciq_laplace", (1, 8, 4, 30, 7), False, "aciq_laplace"),
])
def test_effective_method(method, dims, is_input, expected):
    assert effective_method(method, dims, is_input) == expected


# --- MIN_MAX -------------------------------------------------------------------------------------


def test_minmax_formula():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 5, 4, 4)) * np.array([1, 1e-3, 30, 1e4, 1e-6])[None, :, None, None]
         ).astype(F32)
    scale, zp = ACT_METHODS.get("minmax")(stats_of(x))
    for c in range(5):
        m = max(abs(float(x[:, c].min())), abs(float(x[:, c].max())))
        if m <= 1e-5:
            assert scale[c] == 0
            continue
        interval = F32(F32(2048) / F32(m))
        expected = F32((2047.0 + 0.5) / float(interval) / 127.0)
        assert scale[c] == expected and scale[c].dtype == F32
    assert zp.dtype == np.int8 and not zp.any()


def test_minmax_is_not_max_over_127():
    x = np.array([[[1.0, -3.0]]], F32)
    scale, _ = ACT_METHODS.get("minmax")(stats_of(x))
    interval = F32(F32(2048) / F32(3))  # rounded to f32 before the double formula
    assert scale[0] == F32(2047.5 / float(interval) / 127)
    assert scale[0] != F32(F32(3) / F32(127))


def test_merged_and_invalid_slots():
    x = np.zeros((2, 3, 10, 10), F32)
    for name in ["minmax", "kl", "asy_minmax", "aciq_gauss", "aciq_laplace"]:
        s = stats_of(x, histogram=True, aciq=True)
        scale, zp = ACT_METHODS.get(name)(s)
        assert scale.tolist() == [0, 0, 0] and zp.tolist() == [0, 0, 0]
        merged = stats_of(x, channels=1, histogram=True, aciq=True)
        scale, zp = ACT_METHODS.get(name)(merged)  # TNN aborts: the caller decides
        assert scale.tolist() == [0] and zp.tolist() == [0]
    x[:, 1] = 5
    scale, _ = ACT_METHODS.get("minmax")(stats_of(x, channels=1))
    assert scale.shape == (1,) and scale[0] > 0


# --- ASY_MIN_MAX ---------------------------------------------------------------------------------


def test_asymmetric_formula_and_round_trip():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (4, 6, 12, 12)).astype(F32) * F32(3)
    x[:, 0] = np.abs(x[:, 0])   # all positive: lo = 0
    x[:, 1] = -np.abs(x[:, 1])  # all negative: hi = 0
    x[:, 2] += F32(10)
    scale, zp = ACT_METHODS.get("asy_minmax")(stats_of(x))
    for c in range(6):
        lo = min(F32(0), x[:, c].min())
        hi = max(F32(0), x[:, c].max())
        s = F32(F32(hi - lo) / F32(254))
        inv = F32(F32(1) / s)
        assert scale[c] == s
        assert zp[c] == 127 - rhaz(F32(hi * inv))
        # hi maps to +127, lo to about -127, 0 to the zero point exactly
        assert rhaz(F32(hi * inv)) + int(zp[c]) == 127
        assert abs(rhaz(F32(lo * inv)) + int(zp[c]) + 127) <= 1
    assert zp[0] == -127 and zp[1] == 127


@settings(max_examples=60, deadline=None)
@given(st.floats(-1e4, 1e4, width=32), st.floats(-1e4, 1e4, width=32))
def test_asymmetric_zero_point_in_range(a, b):
    x = np.array([[[a, b]]], F32)
    scale, zp = ACT_METHODS.get("asy_minmax")(stats_of(x))
    if max(abs(a), abs(b)) <= 1e-5:
        assert scale[0] == 0 and zp[0] == 0
    else:
        assert scale[0] > 0 and -127 <= int(zp[0]) <= 127


# --- ACIQ ----------------------------------------------------------------------------------------


def test_aciq_gauss_constants():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 16, 20)).astype(F32)
    for channels in (3, 1):
        s = stats_of(x, channels=channels)
        scale, zp = ACT_METHODS.get("aciq_gauss")(s)
        n = 16 * 20 * (3 if channels == 1 else 1)
        g = (0.5 * 0.35) * (1 + math.sqrt(3.14159265358979323846 * math.log(4)))
        for c in range(channels):
            xc = x if channels == 1 else x[:, c]
            m = max(abs(xc.min()), abs(xc.max()))
            std = float(F32(m * F32(2))) * g / math.sqrt(2 * math.log(n))
            alpha = F32(float(F32(3.92403714)) * std)
            assert scale[c] == F32(alpha / F32(127))
        assert not zp.any()


def test_aciq_laplace_constants():
    rng = np.random.default_rng(3)
    x = rng.laplace(size=(3, 4, 10, 12)).astype(F32)
    s = stats_of(x, aciq=True)
    scale, _ = ACT_METHODS.get("aciq_laplace")(s)
    meanabs = s.aciq_means.meanabs
    assert np.array_equal(scale, (F32(9.89675982) * meanabs / F32(127)).astype(F32))


# --- KL: reference machinery ---------------------------------------------------------------------


def test_glibc_logf_port_matches_libm():
    path = ctypes.util.find_library("m")
    try:
        logf = ctypes.CDLL(path or "libm.so.6").logf
    except OSError:
        pytest.skip("no C math library to compare with")
    logf.restype, logf.argtypes = ctypes.c_float, [ctypes.c_float]
    rng = np.random.default_rng(4)
    x = np.concatenate([np.exp(rng.uniform(-90, 88, 3000)), 1 + rng.uniform(-0.05, 0.05, 3000),
                        rng.uniform(0, 1e-38, 100), [1.0, 2.0, 0.5]]).astype(F32)
    x = x[x > 0]
    expected = np.array([logf(float(v)) for v in x], F32)
    got = glibc_logf(x)
    if not np.array_equal(got.view(np.uint32), expected.view(np.uint32)):
        pytest.skip("this libm's logf is not glibc's (>= 2.28) algorithm")


def real_like_histograms():
    """(name, bins) from typical activation shapes."""
    rng = np.random.default_rng(5)
    out = []

    def add(name, x):
        x = x.astype(F32)[None, None]
        s = stats_of(x.reshape(1, 1, -1), histogram=True)
        out.append((name, s.histogram.bins()[0]))

    add("laplace", rng.laplace(size=20000))
    add("gauss", rng.standard_normal(20000))
    add("relu", np.maximum(rng.standard_normal(30000) * rng.lognormal(size=30000), 0))
    add("sparse_relu", np.maximum(rng.standard_t(3, size=800), 0))
    add("outlier", np.concatenate([rng.standard_normal(5000), [60.0]]))
    add("relu6", np.clip(rng.normal(2, 3, 4000), 0, 6))
    add("uniform", rng.uniform(-1, 1, 5000))
    add("few_values", rng.choice([0.5, 1.0, 3.0], 3000))
    return out


def check_against_reference(h, fast_t):
    """The fast threshold equals TNN's, or sits where TNN's f32 KL ties with TNN's choice."""
    ref = kl_curve_reference(h)
    ref_t = kl_threshold_reference(h)
    if fast_t == ref_t:
        return 0.0
    gap = float(ref[fast_t - 128]) - float(ref[ref_t - 128])
    assert abs(fast_t - ref_t) <= 32 and gap <= 4e-7 * abs(float(ref[ref_t - 128])) + 1e-9, (
        fast_t, ref_t, gap)
    return gap


def test_kl_matches_tnn_reference_on_real_like_histograms():
    hists = real_like_histograms()
    fast = kl_thresholds(np.array([h for _, h in hists]))
    assert [(name, int(t)) for (name, _), t in zip(hists, fast)] == [
        (name, kl_threshold_reference(h)) for name, h in hists]


def test_kl_without_vecdot_as_on_numpy_1(monkeypatch):
    """numpy 1.x has no np.vecdot: the search's einsum path gives the same thresholds, and
    KL values equal to float64 rounding."""
    hists = np.array([h for _, h in real_like_histograms()])
    with_vecdot = kl_divergences(hists), kl_thresholds(hists)
    if hasattr(np, "vecdot"):
        monkeypatch.delattr(np, "vecdot")
    np.testing.assert_allclose(kl_divergences(hists), with_vecdot[0], rtol=1e-12)
    assert np.array_equal(kl_thresholds(hists), with_vecdot[1])


def test_kl_values_agree_with_tnn_to_f32_noise():
    name, h = real_like_histograms()[0]
    ref = kl_curve_reference(h).astype(np.float64)
    fast = kl_divergences(h[None])[0]
    assert np.max(np.abs(fast - ref) / np.abs(ref)) < 2e-5


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 2 ** 31), st.integers(130, 2048), st.sampled_from([3, 50, 5000]))
def test_kl_matches_reference_on_random_histograms(seed, support, peak):
    rng = np.random.default_rng(seed)
    counts = np.zeros(2048, np.int64)
    counts[:support] = rng.integers(0, peak, support)
    h = hist_from_counts(counts)
    check_against_reference(h, int(kl_thresholds(h[None])[0]))


def test_kl_reproduces_tnn_running_tail_drift():
    """TNN's f32 running tail goes negative past a sparse region; ref[i-1] < 0 makes its KL
    NaN and the candidate is never chosen. The fast search must skip exactly those."""
    rng = np.random.default_rng(1)
    counts = np.zeros(2048, np.int64)
    counts[:780] = rng.integers(0, 3000, 780)
    h = hist_from_counts(counts)
    ref = kl_curve_reference(h)
    fast = kl_divergences(h[None])[0]
    assert np.isnan(ref).sum() > 100
    assert np.array_equal(np.isnan(ref), np.isinf(fast))
    check_against_reference(h, int(kl_thresholds(h[None])[0]))


def test_kl_synthetic_known_optimum():
    """A step histogram whose 128 steps are 8 bins wide: at i = 1024 (w = 8) the quantized
    distribution reproduces p exactly and the tail is empty, so KL_1024 is ~0; every other
    candidate either clips mass or straddles steps."""
    rng = np.random.default_rng(8)
    counts = np.zeros(2048, np.int64)
    counts[:1024] = np.repeat(rng.integers(100, 10000, 128), 8)
    h = hist_from_counts(counts)
    kl = kl_divergences(h[None])[0]
    assert int(np.argmin(kl)) + 128 == 1024
    assert kl[1024 - 128] < 1e-6 < np.partition(kl, 1)[1]
    assert kl_threshold_reference(h) == 1024


def test_kl_uniform_histogram_prefers_the_last_candidate():
    # uniform p: e == p everywhere, KL_i = (2049 - i)·p·log(2049 - i), decreasing in i
    h = hist_from_counts(np.full(2048, 50))
    kl = kl_divergences(h[None])[0]
    i = np.arange(128, 2048)
    expected = (2049 - i) / 2048 * np.log(2049 - i)
    assert np.allclose(kl, expected, rtol=1e-5, atol=1e-9)
    assert kl_thresholds(h[None])[0] == 2047


def test_kl_thresholds_batched_api():
    hists = np.array([h for _, h in real_like_histograms()] * 3)
    one = kl_thresholds(hists, threads=1)
    two = kl_thresholds(hists, threads=2)
    assert one.shape == (len(hists),) and one.dtype == np.int64
    assert np.array_equal(one, two)
    assert np.array_equal(one, [kl_thresholds(h[None])[0] for h in hists])
    assert kl_thresholds(np.zeros((0, 2048), F32)).shape == (0,)
    with pytest.raises(ValueError, match="2048"):
        kl_thresholds(np.zeros((2, 100), F32))


def test_kl_method_scale():
    rng = np.random.default_rng(9)
    x = rng.laplace(size=(2, 3, 30, 30)).astype(F32)
    x[:, 2] = 0  # invalid channel
    s = stats_of(x, histogram=True)
    scale, zp = ACT_METHODS.get("kl")(s)
    t = kl_thresholds(s.histogram.bins()[:2])
    for c in range(2):
        assert scale[c] == F32((float(t[c]) + 0.5) / float(s.histogram.interval[c]) / 127.0)
    assert scale[2] == 0 and not zp.any()


def test_kl_single_bin_channel_ties_like_tnn():
    """All values in one bin (e.g. a saturated ReLU6 channel, the max-abs bin 2047): TNN's f32
    KL is identical for every candidate, so TNN keeps the first (128); exact float64 values
    differ only by rounding (~1e-16), which must not pick another candidate. A spike in a
    lower bin is captured by the candidate just above it."""
    for where, count, expected in ((2047, 2744, 128), (1500, 100, 1501), (700, 10 ** 6, 701)):
        counts = np.zeros(2048, np.int64)
        counts[where] = count
        h = hist_from_counts(counts)
        assert int(kl_thresholds(h[None])[0]) == kl_threshold_reference(h) == expected


@pytest.mark.parametrize("combo,merged", [("b0w0", False), ("b2w0t1", True)])
def test_network_input_scale_bit_exact_against_tnn(combo, merged):
    """The network input's scale depends only on the calibration tensors: RangeObserver +
    MIN_MAX must reproduce TNN's stored blob scale bit for bit (per channel and merged)."""
    from conftest import need_shared

    from tnnquant import load_model

    base = need_shared("models", "mobilenetv2")
    qg = load_model(base / "quant" / f"{combo}.quantized.tnnproto",
                    base / "quant" / f"{combo}.quantized.tnnmodel")
    name = qg.inputs[0].name
    files = sorted((base / "calib").glob("*.npy"))
    obs = RangeObserver(1 if merged else 3)
    for f in files:
        obs.update(np.load(f))
    assert obs.result().files == len(files) == 14
    method = effective_method("kl", qg.inputs[0].dims, is_network_input=True)
    scale, zp = ACT_METHODS.get(method)(BlobStats(obs.result()))
    golden = qg.blob_scales[name].scale
    assert np.array_equal(scale.view(np.uint32), golden.view(np.uint32)) and not zp.any()


def test_kl_exact_mode_settles_near_ties_in_tnn_f32():
    """Exact mode re-scores candidates within F32_TIE_RTOL of the float64 minimum with TNN's f32
    arithmetic and keeps the first strict f32 minimum (spec int8 §6.2 step 3.5)."""
    from tnnquant.calib.methods.kl import F32_TIE_RTOL, KL_FIRST, _f32_first_min
    _, h = real_like_histograms()[0]
    f32_curve = kl_curve_reference(h)
    a, b = 300, 900                               # two candidates made to tie in float64
    kl = np.full((1, 1920), 1.0)
    kl[0, [a, b]] = 0.5
    kl[0, b] -= 0.1 * F32_TIE_RTOL * 0.5          # b is the float64 minimum, a within the margin
    want = a if f32_curve[a] <= f32_curve[b] else b
    assert _f32_first_min(kl, h[None])[0] == want + KL_FIRST
    kl[0, a] = 0.5 + 10 * F32_TIE_RTOL            # outside the margin: float64 decides
    assert _f32_first_min(kl, h[None])[0] == b + KL_FIRST
