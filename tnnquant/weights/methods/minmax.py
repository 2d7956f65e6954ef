"""Weight MIN_MAX, TNN ``-w 0`` (spec int8 §8.3)."""
from __future__ import annotations

import numpy as np

from ...exec.int8_math import rhaz
from .base import QMAX, row_absmax, weight_method


@weight_method("minmax", code=0)
def minmax(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``S = f32(a/127)``, ``inv = f32(1/S)`` (1 if a == 0),
    ``q = clamp(RHAZ(f32(w·inv)), -127, 127)``; zero point 0. An all-zero row gets S = 0."""
    a = row_absmax(w)
    scale = (a / np.float32(QMAX)).astype(np.float32)
    inv = np.ones_like(scale)
    # a subnormal row maximum overflows 1/S to inf, as in TNN's f32 arithmetic: its weights
    # saturate to ±127, and its zeros (0·inf, undefined in TNN's C cast) stay 0
    with np.errstate(over="ignore", invalid="ignore"):
        np.divide(np.float32(1), scale, out=inv, where=a != 0)
        scaled = np.where(w == 0, np.float32(0), w * inv[:, None]).astype(np.float32)
    # clamping to ±(QMAX + 1) first changes no code and keeps inf out of the rounding
    q = np.clip(rhaz(np.clip(scaled, -QMAX - 1, QMAX + 1)), -QMAX, QMAX).astype(np.int8)
    return q, scale, np.zeros(len(scale), np.int8)
