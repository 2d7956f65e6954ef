"""ACIQ blob scales, TNN ``-b 4`` (Gaussian) and ``-b 5`` (Laplace) (spec int8 §6.4–6.5).

The clipping constants are TNN's 8-bit entries, used exactly as written there.
"""
from __future__ import annotations

import math

import numpy as np

from ..observers import BlobStats
from .base import QMAX, act_method, finish

GAUSS_ALPHA = np.float32(3.92403714)  # 8-bit Gaussian clipping factor, an f32 literal (§6.4)
LAPLACE_ALPHA = np.float32(9.89675982)  # 8-bit Laplace clipping factor, an f32 literal (§6.5)
PI = 3.14159265358979323846  # TNN's double π (§6.4)
# g = (0.5 · 0.35) · (1 + sqrt(π · ln 4)), in double exactly as written (§6.4)
GAUSS_G = (0.5 * 0.35) * (1 + math.sqrt(PI * math.log(4)))


@act_method("aciq_gauss", code=4, needs=("range",))
def aciq_gauss(stats: BlobStats) -> tuple[np.ndarray, np.ndarray]:
    """``std = f64(f64(f32(m·2) · g) / sqrt(2·ln N))``, ``alpha = f32(3.92403714f · std)``,
    ``scale = f32(alpha / 127)``; ``m`` = max-abs, ``N`` = H·W (C·H·W when merged).

    N == 1 divides by zero as in TNN (infinite scale); the H·W < 100 fallback to MIN_MAX
    (``effective_method``) keeps that from happening. Zero point 0.
    """
    r = stats.range
    m2 = (r.absmax * np.float32(2)).astype(np.float32).astype(np.float64)
    with np.errstate(divide="ignore"):
        std = (m2 * GAUSS_G) / np.sqrt(2 * np.log(np.float64(r.numel)))
    alpha = (np.float64(GAUSS_ALPHA) * std).astype(np.float32)
    return finish((alpha / np.float32(QMAX)).astype(np.float32), 0, r.valid)


@act_method("aciq_laplace", code=5, needs=("range", "aciq_means"))
def aciq_laplace(stats: BlobStats) -> tuple[np.ndarray, np.ndarray]:
    """``alpha = f32(9.89675982f · meanabs)``, ``scale = f32(alpha / 127)``. Zero point 0."""
    alpha = (LAPLACE_ALPHA * stats.aciq_means.meanabs).astype(np.float32)
    return finish((alpha / np.float32(QMAX)).astype(np.float32), 0, stats.range.valid)
