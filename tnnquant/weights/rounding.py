"""Rounding used by the quantization tool (spec int8 §0).

C's ``roundf``/``round`` round half away from zero (RHAZ); ``numpy.round`` and Python's
``round`` round half to even and must not be used for TNN numerics.
"""
from __future__ import annotations

import numpy as np


def rhaz(x: np.ndarray) -> np.ndarray:
    """Exact round-half-away-from-zero of every element, in the input's float dtype.

    ``x - trunc(x)`` is exact for any float, so ties are detected exactly:
    ``rhaz(2.5) == 3``, ``rhaz(-2.5) == -3``, ``rhaz(0.49999997f) == 0``.
    """
    x = np.asarray(x)
    t = np.trunc(x)
    return t + np.where(np.abs(x - t) >= 0.5, np.sign(x), 0).astype(x.dtype)
