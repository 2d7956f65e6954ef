"""MSE weight clipping search (tnnquant's own; TNN has no such method).

Per row (output channel), the clipping threshold ``α·max|w|`` is searched on a grid of
``CLIP_STEPS`` ratios in ``[CLIP_MIN, 1]`` for the smallest ``Σ (w - S·q)²`` with
``S = α·max|w| / 127`` and ``q = clamp(RHAZ(w / S), -127, 127)``; ``α = 1`` is MinMax, so the
result is never worse than MinMax on this criterion. Zero point 0.
"""
from __future__ import annotations

import numpy as np

from .base import QMAX, quantize_rows, row_absmax, weight_method

# the search grid: weight distributions are bell-shaped with max/std ~ 3-6, where the MSE
# optimum lies above half the max; a 1/64 step is finer than the error curve's flat minimum
CLIP_MIN = 0.5
CLIP_STEPS = 33
_BLOCK_ELEMS = 1 << 22   # (rows, ratios, K) elements evaluated at once


@weight_method("mse")
def mse(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row clipping ratio minimizing the squared weight error (module docstring)."""
    ratios = np.linspace(CLIP_MIN, 1.0, CLIP_STEPS, dtype=np.float32)
    a = row_absmax(w)
    best = np.empty(len(w), np.float32)
    rows = max(1, _BLOCK_ELEMS // max(1, CLIP_STEPS * w.shape[1]))
    for r0 in range(0, len(w), rows):
        wb = w[r0:r0 + rows, None, :]                                  # (r, 1, K)
        scale = (a[r0:r0 + rows, None] * ratios / np.float32(QMAX)).astype(np.float32)
        diff = quantize_rows(wb, scale[..., None])   # codes, then the error, in place
        diff *= scale[..., None]
        np.subtract(wb, diff, out=diff)
        err = np.square(diff, out=diff).sum(-1)
        best[r0:r0 + rows] = scale[np.arange(len(scale)), np.argmin(err, axis=1)]
    q = quantize_rows(w, best[:, None]).astype(np.int8)
    return q, best, np.zeros(len(best), np.int8)
