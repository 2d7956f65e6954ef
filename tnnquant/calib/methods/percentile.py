"""Percentile clipping for blob scales (tnnquant's own; TNN has no such method).

The threshold is the smallest histogram bin edge below which ``PERCENTILE`` of the channel's
non-zero |values| lie (the exact zeros TNN's histogram skips quantize exactly).
"""
from __future__ import annotations

import numpy as np

from ..observers import BlobStats
from .base import act_method, finish, threshold_scale

# the fraction of non-zero |values| kept unclipped: the common default of calibration tools
# (TensorRT's and PPQ's percentile calibrators); not tuned to any model
PERCENTILE = 0.9999


def percentile_thresholds(counts: np.ndarray, fraction: float = PERCENTILE) -> np.ndarray:
    """(slots,) threshold bins: the first bin whose cumulative count reaches ``fraction`` of
    the total (the last bin for an empty histogram)."""
    cum = np.cumsum(np.asarray(counts, np.float64), axis=1)
    total = cum[:, -1:]
    return np.minimum(np.argmax(cum >= fraction * total, axis=1), cum.shape[1] - 1)


@act_method("percentile", needs=("range", "histogram"))
def percentile(stats: BlobStats) -> tuple[np.ndarray, np.ndarray]:
    """Per slot, the ``PERCENTILE`` point of the |value| histogram; zero point 0."""
    h = stats.histogram
    return finish(threshold_scale(percentile_thresholds(h.counts), h.interval), 0, h.valid)
