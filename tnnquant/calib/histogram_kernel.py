"""``HistogramObserver``'s counting compiled with numba (``pip install tnnquant[fast]``).

One pass over the batch, each element counted straight into its channel's int32 bins, in the
NumPy version's float32 arithmetic (``|v|`` times the f32 interval, rounded to f32, clamped
to 2047, truncated; spec int8 §5.4): the same counts, without the NumPy version's bin-number
arrays and ``bincount`` temporaries.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .observers import HIST_BINS

_LAST_BIN = np.float32(HIST_BINS - 1)


@njit(nogil=True, cache=True)
def count_bins(x: np.ndarray, interval: np.ndarray, counts: np.ndarray) -> None:
    """Add every element of ``x`` (float32 (N, C, L)) to ``counts`` (int32 (C, 2048)) of its
    channel, or to row 0 for all channels when ``counts`` has one row (a merged observer);
    ``interval`` (float32) has one value per row. Zeros (and -0) and NaN are not counted, nor
    anything in rows of interval 0 (invalid slots, emptied by ``result``)."""
    merged = counts.shape[0] == 1
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            row = 0 if merged else c
            step = interval[row]
            if not step > 0:  # 0 · inf would be NaN, an index out of the bins
                continue
            zeros = 0
            for v in x[n, c]:
                b = abs(v) * step  # float32 * float32 rounds to float32, as TNN
                if b == b:  # not NaN
                    # zeros go to bin 0 and are taken out below: ReLU outputs are a third
                    # zeros, and a branch on them is mispredicted that often
                    counts[row, int(min(b, _LAST_BIN))] += 1
                    zeros += v == 0
            counts[row, 0] -= zeros
