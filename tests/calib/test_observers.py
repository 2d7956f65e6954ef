"""Observers against literal transcriptions of TNN's statistics loops (spec int8 §5)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tnnquant.calib.observers import (
    AciqMeansObserver,
    BlobStats,
    Histogram,
    HistogramObserver,
    RangeObserver,
    interval_from_range,
    tnn_bin_values,
)

F32 = np.float32


# --- literal TNN loops (spec §5), element by element -------------------------------------------


def tnn_ranges(batches, channels):
    lo = [F32(1e6)] * channels
    hi = [F32(-1e6)] * channels
    for x in batches:
        x = x.reshape(x.shape[0], x.shape[1], -1)
        for b in range(x.shape[0]):
            for c in range(x.shape[1]):
                cc = 0 if channels == 1 else c
                for v in x[b, c]:
                    if v < lo[cc]:
                        lo[cc] = v
                    if v > hi[cc]:
                        hi[cc] = v
    return np.array(lo, F32), np.array(hi, F32)


def tnn_histogram(batches, vmin, vmax):
    channels = len(vmin)
    bins = np.full((channels, 2048), F32(1e-7), F32)
    interval = [F32(0)] * channels
    valid = [False] * channels
    for c in range(channels):
        m = max(abs(vmin[c]), abs(vmax[c]))
        valid[c] = float(m) > 0.00001
        if valid[c]:
            interval[c] = F32(F32(2048) / m)
    for x in batches:
        x = x.reshape(x.shape[0], x.shape[1], -1)
        for b in range(x.shape[0]):
            for c in range(x.shape[1]):
                cc = 0 if channels == 1 else c
                if not valid[cc]:
                    continue
                for v in x[b, c]:
                    if v == 0 or np.isnan(v):
                        continue
                    idx = min(int(F32(abs(v) * interval[cc])), 2047)
                    bins[cc, idx] = F32(bins[cc, idx] + F32(1))
    return bins


def tnn_aciq(batches, channels):
    mean = [F32(0)] * channels
    meanabs = [F32(0)] * channels
    count = [0] * channels
    for x in batches:
        x = x.reshape(x.shape[0], x.shape[1], -1)
        for b in range(x.shape[0]):  # each batch item is one calibration file
            for c in range(x.shape[1]):
                cc = 0 if channels == 1 else c
                s = F32(0)
                sa = F32(0)
                for v in x[b, c]:
                    s = F32(s + v)
                    sa = F32(sa + abs(v))
                hw = F32(x.shape[2])
                k = count[cc]
                mean[cc] = F32(F32(F32(mean[cc] * F32(k)) + F32(s / hw)) / F32(k + 1))
                meanabs[cc] = F32(F32(F32(meanabs[cc] * F32(k)) + F32(sa / hw)) / F32(k + 1))
                count[cc] = k + 1
    return np.array(mean, F32), np.array(meanabs, F32), np.array(count)


def same_bits(a, b):
    a, b = np.asarray(a, F32), np.asarray(b, F32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def sample(rng, shape, zeros=0.3):
    x = (rng.laplace(size=shape) * rng.uniform(0.1, 10)).astype(F32)
    x[rng.random(shape) < zeros] = 0
    return x


# --- RangeObserver ------------------------------------------------------------------------------


@pytest.mark.parametrize("merged", [False, True])
def test_ranges_equal_sequential_loop(merged):
    rng = np.random.default_rng(0)
    batches = [sample(rng, (2, 3, 4, 5)), sample(rng, (1, 3, 4, 5)), sample(rng, (3, 3, 4, 5))]
    channels = 1 if merged else 3
    obs = RangeObserver(channels)
    for x in batches:
        obs.update(x)
    r = obs.result()
    lo, hi = tnn_ranges(batches, channels)
    assert same_bits(r.min, lo) and same_bits(r.max, hi)
    assert r.files == 6 and r.merged == merged
    assert r.numel == (3 * 20 if merged else 20)


def test_ranges_init_quirks():
    obs = RangeObserver(2)
    # channel 0 all above 1e6: min stays at the 1e6 init; channel 1 has NaN (never wins)
    x = np.array([[[2e6, 3e6], [np.nan, -5.0]]], F32)
    obs.update(x)
    r = obs.result()
    assert r.min[0] == F32(1e6) and r.max[0] == F32(3e6)
    assert r.min[1] == F32(-5) and r.max[1] == F32(-5)
    lo, hi = tnn_ranges([x], 2)
    assert same_bits(r.min, lo) and same_bits(r.max, hi)


def test_ranges_rank1_and_rank2():
    obs = RangeObserver(4)
    obs.update(np.array([[1, -2, 3, 0], [5, 0, -7, 1]], F32))
    r = obs.result()
    assert r.min.tolist() == [1, -2, -7, 0] and r.max.tolist() == [5, 0, 3, 1]
    assert r.numel == 1
    obs1 = RangeObserver(1)
    obs1.update(np.array([3, -4], F32))  # rank 1: (N,) is one channel
    assert obs1.result().min[0] == -4 and obs1.result().max[0] == 3


def test_channel_mismatch_is_an_error():
    with pytest.raises(ValueError, match="built for 3 channels"):
        RangeObserver(3).update(np.zeros((1, 4, 2, 2), F32))


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(F32, hnp.array_shapes(min_dims=2, max_dims=4, max_side=4),
                  elements=st.floats(-3e6, 3e6, width=32) | st.just(0.0) | st.just(-0.0)),
       st.booleans())
def test_ranges_property(x, merged):
    channels = 1 if merged else x.shape[1]
    obs = RangeObserver(channels)
    obs.update(x)
    lo, hi = tnn_ranges([x], channels)
    r = obs.result()
    assert np.array_equal(r.min, lo) and np.array_equal(r.max, hi)


# --- ACIQ means -----------------------------------------------------------------------------------


@pytest.mark.parametrize("merged", [False, True])
def test_aciq_means_equal_running_average_loop(merged):
    rng = np.random.default_rng(1)
    batches = [sample(rng, (3, 4, 7, 9)), sample(rng, (1, 4, 7, 9)), sample(rng, (2, 4, 7, 9))]
    channels = 1 if merged else 4
    obs = AciqMeansObserver(channels)
    for x in batches:
        obs.update(x)
    got = obs.result()
    mean, meanabs, count = tnn_aciq(batches, channels)
    assert same_bits(got.mean, mean) and same_bits(got.meanabs, meanabs)
    assert got.count.tolist() == count.tolist() == ([24] if merged else [6] * 4)


def test_aciq_merged_depends_on_order():
    # running f32 averages are order dependent; merged mode advances per (file, channel)
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((5, 6, 11, 13)) * np.exp(rng.uniform(-6, 6, (5, 6, 1, 1)))).astype(F32)
    a, b = AciqMeansObserver(1), AciqMeansObserver(1)
    a.update(x)
    b.update(x[::-1])
    assert same_bits(a.result().meanabs, tnn_aciq([x], 1)[1])
    assert same_bits(b.result().meanabs, tnn_aciq([x[::-1]], 1)[1])


# --- histograms ----------------------------------------------------------------------------------


@pytest.mark.parametrize("merged", [False, True])
def test_histogram_equals_f32_counter_loop(merged):
    rng = np.random.default_rng(3)
    batches = [sample(rng, (2, 3, 6, 6)), sample(rng, (2, 3, 6, 6))]
    batches[0][0, 1, 0, :3] = [-0.0, 0.0, np.nan]  # zeros and NaN are not counted
    channels = 1 if merged else 3
    ranges = RangeObserver(channels)
    for x in batches:
        ranges.update(x)
    r = ranges.result()
    obs = HistogramObserver(r)
    for x in batches:
        obs.update(x)
    h = obs.result()
    assert same_bits(h.bins(), tnn_histogram(batches, r.min, r.max))
    nonzero = sum(np.count_nonzero((x != 0) & ~np.isnan(x)) for x in batches)
    assert h.counts.sum() == nonzero


def test_histogram_bin_edges_and_max_value():
    # the max-abs value lands in bin 2047 (idx 2048 clipped); f32 product, then truncation
    x = np.array([[[4.0, -4.0, 1.0, 0.001, 3.9999998]]], F32)
    r = RangeObserver(1)
    r.update(x)
    obs = HistogramObserver(r.result())
    obs.update(x)
    h = obs.result()
    assert h.interval[0] == F32(512)
    assert h.counts[0, 2047] == 3 and h.counts[0, 512] == 1 and h.counts[0, 0] == 1
    assert same_bits(h.bins(), tnn_histogram([x], r.result().min, r.result().max))


def test_invalid_channels_are_not_counted():
    x = np.zeros((2, 3, 4), F32)
    x[:, 0] = 1e-6  # max-abs <= 1e-5: invalid
    x[:, 1] = 2.0
    r = RangeObserver(3)
    r.update(x)
    obs = HistogramObserver(r.result())
    obs.update(x)
    h = obs.result()
    assert h.valid.tolist() == [False, True, False]
    assert h.interval.tolist() == [0, 1024, 0]
    assert h.counts[0].sum() == 0 and h.counts[2].sum() == 0 and h.counts[1, 2047] == 8
    assert np.all(h.bins()[0] == F32(1e-7))


def test_validity_threshold_is_compared_in_double():
    m = np.array([F32(1e-5), np.nextafter(F32(1e-5), F32(1)), 1e-4], F32)
    interval, valid = interval_from_range(-m, m)
    assert float(F32(1e-5)) < 1e-5 < float(m[1])
    assert valid.tolist() == [False, True, True]
    assert interval[2] == F32(F32(2048) / F32(1e-4))


def test_valid_bins_are_the_valid_rows_of_bins(rng):
    counts = rng.integers(0, 4, (5, 2048)).astype(np.int32)
    for valid in (np.array([True, False, True, True, False]), np.ones(5, bool)):
        h = Histogram(counts, np.ones(5, F32), valid)
        assert same_bits(h.valid_bins(), h.bins()[valid])
        out = np.full((int(valid.sum()), 2048), np.nan, F32)
        assert h.valid_bins(out=out) is out and same_bits(out, h.bins()[valid])


def test_counter_semantics_match_f32_increments():
    n = 2 ** 24 + 8
    acc = np.cumsum(np.concatenate([[F32(1e-7)], np.ones(n, F32)]), dtype=F32)  # sequential
    counts = np.array([0, 1, 2, 3, 1000, 2 ** 24 - 1, 2 ** 24, 2 ** 24 + 1, 2 ** 24 + 8])
    assert same_bits(tnn_bin_values(counts), acc[counts])
    assert tnn_bin_values(np.array([10 ** 12]))[0] == F32(2 ** 24)
    assert tnn_bin_values(np.array([1]))[0] == F32(1 + 2.0 ** -23)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(0, 2 ** 31))
def test_histograms_stream_and_merge(splits, seed):
    """Any split of the files into batches, or into merged observers, gives the same counts."""
    rng = np.random.default_rng(seed)
    x = sample(rng, (6, 2, 5, 5))
    r = RangeObserver(2)
    r.update(x)
    whole = HistogramObserver(r.result())
    whole.update(x)
    parts = np.array_split(x, splits)
    streamed = HistogramObserver(r.result())
    merged = HistogramObserver(r.result())
    for part in parts:
        streamed.update(part)
        other = HistogramObserver(r.result())
        other.update(part)
        merged.merge(other)
    assert np.array_equal(streamed.result().counts, whole.result().counts)
    assert np.array_equal(merged.result().counts, whole.result().counts)


def test_merge_requires_same_ranges():
    a = RangeObserver(1)
    a.update(np.ones((1, 1), F32))
    b = RangeObserver(1)
    b.update(np.full((1, 1), 2, F32))
    with pytest.raises(ValueError, match="different ranges"):
        HistogramObserver(a.result()).merge(HistogramObserver(b.result()))


def test_blob_stats_has():
    r = RangeObserver(1)
    r.update(np.ones((1, 1), F32))
    s = BlobStats(r.result())
    assert s.has("range") and not s.has("histogram") and not s.has("aciq_means")


def test_histogram_dense_and_sparse_update_paths():
    """Large updates count with np.bincount, small ones with np.add.at: same counts."""
    rng = np.random.default_rng(6)
    x = sample(rng, (3, 2, 24, 24))  # 3456 elements >= 2·2048/8: the bincount path
    x[1, 0, :2, :2] = np.nan
    r = RangeObserver(2)
    r.update(x)
    dense = HistogramObserver(r.result())
    dense.update(x)
    sparse = HistogramObserver(r.result())
    for row in range(24):  # 144 elements per update: the np.add.at path
        sparse.update(x[:, :, row])
    assert np.array_equal(dense.result().counts, sparse.result().counts)
    assert same_bits(dense.result().bins(), tnn_histogram([x], r.result().min, r.result().max))
