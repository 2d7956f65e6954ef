"""Weight ADMM, TNN ``-w 1`` (spec int8 §8.4).

TNN runs exactly 1000 alternating steps per slice:
``q = clamp(RHAZ(f32(w / f32(S + eps))), -127, 127)``, then
``S = f32(Σ f32(w·q) / f32(Σ q·q + eps))`` (both sums sequential f32).
Once a step leaves S unchanged the slice is at a fixed point (the next q is the same, hence
the next S), so the remaining steps change nothing: each row stops there, which is exact.
Rows that cycle keep going until step 1000.

The rows are processed transposed, ``(K, rows)``, so that every step is a few vectorized
passes and the sequential sums run over the leading axis (``seq_sum``).
"""
from __future__ import annotations

import numpy as np

from .base import QMAX, row_absmax, weight_method

ADMM_ITERATIONS = 1000  # TNN's fixed step count, no convergence test (spec int8 §8.4)
ADMM_INIT_DIVISOR = 158.75  # S0 = a / (127 · 1.25), divided in double (spec int8 §8.4)
ADMM_EPS = np.float32(1e-9)  # eps = 1e-9f (spec int8 §8.4)
_MIN_COLUMNS_FOR_REDUCE = 16  # below this, column reductions are slower than np.cumsum


def seq_sum(x: np.ndarray) -> np.ndarray:
    """Strictly sequential f32 sums over axis 0 of a C-contiguous (K, n) array (TNN's
    left-to-right loop). NumPy reduces a non-contiguous axis one row after another; with a
    single column it would sum pairwise, so narrow arrays go through ``np.cumsum``.
    (tests/weights/test_weight_methods.py checks both paths against a Python loop.)"""
    if len(x) == 0:
        return np.zeros(x.shape[1], np.float32)
    if x.shape[1] >= _MIN_COLUMNS_FOR_REDUCE:
        return np.add.reduce(x, axis=0, dtype=np.float32)
    return np.cumsum(x, axis=0, dtype=np.float32)[-1]


def _rhaz_clamp(t: np.ndarray) -> np.ndarray:
    """clamp(RHAZ(t), -127, 127) for f32 ``t``, as f32 integers (t + ±0.5 is exact in f64)."""
    t64 = t.astype(np.float64)
    t64 += np.copysign(0.5, t64)
    np.trunc(t64, out=t64)
    np.clip(t64, -QMAX, QMAX, out=t64)
    return t64.astype(np.float32)


def admm_step(w_t: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One TNN ADMM step on transposed rows ``w_t`` (K, n) f32 with scales (n,): returns
    ``(q_t (K, n) f32 integers in [-127, 127], new scale (n,))``."""
    d = (scale + ADMM_EPS).astype(np.float32)
    q_t = _rhaz_clamp(w_t / d)
    num = seq_sum(w_t * q_t)
    den = seq_sum(q_t * q_t)
    return q_t, (num / (den + ADMM_EPS)).astype(np.float32)


def admm_solve(w: np.ndarray, iterations: int = ADMM_ITERATIONS
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(q float32 (O, K), scale (O,), steps (O,))``: TNN's result after ``iterations``
    steps, and per row the step at which it reached its fixed point (``iterations`` for rows
    that never did)."""
    w = np.asarray(w, np.float32)
    n, k = w.shape
    scale = (row_absmax(w).astype(np.float64) / ADMM_INIT_DIVISOR).astype(np.float32)
    q = np.zeros((n, k), np.float32)
    steps = np.full(n, iterations, np.int64)
    if k == 0 or iterations == 0:
        return q, (scale if k else np.zeros(n, np.float32)), steps
    active = np.arange(n)
    w_t = np.ascontiguousarray(w.T)
    s_act = scale.copy()
    for step in range(1, iterations + 1):
        q_t, s_new = admm_step(w_t, s_act)
        fixed = s_new == s_act  # bitwise: every later step repeats this one
        done = fixed if step < iterations else np.ones(len(active), bool)
        if done.any():
            rows = active[done]
            q[rows] = q_t[:, done].T
            scale[rows] = s_new[done]
            steps[active[fixed]] = step
            keep = ~done
            if not keep.any():
                break
            active, w_t, s_new = active[keep], np.ascontiguousarray(w_t[:, keep]), s_new[keep]
        s_act = s_new
    return q, scale, steps


@weight_method("admm", code=1)
def admm(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ADMM-refined symmetric scale per row; zero point 0 (see module docstring)."""
    q, scale, _ = admm_solve(w)
    return q.astype(np.int8), scale, np.zeros(len(scale), np.int8)
