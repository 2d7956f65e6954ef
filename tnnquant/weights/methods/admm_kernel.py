"""TNN's weight ADMM (``admm.py``) compiled with numba (``pip install tnnquant[fast]``): the
same float32 operations in the same order on the same transposed block (every step one loop
over the block, vectorized across rows; finished rows leave the block), so the codes, scales
and step counts are bit-identical to the NumPy version's (``tests/weights/test_admm_kernel.py``
compares them)."""
from __future__ import annotations

import numpy as np
from numba import njit

_F32 = np.float32


@njit(nogil=True, cache=True, error_model="numpy")
def solve_rows(w: np.ndarray, scale: np.ndarray, iterations: int, eps: np.float32,
               half_down: np.float32, qmax: np.float32, q: np.ndarray, steps: np.ndarray
               ) -> None:
    """``admm._solve_rows`` for float32 rows ``w`` (n, K): writes ``q`` (n, K), ``scale``
    (n,) (in: the start scales) and ``steps`` (n,) in place."""
    n, k_len = w.shape
    w_t = np.ascontiguousarray(w.T)  # (K, rows still active)
    codes = np.empty((k_len, n), np.float32)
    rows = np.arange(n)
    s = scale.copy()
    d = np.empty(n, np.float32)
    num = np.empty(n, np.float32)
    den = np.empty(n, np.float32)
    active = n
    for step in range(1, iterations + 1):
        for r in range(active):
            d[r] = _F32(s[r] + eps)
            num[r] = 0.0
            den[r] = 0.0
        for k in range(k_len):
            for r in range(active):
                t = _F32(w_t[k, r] / d[r])
                t = np.minimum(np.maximum(t, -qmax), qmax)  # np.clip's NaN; clamped first:
                code = np.trunc(_F32(t + np.copysign(half_down, t)))  # RHAZ exact (admm.py)
                codes[k, r] = code
                num[r] = _F32(num[r] + _F32(w_t[k, r] * code))
                den[r] = _F32(den[r] + _F32(code * code))
        kept = 0
        for r in range(active):
            s_new = _F32(num[r] / _F32(den[r] + eps))
            fixed = s_new == s[r]  # every later step repeats this one
            if fixed or step == iterations:
                q[rows[r], :] = codes[:, r]
                scale[rows[r]] = s_new
                if fixed:
                    steps[rows[r]] = step
            else:  # compact: row r moves to column `kept` (kept <= r)
                if kept != r:
                    rows[kept] = rows[r]
                    w_t[:, kept] = w_t[:, r]
                s[kept] = s_new
                kept += 1
        if kept == 0:
            break
        active = kept
