"""The compiled histogram counting (tnnquant/calib/histogram_kernel.py, numba) against TNN's
f32 counter loop (test_observers.tnn_histogram) and the NumPy counting, count for count."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_observers import F32, sample, same_bits, tnn_histogram

from tnnquant.calib import collect, observers
from tnnquant.calib.observers import HistogramObserver, RangeObserver
from tnnquant.passes.fuse_activation import fuse_conv_activation
from tnnquant.testing import GraphBuilder

pytest.importorskip("numba", reason="numba is not installed (pip install 'tnnquant[fast]')")


def both(batches, channels):
    """(compiled, numpy) results of the same updates."""
    ranges = RangeObserver(channels)
    for x in batches:
        ranges.update(np.nan_to_num(x, posinf=0, neginf=0))
    out = []
    for compiled in (True, False):
        obs = HistogramObserver(ranges.result(), compiled)
        assert (obs._kernel is not None) == compiled
        for x in batches:
            obs.update(x)
        out.append(obs.result())
    return ranges.result(), out


@pytest.mark.parametrize("merged", [False, True])
def test_compiled_counts_are_tnns(merged):
    """Zeros, -0 and NaN skipped, inf in the last bin, the max-abs value in bin 2047."""
    rng = np.random.default_rng(11)
    batches = [sample(rng, (2, 3, 7, 5)), sample(rng, (1, 3, 7, 5), zeros=0.6)]
    batches[0][0, 1, 0, :4] = [-0.0, 0.0, np.nan, np.inf]
    batches[1][0, 2, 1, :2] = [-np.inf, np.nan]
    r, (compiled, plain) = both(batches, 1 if merged else 3)
    assert np.array_equal(compiled.counts, plain.counts)
    assert same_bits(compiled.bins(), tnn_histogram(
        [np.nan_to_num(x, nan=0, posinf=r.absmax.max(), neginf=-r.absmax.max())
         for x in batches], r.min, r.max))


@pytest.mark.parametrize("absmax", [4.0, 3.0])
def test_compiled_bin_edges(absmax):
    """Values at and one float either side of every bin edge, where the f32 product (not a
    float64 one) decides the bin; interval 512 multiplies exactly, 2048/3 rounds."""
    interval = F32(2048) / F32(absmax)
    edges = np.arange(1, 2048, dtype=F32) / interval
    edges = edges[edges < absmax]
    near = [np.nextafter(edges, F32(0)), edges, np.nextafter(edges, F32(absmax))]
    x = np.concatenate([[F32(absmax)], *near, -near[0]])[None, None, :]
    r, (compiled, plain) = both([x], 1)
    assert compiled.interval[0] == interval
    assert np.array_equal(compiled.counts, plain.counts)
    assert same_bits(compiled.bins(), tnn_histogram([x], r.min, r.max))


@pytest.mark.filterwarnings("error")
def test_compiled_skips_invalid_slots_and_takes_any_layout():
    """Invalid slots (interval 0) stay empty, even for inf (silently: no NumPy warning for
    its inf · 0); float64, strided, rank-1 and rank-2 inputs count as their float32 contiguous
    copies do."""
    x = np.zeros((2, 3, 4), F32)
    x[:, 0] = 1e-6
    x[:, 1] = 2.0
    x[0, 2, 0] = np.inf   # a slot whose range came from finite values only
    _, (compiled, plain) = both([x], 3)
    assert np.array_equal(compiled.counts, plain.counts)
    assert compiled.counts[0].sum() == 0 and compiled.counts[1, 2047] == 8
    rng = np.random.default_rng(12)
    wide = sample(rng, (3, 4, 6, 5)).astype(np.float64)
    for x in (wide, wide.transpose(0, 1, 3, 2), wide[:, :, ::2], wide[:, :, 0, 0],
              wide[:, 0, 0, 0]):
        _, (compiled, plain) = both([x], x.shape[1] if x.ndim > 1 else 1)
        assert np.array_equal(compiled.counts, plain.counts)


def test_compiled_counts_saturate_like_numpys(monkeypatch):
    """Counts clamp at the f32 counter's saturation (here lowered to 5, so that a small
    array reaches it) after the same updates."""
    monkeypatch.setattr(observers, "COUNTER_SATURATION", 5)
    x = np.full((3, 2, 8), 0.5, F32)
    x[:, 1] = np.linspace(0.1, 1, 8)
    _, (compiled, plain) = both([x, x], 2)
    assert np.array_equal(compiled.counts, plain.counts)
    assert compiled.counts.max() == 5


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(0, 2 ** 31), st.booleans())
def test_compiled_counts_equal_numpys(splits, seed, merged):
    rng = np.random.default_rng(seed)
    x = sample(rng, (5, 3, 9, 4), zeros=rng.uniform(0, 0.9))
    _, (compiled, plain) = both(np.array_split(x, splits), 1 if merged else 3)
    assert np.array_equal(compiled.counts, plain.counts)


def test_which_observers_count_compiled(monkeypatch):
    """By default an observer counts compiled when numba is already imported, never importing
    it for that alone; the collector asks for compiled counting where the blob's method runs
    compiled loops anyway (KL). The histograms are the same every way."""
    import sys
    from tnnquant.calib import histogram_kernel
    assert HistogramObserver(RangeObserver(1).result())._kernel is not None   # imported above
    b = GraphBuilder(seed=5)
    x = b.input("data", (1, 3, 12, 12))
    r = b.layer("ReLU", b.conv(x, 6, 3, pad=1, name="c1"), name="r1")
    graph = fuse_conv_activation(b.build(b.conv(r, 4, 3, pad=1, name="c2")))
    rng = np.random.default_rng(3)
    batches = [{"data": rng.standard_normal((3, 3, 12, 12)).astype(F32)} for _ in range(2)]
    calls = []
    kernel = histogram_kernel.count_bins
    monkeypatch.setattr(histogram_kernel, "count_bins", lambda *a: calls.append(1) or kernel(*a))
    monkeypatch.delitem(sys.modules, "numba")   # as before anything imported it
    assert HistogramObserver(RangeObserver(1).result())._kernel is None

    def histograms(method):
        found = {}
        for group in collect.StatsCollector(graph, method, False).run(lambda: iter(batches)):
            found.update({n: s.histogram.counts for n, s in group.items() if s.histogram})
        return found

    for method, compiled in (("kl", True), ("mse", False)):
        calls.clear()
        counts = histograms(method)
        assert bool(calls) == compiled, method
        with monkeypatch.context() as m:
            m.setattr(collect.StatsCollector, "_compiled", lambda self, name: False)
            plain = histograms(method)
        assert counts.keys() == plain.keys() and counts
        for name, a in counts.items():
            assert np.array_equal(a, plain[name]), (method, name)
