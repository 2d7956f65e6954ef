"""Calibration memory does not grow with the number of samples: the statistics keep running
values (ranges, means, histogram counts), never per-sample data (README: "memory does not
depend on the number of samples")."""
from __future__ import annotations

import dataclasses
import tracemalloc

import numpy as np
import pytest

from tnnquant.calib.collect import StatsCollector
from tnnquant.testing import GraphBuilder

DIMS = (3, 16, 16)   # H·W >= 100, so KL and ACIQ are not replaced by MinMax (spec int8 §4)
SAMPLE_BYTES = int(np.prod(DIMS)) * 4
FEW, MANY = 40, 400


def tiny_net():
    b = GraphBuilder(seed=2)
    x = b.input("data", (1, *DIMS))
    y = b.layer("ReLU", b.conv(x, 8, 3, pad=1, name="conv1"), name="relu1")
    return b.build(b.conv(y, 4, 3, pad=1, name="conv2"))


def calibrate(n: int, method: str) -> tuple[dict, int]:
    """Statistics of ``n`` samples made on the fly (none is kept by the source) and the peak
    of memory traced while they are collected."""
    def batches():
        rng = np.random.default_rng(0)
        for start in range(0, n, 8):
            yield {"data": rng.normal(size=(min(8, n - start), *DIMS)).astype(np.float32)}

    collector = StatsCollector(tiny_net(), method, per_tensor_blobs=False)
    stats = {}
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        for group in collector.run(batches):
            stats.update(group)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(s.range.files == n for s in stats.values())
    return stats, peak


def nbytes(value) -> int:
    """Bytes of the arrays held by a statistics object, recursively."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if dataclasses.is_dataclass(value):
        return sum(nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    return 0


@pytest.mark.parametrize("method", ["minmax", "kl", "aciq_laplace"])
def test_statistics_do_not_keep_samples(method):
    few, peak_few = calibrate(FEW, method)
    many, peak_many = calibrate(MANY, method)
    assert {k: nbytes(v) for k, v in few.items()} == {k: nbytes(v) for k, v in many.items()}
    # the peak is one batch in flight plus the statistics; keeping the 360 extra samples (or
    # any per-sample value of the 4 calibrated blobs) would add >= 360 · 3 KiB ~ 1 MiB
    assert peak_many - peak_few < (MANY - FEW) * SAMPLE_BYTES // 16, (peak_few, peak_many)
