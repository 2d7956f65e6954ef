"""tnnquant's own blob clipping methods (MSE, percentile) and per-channel -> per-tensor
statistics, against brute force written here."""
from __future__ import annotations

import numpy as np
import pytest

from tnnquant.calib.methods import ACT_METHODS, effective_method
from tnnquant.calib.methods.mse import mse_thresholds
from tnnquant.calib.methods.percentile import PERCENTILE, percentile_thresholds
from tnnquant.calib.observers import (BlobStats, HistogramObserver, RangeObserver,
                                      merged_stats)


def brute_force_mse_threshold(counts: np.ndarray) -> int:
    """argmin over t of Σ_k n_k · err_k(t) with bin centres c_k = k + 0.5 (bin units):
    rounding noise (T/127)²/12 below T = t + 0.5, clipping (c_k - T)² above."""
    centres = np.arange(len(counts)) + 0.5
    errors = []
    for t in range(len(counts)):      # one candidate at a time, every bin written out
        T = t + 0.5
        per_bin = np.where(centres <= T, (T / 127) ** 2 / 12, (centres - T) ** 2)
        errors.append(float((counts * per_bin).sum()))
    return int(np.argmin(errors))


def test_mse_threshold_matches_brute_force_on_small_histograms():
    rng = np.random.default_rng(0)
    for _ in range(3):
        counts = np.zeros((1, 2048), np.int64)
        values = np.minimum(np.abs(rng.standard_t(3, 5000)) * 120, 2047).astype(int)
        np.add.at(counts[0], values, 1)
        assert mse_thresholds(counts)[0] == brute_force_mse_threshold(counts[0])


def test_mse_clips_sparse_outliers_and_barely_a_dense_range():
    dense = np.zeros((1, 2048), np.int64)
    dense[0, :2048] = 100                      # uniform over the whole range: barely clipped
    assert mse_thresholds(dense)[0] >= 2000
    outlier = np.zeros((1, 2048), np.int64)
    outlier[0, :100] = 1000
    outlier[0, 2047] = 10                      # ten values 20x beyond the bulk of 100,000
    assert mse_thresholds(outlier)[0] < 2047         # clipped: rounding noise costs more


def test_percentile_threshold_is_the_first_bin_reaching_the_fraction():
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 50, (4, 2048))
    got = percentile_thresholds(counts)
    for row, t in zip(counts, got):
        cum = np.cumsum(row)
        assert cum[t] >= PERCENTILE * cum[-1]
        assert t == 0 or cum[t - 1] < PERCENTILE * cum[-1]


def observed(x: np.ndarray, channels: int) -> BlobStats:
    r = RangeObserver(channels)
    r.update(x)
    h = HistogramObserver(r.result())
    h.update(x)
    return BlobStats(r.result(), h.result())


@pytest.mark.parametrize("name", ["mse", "percentile"])
def test_methods_are_registered_without_tnn_code_and_keep_their_name(name):
    method = ACT_METHODS.get(name)
    assert method.code is None and "histogram" in method.needs
    # TNN's H·W < 100 and network-input fallbacks to MinMax are TNN's own methods' rules
    assert effective_method(name, (1, 8, 4, 4), True) == name
    scale, zero_point = method(observed(np.random.default_rng(2).normal(size=(2, 8, 4, 4))
                                        .astype(np.float32), 8))
    assert scale.shape == (8,) and (scale > 0).all() and not zero_point.any()


def test_merged_stats_equal_direct_per_tensor_observation_up_to_one_bin():
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(3, 6, 10, 10)) * np.arange(1, 7)[None, :, None, None]) \
        .astype(np.float32)
    merged = merged_stats(observed(x, 6))
    direct = observed(x, 1)
    np.testing.assert_array_equal(merged.range.min, direct.range.min)
    np.testing.assert_array_equal(merged.range.max, direct.range.max)
    np.testing.assert_array_equal(merged.histogram.interval, direct.histogram.interval)
    assert merged.histogram.counts.sum() == direct.histogram.counts.sum()
    # each value moves by at most one merged bin: the cumulative counts agree within a bin
    cm = np.cumsum(merged.histogram.counts[0])
    cd = np.cumsum(direct.histogram.counts[0])
    assert (cm[1:] >= cd[:-1]).all() and (cd[1:] >= cm[:-1]).all()
