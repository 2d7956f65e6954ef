"""Straightforward reference of TNN's KL threshold search (spec int8 §6.2), for tests and the
benchmark: TNN's loop over all 1920 candidates, each scored in f32 in TNN's order
(``kl_candidate_f32``: sequential f32 sums, glibc's ``logf`` ported to NumPy and checked
against ``ctypes`` logf in test_methods.py).

Independent of the vectorized float64 search of tnnquant/calib/methods/kl.py, which the tests
check against it.
"""
from __future__ import annotations

import numpy as np

from tnnquant.calib.methods.kl import kl_candidate_f32
from tnnquant.exec.naive_math import logf as glibc_logf

F32 = np.float32

__all__ = ["glibc_logf", "kl_curve_reference", "kl_threshold_reference"]


def kl_curve_reference(h: np.ndarray) -> np.ndarray:
    """TNN's KL value (f32) for every candidate i = 128 … 2047 of one (2048,) f32 histogram."""
    h = np.asarray(h, F32)
    s = np.cumsum(h, dtype=F32)[-1]  # step 1, sequential
    p = (h / s).astype(F32)
    tail = np.cumsum(p[128:], dtype=F32)[-1]  # step 2
    out = np.empty(1920, F32)
    for i in range(128, 2048):
        ref_last = F32(p[i - 1] + tail)  # 3.1 with TNN's running tail
        tail = F32(tail - p[i])
        out[i - 128] = kl_candidate_f32(p, i, ref_last)
    return out


def kl_threshold_reference(h: np.ndarray) -> int:
    """TNN's chosen threshold: the first strict minimum, starting from best = 1e6f, T = 128."""
    kl = kl_curve_reference(h)
    best, t = F32(1e6), 128
    for i, v in enumerate(kl):
        if v < best:  # NaN never wins
            best, t = v, i + 128
    return t
