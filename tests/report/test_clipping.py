"""The worst blobs' statistics are calibration's own, gathered on any samples; the methods
shown are MinMax and every registered histogram method; int8 ranges from scales and zero
points."""
from __future__ import annotations

import numpy as np

from tnnquant.calib.collect import StatsCollector
from tnnquant.calib.methods import ACT_METHODS
from tnnquant.ir.graph import BlobScale
from tnnquant.passes.fuse_activation import fuse_conv_activation
from tnnquant.report.clipping import Clip, blob_statistics, method_clips, shown_methods
from tnnquant.testing import GraphBuilder


def model():
    b = GraphBuilder(seed=5)
    x = b.input("data", (1, 3, 12, 12))
    r = b.layer("ReLU", b.conv(x, 6, 3, pad=1, name="c1"), name="r1")
    return b.build(b.conv(r, 4, 3, pad=1, name="c2"))


def test_statistics_equal_calibrations():
    graph = fuse_conv_activation(model())
    r = np.random.default_rng(3)
    batches = [{"data": r.standard_normal((3, 3, 12, 12)).astype(np.float32)} for _ in range(3)]
    collector = StatsCollector(graph, "kl", per_tensor_blobs=False)
    calibration = {}
    for group in collector.run(lambda: iter(batches)):
        calibration.update(group)
    stats = blob_statistics(graph, lambda: iter(batches), {"r1": 6, "c2": 4},
                            needs=frozenset({"range", "histogram", "aciq_means"}))
    for blob in ("r1", "c2"):
        mine, theirs = stats[blob], calibration[blob]
        assert np.array_equal(mine.range.min, theirs.range.min)
        assert np.array_equal(mine.range.max, theirs.range.max)
        assert np.array_equal(mine.histogram.counts, theirs.histogram.counts)
        assert mine.aciq_means is not None
    # ranges gathered beforehand save the range pass and give the same histograms
    passes = []
    counted = blob_statistics(graph, lambda: passes.append(1) or iter(batches), {"r1": 6},
                              ranges={"r1": stats["r1"].range})["r1"]
    assert len(passes) == 1
    assert np.array_equal(counted.histogram.counts, stats["r1"].histogram.counts)
    merged = blob_statistics(graph, lambda: iter(batches), {"c2": 1})["c2"]
    assert merged.range.min.shape == (1,) and merged.histogram.counts.shape == (1, 2048)
    assert merged.aciq_means is None
    assert merged.range.max[0] == stats["c2"].range.max.max()


def test_shown_methods_are_minmax_and_the_histogram_readers():
    shown = shown_methods()
    assert list(shown)[0] == "minmax" and "kl" in shown
    assert set(shown) == {"minmax"} | {n for n, m in ACT_METHODS.items()
                                       if "histogram" in m.needs}
    assert not {"asy_minmax", "aciq_gauss", "aciq_laplace"} & set(shown)


def test_clip_ends_follow_the_dequantization_formula():
    clip = Clip.of(BlobScale(np.array([0.1, 0.5], np.float32), np.array([10, 0], np.int8)))
    scale = clip.scale.astype(np.float64)
    assert np.allclose(clip.top, scale * (127 - np.array([10, 0])))
    assert np.allclose(clip.bottom, scale * (-128 - np.array([10, 0])))
    assert not clip.symmetric and Clip.of(BlobScale(np.ones(3))).symmetric


def test_method_clips_call_the_registry():
    graph = fuse_conv_activation(model())
    batch = {"data": np.random.default_rng(0).standard_normal((4, 3, 12, 12)).astype(np.float32)}
    stats = blob_statistics(graph, lambda: iter([batch]), {"r1": 6})["r1"]
    clips, = method_clips([stats])
    for name, clip in clips.items():
        scale, zero_point = ACT_METHODS.get(name)(stats)
        assert np.array_equal(clip.scale, scale) and np.array_equal(clip.zero_point, zero_point)
    assert np.all(clips["kl"].top <= clips["minmax"].top)
