"""Weight MIN_MAX, TNN ``-w 0`` (spec int8 §8.3)."""
from __future__ import annotations

import numpy as np

from .base import QMAX, quantize_rows, row_absmax, weight_method


@weight_method("minmax", code=0)
def minmax(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``S = f32(a/127)``, ``inv = f32(1/S)`` (1 if a == 0),
    ``q = clamp(RHAZ(f32(w·inv)), -127, 127)``; zero point 0. An all-zero row gets S = 0 and
    codes 0 (TNN's inv 1 changes nothing there)."""
    a = row_absmax(w)
    scale = (a / np.float32(QMAX)).astype(np.float32)
    q = quantize_rows(w, scale[:, None]).astype(np.int8)
    return q, scale, np.zeros(len(scale), np.int8)
