"""ASY_MIN_MAX blob scales, TNN ``-b 3`` (spec int8 §6.3)."""
from __future__ import annotations

import numpy as np

from ...exec.int8_math import rhaz
from ..observers import BlobStats
from .base import QMAX, act_method, finish

ASY_LEVELS = np.float32(254)  # [lo, hi] spans 254 steps: hi -> +127, lo -> about -127 (§6.3)


@act_method("asy_minmax", code=3, needs=("range",))
def asy_minmax(stats: BlobStats) -> tuple[np.ndarray, np.ndarray]:
    """``lo = min(0, min)``, ``hi = max(0, max)``, ``scale = f32((hi - lo) / 254)``,
    ``zero_point = 127 - RHAZ(f32(hi · f32(1/scale)))`` (all f32).

    ``hi == lo`` (TNN aborts) only happens for invalid slots, which get scale 0, zp 0.
    Network inputs never use this method (``effective_method``).
    """
    r = stats.range
    lo = np.minimum(np.float32(0), r.min)
    hi = np.maximum(np.float32(0), r.max)
    scale = ((hi - lo) / ASY_LEVELS).astype(np.float32)
    ok = r.valid & (scale > 0)
    inv = np.ones_like(scale)
    np.divide(np.float32(1), scale, out=inv, where=ok)
    zp = QMAX - rhaz((hi * inv).astype(np.float32)).astype(np.int64)
    return finish(scale, zp, ok)
