"""The KL search's inner loop compiled with numba (``pip install tnnquant[fast]``): a screen.

For a channel and a candidate threshold ``i`` it computes what ``kl._cross`` computes, the
cross term ``Σ_j M_j log q_j + Σ_k p_k log(w·e_k)`` of ``KL_i``, in one pass over the 128
target bins held in cache: the bin masses from the prefix sums in float64 (their differences
need it), the logs in float32 (eight lanes and a short polynomial instead of libm's scalar
float64 log, which is most of the NumPy search's time on CPUs without AVX-512). With each value
comes a bound on its error, so ``kl._search`` keeps exactly the candidates that may reach the
minimum and evaluates only those in float64: the thresholds are those of the float64 search.

Error bound (``SCREEN_ERR``): a log term ``w·L`` with ``L = logf(f32(v))`` differs from
``w·log v`` by at most ``|w|·(|L| + 1)·SCREEN_ERR``: the float32 rounding of v moves its log by
<= 2^-24, and ``_logf`` errs by <= ~3·2^-24·|L| + 2^-25 (its series is cut where the next
term is below 2^-28 of the result; the rest is float32 rounding of ~6 operations);
``SCREEN_ERR = 2^-20`` leaves a margin of 4 or more (``tests/calib/test_kl_screen.py`` measures
the error). Sums run in float64. A bin mass that is not a normal positive float32 makes
the value NaN, so that candidate is evaluated in float64.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

SCREEN_ERR = 2.0 ** -20

_BINS = 128  # target bins (kl.KL_TARGET_BINS)
_FIRST = 128  # candidate i = row + 128 (kl.KL_FIRST)
_F32 = np.float32
_MANTISSA = np.int32(0x007FFFFF)
_EXP_ONE = np.int32(0x3F800000)  # the bits of 1.0f: a mantissa in [1, 2)
_MIN_NORMAL = np.int32(0x00800000)
_INF = np.int32(0x7F800000)
_SQRT2 = _F32(math.sqrt(2.0))
_LN2 = _F32(math.log(2.0))
# log m = 2s·(1 + s²/3 + s⁴/5 + s⁶/7 + s⁸/9 + …), s = (m-1)/(m+1), |s| <= 0.1716 for
# m in [1/√2, √2]: the next term, s¹⁰/11, is below 2^-28 of the sum
_C3, _C5, _C7, _C9 = _F32(1 / 3), _F32(1 / 5), _F32(1 / 7), _F32(1 / 9)
_ONE, _HALF, _TWO = _F32(1.0), _F32(0.5), _F32(2.0)

# error_model "numpy": no Python division checks, so the loops vectorize
_JIT = dict(nogil=True, cache=True, error_model="numpy")


@njit(fastmath={"contract"}, **_JIT)  # fused multiply-adds: no less accurate
def _logf(x: np.ndarray, scratch: np.ndarray) -> int:
    """Natural log of float32 ``x`` in place; returns how many were not normal positive
    floats (their results are meaningless). ``scratch``: int32, len(x)."""
    bits = x.view(np.int32)
    bad = 0
    for k in range(x.shape[0]):
        b = bits[k]
        bad += (b < _MIN_NORMAL) | (b >= _INF)
        scratch[k] = (b & _MANTISSA) | _EXP_ONE
    mantissa = scratch.view(np.float32)
    for k in range(x.shape[0]):
        e = _F32((bits[k] >> 23) - 127)
        m = mantissa[k]
        big = m > _SQRT2
        m = m * _HALF if big else m
        e = e + _ONE if big else e
        s = (m - _ONE) / (m + _ONE)
        z = s * s
        x[k] = e * _LN2 + _TWO * s * (_ONE + z * (_C3 + z * (_C5 + z * (_C7 + z * _C9))))
    return bad


@njit(**_JIT)
def _screen_one(prefix: np.ndarray, p: np.ndarray, q_last: float, i: int, weights: np.ndarray,
                logs: np.ndarray, scratch: np.ndarray) -> tuple:
    """(cross term, error bound) of candidate ``i`` for one channel; the rest are buffers:
    ``weights[j]``, ``logs[j]`` = M_j, q_j and ``weights[128 + j]``, ``logs[128 + j]`` = the
    split fine bin at the end of bin j (p_k, w·e_k; 0 and 1 where there is none)."""
    g_before = 0.0  # F(en_{j-1}): the mass below the start of bin j
    pr_before = 0.0  # P[rl_{j-1}]
    ps_before = 0.0  # p of the fine bin split at the end of bin j-1, or 0
    q_before = 0.0
    fr_before = 0.0
    # t = 128·en_j = (j+1)·i: bin j ends in fine bin t >> 7, (t & 127)/128 of the way in
    # (unsigned, so that indexing needs no negative-index check)
    t = np.uint64(i)
    for j in range(_BINS):
        k = t >> np.uint64(7)
        rem = t & np.uint64(_BINS - 1)
        t += np.uint64(i)
        fr = np.float64(rem) * (1.0 / _BINS)
        pr = prefix[k]
        ps = p[k] * np.float64(rem > 0)  # no split fine bin when the boundary is an integer
        g = pr + fr * ps  # F(en_j)
        q = g - g_before if j < _BINS - 1 else q_last
        weights[j] = (pr - pr_before) - ps_before  # M_j, the fine bins wholly inside bin j
        weights[_BINS + j] = ps
        logs[j] = q
        if j > 0:  # w·e of the fine bin split at the end of bin j-1
            logs[_BINS + j - 1] = q + fr_before * (q_before - q)
        g_before, pr_before, ps_before, q_before, fr_before = g, pr, ps, q, fr
    logs[2 * _BINS - 1] = 1.0
    if _logf(logs, scratch):
        return np.nan, np.inf
    return _sums(weights, logs)


@njit(fastmath={"reassoc", "contract"}, **_JIT)  # any summation order: it vectorizes
def _sums(weights: np.ndarray, logs: np.ndarray) -> tuple:
    """``Σ w·L`` and its error bound ``Σ |w|·(|L| + 1)·SCREEN_ERR``, in float64."""
    total = 0.0
    bound = 0.0
    for k in range(weights.shape[0]):
        w = weights[k]
        log = np.float64(logs[k])
        total += w * log
        bound += abs(w) * (abs(log) + 1.0)
    return total, bound * SCREEN_ERR


@njit(**_JIT)
def screen(prefix: np.ndarray, p: np.ndarray, q_last: np.ndarray, first: np.ndarray,
           rows: np.ndarray, cross: np.ndarray, err: np.ndarray) -> None:
    """Fill ``cross[c, r]`` and ``err[c, r]`` for every channel c and every candidate row r
    (0 … 1919) in ``rows`` at or after ``first[c]``; others are left as they are.

    ``prefix``, ``p``: (C, 2049) float64 (``kl._Tables``), ``q_last``: (C, 1920)."""
    weights = np.empty(2 * _BINS)
    logs = np.empty(2 * _BINS, np.float32)
    scratch = np.empty(2 * _BINS, np.int32)
    for c in range(prefix.shape[0]):
        for r in rows:
            if r >= first[c]:
                cross[c, r], err[c, r] = _screen_one(prefix[c], p[c], q_last[c, r], r + _FIRST,
                                                    weights, logs, scratch)


@njit(**_JIT)
def last_bin_mass(p: np.ndarray, last_left: np.ndarray, last_fl: np.ndarray, out: np.ndarray
                  ) -> None:
    """``kl._tables``' mass of bin 127 for every candidate, (C, 1920) into ``out`` (zeros):
    candidate i (width L = i // 128) holds p[i-L … i-1] whole, summed in that order from 0,
    plus ``last_fl·p[last_left]``, the split fine bin below it, as NumPy's loop adds them."""
    for c in range(p.shape[0]):
        for r in range(out.shape[1]):
            i = r + _FIRST
            total = out[c, r]
            for k in range(i - i // _BINS, i):
                total += p[c, k]
            out[c, r] = total + last_fl[r] * p[c, last_left[r]]
