"""Weight ASY_MIN_MAX, TNN ``-w 3`` (spec int8 §8.5)."""
from __future__ import annotations

import numpy as np

from ...exec.int8_math import rhaz
from .base import QMAX, WeightRangeError, weight_method

ASY_LEVELS = np.float32(254)  # [lo, hi] spans 254 steps (spec int8 §8.5)


@weight_method("asy_minmax", code=3)
def asy_minmax(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``lo = min(0, min)``, ``hi = max(0, max)``, ``S = f32((hi - lo)/254)``,
    ``inv = f32(1/S)``, ``zp = 127 - RHAZ(f32(hi·inv))``,
    ``q = clamp(RHAZ(f32(w·inv)) + zp, -127, 127)``.

    Raises WeightRangeError for all-zero rows (TNN aborts there).
    """
    if w.shape[1] == 0:
        raise WeightRangeError("asymmetric min-max weights: empty weight rows")
    lo = np.minimum(np.float32(0), w.min(axis=1))
    hi = np.maximum(np.float32(0), w.max(axis=1))
    zero = np.nonzero(hi == lo)[0]
    if len(zero):
        rows = ", ".join(map(str, zero[:8])) + (", ..." if len(zero) > 8 else "")
        raise WeightRangeError(f"asymmetric min-max weights: output channel(s) {rows} are all "
                               f"zero, TNN aborts on them (use another weight method)")
    scale = ((hi - lo) / ASY_LEVELS).astype(np.float32)
    inv = (np.float32(1) / scale).astype(np.float32)
    zp = QMAX - rhaz((hi * inv).astype(np.float32)).astype(np.int64)
    q = rhaz((w * inv[:, None]).astype(np.float32)).astype(np.int64) + zp[:, None]
    return np.clip(q, -QMAX, QMAX).astype(np.int8), scale, zp.astype(np.int8)
