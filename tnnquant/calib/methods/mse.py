"""MSE clipping search for blob scales (tnnquant's own; TNN has no such method).

For each channel (or the merged tensor) the threshold ``T`` minimizes the expected squared
error of symmetric int8 quantization over the calibration histogram: values below ``T`` get the
uniform rounding noise ``Δ²/12`` (``Δ = T/127``), values above are clipped to ``T``:

    MSE(T) = Δ²/12 · Σ_{|v| <= T} n(v) + Σ_{|v| > T} n(v) · (|v| - T)²

Every bin edge of TNN's 2048-bin histogram is a candidate (bin centres stand for their values;
the tail sums come from suffix sums, O(2048) per channel). Exact zeros are not in the histogram
and quantize exactly, so they weigh nothing. The scale is ``T/127`` with ``T`` the candidate's
bin edge, written like TNN's thresholds (``threshold_scale``): the last candidate is MinMax.
"""
from __future__ import annotations

import numpy as np

from ..observers import HIST_BINS, BlobStats
from .base import QMAX, act_method, finish, threshold_scale


def mse_thresholds(counts: np.ndarray) -> np.ndarray:
    """(slots,) threshold bins ``t`` (value ``(t + 0.5) / interval``) minimizing the expected
    quantization MSE of histograms ``counts`` (slots, 2048) in bin units."""
    h = np.asarray(counts, np.float64)
    centre = np.arange(HIST_BINS) + 0.5                       # bin centres, in bins
    t_val = centre                                             # candidate t -> T = t + 0.5
    below = np.cumsum(h, axis=1)                               # Σ_{k<=t} n
    # tail sums over k > t of n, n·c, n·c²
    s0 = h.sum(1, keepdims=True) - below
    s1 = (h * centre).sum(1, keepdims=True) - np.cumsum(h * centre, axis=1)
    s2 = (h * centre ** 2).sum(1, keepdims=True) - np.cumsum(h * centre ** 2, axis=1)
    step = t_val / QMAX
    err = below * step ** 2 / 12 + s2 - 2 * t_val * s1 + t_val ** 2 * s0
    return np.argmin(err, axis=1)


@act_method("mse", needs=("range", "histogram"))
def mse(stats: BlobStats) -> tuple[np.ndarray, np.ndarray]:
    """Per slot, the threshold minimizing the expected int8 quantization MSE (module
    docstring); zero point 0, invalid slots scale 0."""
    h = stats.histogram
    return finish(threshold_scale(mse_thresholds(h.counts), h.interval), 0, h.valid)
