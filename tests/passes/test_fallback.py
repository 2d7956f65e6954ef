"""The fallback check (passes/fallback.py): fold ranges, fold batches, and the decision, with
the simulator as judge."""
from __future__ import annotations

import numpy as np
import pytest

from tnnquant.api import run, simulate
from tnnquant.calib.collect import StatsCollector
from tnnquant.calib.methods.base import ACT_METHODS, ActMethod, finish, threshold_scale
from tnnquant.calib.observers import (HIST_BINS, BlobStats, FoldRangeObserver, RangeObserver,
                                      combine_ranges)
from tnnquant.config import QuantConfig
from tnnquant.exec import ort_kernels
from tnnquant.formats.tnnmodel import format_model
from tnnquant.formats.tnnproto import format_proto
from tnnquant.passes.fallback import FOLDS, fallback_config, fold_batches
from tnnquant.quantize import quantize
from tnnquant.testing import GraphBuilder

f32 = np.float32


def test_fold_ranges_are_each_folds_own_min_and_max():
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(n, 3, 5, 5)).astype(f32) for n in (3, 1, 4)]
    everything = np.concatenate(batches)
    folds = FoldRangeObserver(3, 2)
    for b in batches:
        folds.update(b)
    for f, stats in enumerate(folds.result()):
        mine = everything[f::2]
        assert stats.files == len(mine)
        assert np.array_equal(stats.min, mine.min(axis=(0, 2, 3)))
        assert np.array_equal(stats.max, mine.max(axis=(0, 2, 3)))
    whole = RangeObserver(3)
    whole.update(everything)
    both = combine_ranges(folds.result())
    assert np.array_equal(both.min, whole.result().min)
    assert np.array_equal(both.max, whole.result().max)
    assert both.files == len(everything)


def test_fold_batches_alternate_samples_across_batch_boundaries():
    batches = [np.arange(0, 3), np.arange(3, 5), np.arange(5, 9)]

    def source():
        return iter({"x": b} for b in batches)

    held = np.concatenate([b["x"] for b in fold_batches(source, 0, held_out=True)()])
    rest = np.concatenate([b["x"] for b in fold_batches(source, 0, held_out=False)()])
    assert held.tolist() == [0, 2, 4, 6, 8] and rest.tolist() == [1, 3, 5, 7]
    assert FOLDS == 2


def test_fallback_config_drops_only_the_fitted_steps():
    assert fallback_config(QuantConfig.tnn()) is None
    assert fallback_config(QuantConfig(blob_method="asy_minmax")) is None
    fallback = fallback_config(QuantConfig(target_cos=0.99))
    assert (fallback.blob_method, fallback.scale_search, fallback.learned_rounding) == (
        "minmax", False, False)
    assert not fallback.fallback_check and fallback.target_cos is None
    assert fallback.bias_correction and fallback.round_bias and fallback.swish_in_float
    assert fallback.weight_method == QuantConfig().weight_method


def net():
    b = GraphBuilder(4)
    x = b.input("data", (1, 3, 12, 12))
    c1 = b.conv(x, 8, 3, pad=1, name="conv1")
    r1 = b.layer("ReLU", c1, name="relu1")
    c2 = b.conv(r1, 8, 3, pad=1, name="conv2")
    gap = b.layer("Pooling", c2, "1 0 0 1 1 0 0 -1 -1 -1 0 0 0 0", name="gap")
    return b.build(b.inner_product(gap, 5, 8, name="fc"))


def samples(n, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1, (3, 12, 12)).astype(f32) for _ in range(n)]


def test_collector_fold_ranges_split_the_samples_in_order():
    g, xs = net(), samples(5, 3)
    collector = StatsCollector(g, "mse", False, folds=2)
    batches = [{"data": np.stack(xs[:3])}, {"data": np.stack(xs[3:])}]
    for _ in collector.run(lambda: iter(batches)):
        pass
    for name, whole in collector.ranges.items():
        both = combine_ranges(collector.fold_ranges[name])
        assert np.array_equal(both.min, whole.min) and np.array_equal(both.max, whole.max)
    x = np.stack(xs)
    for fold in range(2):
        got = collector.fold_ranges["data"][fold]
        assert np.array_equal(got.max, x[fold::2].max(axis=(0, 2, 3)))
        assert got.files == len(x[fold::2])


def same_model(a, b) -> bool:
    """The same files: everything TNN's runtime reads (layers, flags, scales, weights)."""
    return format_proto(a) == format_proto(b) and format_model(a) == format_model(b)


def mean_cosine(graph, qgraph, xs) -> float:
    out = []
    for x in xs:
        ref = run(graph, x[None])["fc"].ravel().astype(np.float64)
        got = simulate(qgraph, x[None])["fc"].ravel().astype(np.float64)
        out.append(ref @ got / np.linalg.norm(ref) / np.linalg.norm(got))
    return float(np.mean(out))


def test_check_keeps_the_fitted_recipe_when_it_does_better():
    g, xs = net(), samples(8, 1)
    checked = quantize(g, xs, QuantConfig())
    assert "fallback check" in checked.notes[-1] and checked.notes[-1].endswith("kept")
    # every scored model's simulator sessions were dropped (they held its activation memory)
    assert not any(ort_kernels._sessions.values())
    assert same_model(checked.graph, quantize(g, xs, QuantConfig(fallback_check=False)).graph)


def test_check_drops_fitted_steps_that_hurt_the_output(monkeypatch):
    """A 'clipping' method that throws away 15/16 of every range: the fitted recipe loses on
    its own calibration data, so the recipe without its fitted steps is written instead."""
    def sixteenth(stats: BlobStats):
        h = stats.histogram
        return finish(threshold_scale(HIST_BINS // 16 - 1, h.interval), 0, h.valid)
    monkeypatch.setitem(ACT_METHODS._items, "sixteenth",
                        ActMethod("sixteenth", None, frozenset({"range", "histogram"}),
                                  sixteenth))
    g, xs = net(), samples(8, 1)
    config = QuantConfig(blob_method="sixteenth")
    checked = quantize(g, xs, config)
    assert checked.notes[-1].endswith("dropped"), checked.notes[-1]
    assert "sixteenth clipping" in checked.notes[-1]
    fallback = quantize(g, xs, fallback_config(config))
    assert same_model(checked.graph, fallback.graph)
    fitted = quantize(g, xs, QuantConfig(blob_method="sixteenth", fallback_check=False))
    new = samples(10, 2)
    assert mean_cosine(g, checked.graph, new) > mean_cosine(g, fitted.graph, new)


def test_one_calibration_sample_skips_the_check():
    r = quantize(net(), samples(1, 1), QuantConfig())
    assert "skipped" in r.notes[-1]


@pytest.mark.parametrize("config", [QuantConfig.tnn(), QuantConfig(fallback_check=False)])
def test_no_check_without_fitted_steps_or_when_switched_off(config):
    r = quantize(net(), samples(4, 1), config)
    assert not any("fallback check" in n for n in r.notes)


def test_progress_stages_stay_contiguous_with_the_check():
    """The CLI shows one bar per stage and closes it when the next begins: the fallback's own
    steps must not report their stages a second time."""
    stages: list[str] = []
    quantize(net(), samples(6, 1), QuantConfig(), progress=lambda stage, done: stages.append(stage))
    order = [s for k, s in enumerate(stages) if k == 0 or stages[k - 1] != s]
    assert len(order) == len(set(order)), order
    assert order[-1] == "fallback check"


def test_check_runs_when_the_range_pass_goes_through_hooks():
    """ACIQ needs means, so pass 1 observes blobs through hooks instead of the executor's
    extremes: the fold ranges are collected there too."""
    r = quantize(net(), samples(4, 1), QuantConfig(blob_method="aciq_gauss"))
    assert r.notes[-1].startswith("fallback check: output cosine"), r.notes[-1]
