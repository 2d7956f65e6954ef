"""Weight ADMM, TNN ``-w 1`` (spec int8 §8.4).

TNN runs exactly 1000 alternating steps per slice:
``q = clamp(RHAZ(f32(w / f32(S + eps))), -127, 127)``, then
``S = f32(Σ f32(w·q) / f32(Σ q·q + eps))`` (both sums sequential f32).
Once a step leaves S unchanged the slice is at a fixed point (the next q is the same, hence
the next S), so the remaining steps change nothing: each row stops there, which is exact.
Rows that cycle keep going until step 1000.

The rows are processed transposed, ``(K, rows)``, so that every step is a few vectorized f32
passes and the sequential sums run over the leading axis (``seq_sum``); blocks of rows run on
threads. With numba installed, ``admm_kernel`` runs the same steps compiled, one pass per step
instead of one per operation, to the same bits.
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

from ...parallel import compiled_module, run_blocks
from .base import QMAX, row_absmax, weight_method

ADMM_ITERATIONS = 1000  # TNN's fixed step count, no convergence test (spec int8 §8.4)
ADMM_INIT_DIVISOR = 158.75  # S0 = a / (127 · 1.25), divided in double (spec int8 §8.4)
ADMM_EPS = np.float32(1e-9)  # eps = 1e-9f (spec int8 §8.4)
# trunc(t + copysign(0.49999997f, t)) is RHAZ(t) for every f32 |t| <= 128 in f32 arithmetic
# (checked exhaustively; with 0.5 itself, 0.49999997 would round to 1): no double needed
_HALF_DOWN = np.nextafter(np.float32(0.5), np.float32(0))
_MIN_COLUMNS_FOR_REDUCE = 16  # below this, column reductions are slower than np.cumsum
_ROWS_PER_TASK = 256  # rows are independent: blocks of them run on threads (numpy drops the GIL)


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


def admm_step(w_t: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One TNN ADMM step on transposed rows ``w_t`` (K, n) f32 with scales (n,): returns
    ``(q_t (K, n) f32 integers in [-127, 127], new scale (n,))``."""
    d = (scale + ADMM_EPS).astype(np.float32)
    t = w_t / d
    # clamping before rounding gives clamp(RHAZ(t)) and keeps |t| in the exact range above
    np.clip(t, -QMAX, QMAX, out=t)
    t += np.copysign(_HALF_DOWN, t)
    q_t = np.trunc(t, out=t)
    num = seq_sum(w_t * q_t)
    den = seq_sum(q_t * q_t)
    return q_t, (num / (den + ADMM_EPS)).astype(np.float32)


def _compiled() -> ModuleType | None:
    """The ``admm_kernel`` module with numba (the ``fast`` extra), else None (NumPy, the same
    bits)."""
    return compiled_module(f"{__package__}.admm_kernel")


def _solve_rows(w: np.ndarray, scale: np.ndarray, iterations: int, q: np.ndarray,
                steps: np.ndarray) -> None:
    """``admm_solve`` on a block of rows, writing ``q``, ``scale`` and ``steps`` in place."""
    compiled = _compiled()
    if compiled is not None:
        compiled.solve_rows(np.ascontiguousarray(w), scale, iterations, ADMM_EPS, _HALF_DOWN,
                            np.float32(QMAX), q, steps)
        return
    active = np.arange(len(w))
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


def admm_solve(w: np.ndarray, iterations: int = ADMM_ITERATIONS, threads: int | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(q float32 (O, K), scale (O,), steps (O,))``: TNN's result after ``iterations``
    steps, and per row the step at which it reached its fixed point (``iterations`` for rows
    that never did). Blocks of rows run on ``threads`` threads (default: the usable CPUs)."""
    w = np.asarray(w, np.float32)
    n, k = w.shape
    scale = (row_absmax(w).astype(np.float64) / ADMM_INIT_DIVISOR).astype(np.float32)
    q = np.zeros((n, k), np.float32)
    steps = np.full(n, iterations, np.int64)
    if k == 0 or iterations == 0:
        return q, (scale if k else np.zeros(n, np.float32)), steps
    blocks = [slice(a, a + _ROWS_PER_TASK) for a in range(0, n, _ROWS_PER_TASK)]

    def solve(rows: slice) -> None:
        block_scale = scale[rows].copy()
        _solve_rows(w[rows], block_scale, iterations, q[rows], steps[rows])
        scale[rows] = block_scale

    run_blocks(solve, blocks, threads)
    return q, scale, steps


@weight_method("admm", code=1)
def admm(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ADMM-refined symmetric scale per row; zero point 0 (see module docstring)."""
    q, scale, _ = admm_solve(w)
    return q.astype(np.int8), scale, np.zeros(len(scale), np.int8)
