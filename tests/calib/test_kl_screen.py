"""The compiled KL screen (tnnquant/calib/methods/kl_screen.py, numba): its float32 log and
error bound against NumPy's float64 log, its cross terms against the float64 search's, and the
screened search's thresholds against the NumPy-only search's (the same, by construction)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_methods import hist_from_counts, real_like_histograms

from tnnquant.calib.methods import kl

pytest.importorskip("numba", reason="numba is not installed (pip install 'tnnquant[fast]')")
from tnnquant.calib.methods.kl_screen import SCREEN_ERR, _logf, screen  # noqa: E402

F32 = np.float32


def numpy_only(monkeypatch):
    monkeypatch.setattr(kl, "_compiled", lambda: None)


def test_the_search_uses_the_screen_when_numba_is_installed():
    assert kl._compiled().screen is screen


def test_compiled_tables_are_numpys_bit_for_bit(monkeypatch):
    """``_tables`` with the compiled bin-127 sums equals the NumPy loop's, every array."""
    hists = np.array([b for _, b in real_like_histograms()])
    compiled = kl._tables(hists)
    numpy_only(monkeypatch)
    plain = kl._tables(hists)
    for name in ("p", "prefix", "p_min", "q_last", "ref_last", "base"):
        assert np.array_equal(getattr(compiled, name), getattr(plain, name)), name


def test_logf_is_within_a_quarter_of_the_bound():
    """``|logf(f32(v)) - log(v)| <= (|L| + 1)·SCREEN_ERR/4`` on values spanning float32's
    normal range, 1 ± a few ulps and the square-root-of-two split; the rest are flagged."""
    rng = np.random.default_rng(0)
    v = np.concatenate([
        10.0 ** rng.uniform(-37.9, 38.5, 200_000),
        1.0 + rng.uniform(-1e-6, 1e-6, 10_000),
        np.sqrt(2) * (1.0 + rng.uniform(-1e-6, 1e-6, 10_000)),
        [1.0, 0.5, 2.0, np.sqrt(0.5), 1.2e-38, 3e38],
    ])
    x = v.astype(F32)
    assert _logf(x, np.empty(len(x), np.int32)) == 0
    exact = np.log(v)
    assert np.all(np.abs(x - exact) <= (np.abs(x) + 1.0) * SCREEN_ERR / 4)
    odd = np.array([0.0, -1.0, 1e-40, np.inf, np.nan, -np.inf], F32)
    assert _logf(odd.copy(), np.empty(len(odd), np.int32)) == len(odd)


def all_rows(h):
    t = kl._tables(h)
    c = h.shape[0]
    cross = np.full((c, kl.N_CANDIDATES), np.nan)
    err = np.full((c, kl.N_CANDIDATES), np.inf)
    screen(t.prefix, t.p, t.q_last, np.zeros(c, np.int64), np.arange(kl.N_CANDIDATES), cross, err)
    exact = kl._cross(t, slice(None), slice(0, kl.N_CANDIDATES))
    return cross, err, exact


def test_screen_bounds_the_float64_cross_term():
    h = np.array([b for _, b in real_like_histograms()])
    cross, err, exact = all_rows(h)
    ok = np.isfinite(cross)
    assert ok.mean() > 0.99  # NaN only where a bin holds (nearly) nothing
    assert np.all(np.abs(cross[ok] - exact[ok]) <= err[ok])
    assert np.median(err[ok]) < 1e-4  # tight enough to settle all but a few candidates


def test_screen_starts_where_asked():
    h = np.array([b for _, b in real_like_histograms()])[:2]
    t = kl._tables(h)
    cross = np.full((2, kl.N_CANDIDATES), -7.0)
    err = np.zeros((2, kl.N_CANDIDATES))
    screen(t.prefix, t.p, t.q_last, np.array([5, 1000]), np.array([0, 6, 999, 1000, 1919]),
           cross, err)
    assert np.flatnonzero(cross[0] != -7.0).tolist() == [6, 999, 1000, 1919]
    assert np.flatnonzero(cross[1] != -7.0).tolist() == [1000, 1919]


def both_searches(hists, monkeypatch, exact=False):
    screened = kl.kl_thresholds(hists, exact=exact)
    with monkeypatch.context() as m:
        numpy_only(m)
        plain = kl.kl_thresholds(hists, exact=exact)
    return screened, plain


@pytest.mark.parametrize("exact", [False, True])
def test_screened_search_equals_the_float64_search(monkeypatch, exact):
    rng = np.random.default_rng(3)
    hists = [b for _, b in real_like_histograms()]
    for support, peak in ((2048, 5000), (300, 50), (1500, 3), (130, 10 ** 6)):
        counts = np.zeros(2048, np.int64)
        counts[:support] = rng.integers(0, peak, support)
        hists.append(hist_from_counts(counts))
    for where, count in ((2047, 2744), (1500, 100), (700, 10 ** 6)):  # one bin: f32 ties
        counts = np.zeros(2048, np.int64)
        counts[where] = count
        hists.append(hist_from_counts(counts))
    hists.append(hist_from_counts(np.full(2048, 50)))  # uniform: the last candidate
    counts = np.zeros(2048, np.int64)
    counts[:780] = rng.integers(0, 3000, 780)  # TNN's running tail drifts negative
    hists.append(hist_from_counts(counts))
    counts = rng.integers(10 ** 9, 10 ** 10, 2048)  # prefix sums lose the small bins
    counts[1000:] = rng.integers(0, 2, 1048)
    hists.append(hist_from_counts(counts))
    screened, plain = both_searches(np.array(hists), monkeypatch, exact)
    assert np.array_equal(screened, plain)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2 ** 31), st.integers(129, 2048), st.sampled_from([2, 40, 10 ** 4]))
def test_screened_search_equals_the_float64_search_on_random_histograms(seed, support, peak):
    rng = np.random.default_rng(seed)
    counts = np.zeros((6, 2048), np.int64)
    counts[:, :support] = rng.integers(0, peak, (6, support))
    hists = np.array([hist_from_counts(c) for c in counts])
    with pytest.MonkeyPatch.context() as m:
        screened, plain = both_searches(hists, m)
    assert np.array_equal(screened, plain)


def test_numba_debug_mode_falls_back_to_numpy(monkeypatch):
    """NUMBA_DISABLE_JIT=1 would run the compiled loops as Python, ~1000x slower."""
    import numba

    from tnnquant.weights.methods import admm
    from tnnquant.parallel import compiled_module
    loaders = (kl._compiled, admm._compiled)
    monkeypatch.setattr(numba.config, "DISABLE_JIT", 1)
    compiled_module.cache_clear()
    for loader in loaders:
        assert loader() is None
    monkeypatch.undo()
    compiled_module.cache_clear()
    for loader in loaders:
        assert loader() is not None
