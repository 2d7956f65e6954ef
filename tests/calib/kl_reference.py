"""Straightforward reference of TNN's KL threshold search (spec int8 §6.2), for tests and the
benchmark: TNN's loop over candidates, f32 arithmetic in TNN's order, sequential f32 sums
(``np.cumsum`` accumulates left to right) and glibc's ``logf`` (a NumPy port of glibc's
``e_logf.c``, checked against ``ctypes`` logf in test_methods.py).

Deliberately independent of tnnquant/calib/methods/kl.py; only vectorized *within* one
candidate where that keeps TNN's order of f32 operations.
"""
from __future__ import annotations

import numpy as np

F32 = np.float32

# glibc sysdeps/ieee754/flt-32/e_logf_data.c (table bits 4, polynomial order 4)
_LOGF_TAB = np.array([[float.fromhex(a), float.fromhex(b)] for a, b in [
    ("0x1.661ec79f8f3bep+0", "-0x1.57bf7808caadep-2"),
    ("0x1.571ed4aaf883dp+0", "-0x1.2bef0a7c06ddbp-2"),
    ("0x1.49539f0f010bp+0", "-0x1.01eae7f513a67p-2"),
    ("0x1.3c995b0b80385p+0", "-0x1.b31d8a68224e9p-3"),
    ("0x1.30d190c8864a5p+0", "-0x1.6574f0ac07758p-3"),
    ("0x1.25e227b0b8eap+0", "-0x1.1aa2bc79c81p-3"),
    ("0x1.1bb4a4a1a343fp+0", "-0x1.a4e76ce8c0e5ep-4"),
    ("0x1.12358f08ae5bap+0", "-0x1.1973c5a611cccp-4"),
    ("0x1.0953f419900a7p+0", "-0x1.252f438e10c1ep-5"),
    ("0x1p+0", "0x0p+0"),
    ("0x1.e608cfd9a47acp-1", "0x1.aa5aa5df25984p-5"),
    ("0x1.ca4b31f026aap-1", "0x1.c5e53aa362eb4p-4"),
    ("0x1.b2036576afce6p-1", "0x1.526e57720db08p-3"),
    ("0x1.9c2d163a1aa2dp-1", "0x1.bc2860d22477p-3"),
    ("0x1.886e6037841edp-1", "0x1.1058bc8a07ee1p-2"),
    ("0x1.767dcf5534862p-1", "0x1.4043057b6ee09p-2"),
]])
_LN2 = float.fromhex("0x1.62e42fefa39efp-1")
_A0, _A1, _A2 = (float.fromhex(v) for v in
                 ("-0x1.00ea348b88334p-2", "0x1.5575b0be00b6ap-2", "-0x1.ffffef20a4123p-2"))


def glibc_logf(x: np.ndarray) -> np.ndarray:
    """glibc's logf on a float32 array (positive normal/subnormal inputs; others -> NaN).

    Evaluated without FMA contraction; glibc's FMA variant differs only when the double
    result lies within an ulp of a float32 rounding boundary (~1e-8 of inputs).
    """
    x = np.asarray(x, F32)
    ix = x.view(np.uint32).astype(np.int64)
    finite_pos = (ix > 0) & (ix < 0x7F800000)
    one = ix == 0x3F800000
    sub = (ix > 0) & (ix < 0x00800000)
    if sub.any():  # subnormal: normalise
        ix[sub] = (x[sub] * F32(2.0 ** 23)).view(np.uint32).astype(np.int64) - (23 << 23)
    tmp = (ix - 0x3F330000) & 0xFFFFFFFF
    i = (tmp >> 19) % 16
    k = tmp.astype(np.uint32).view(np.int32).astype(np.int64) >> 23
    iz = (ix - (tmp & 0xFF800000)) & 0xFFFFFFFF
    z = iz.astype(np.uint32).view(F32).astype(np.float64)
    invc, logc = _LOGF_TAB[i, 0], _LOGF_TAB[i, 1]
    r = z * invc - 1
    y0 = logc + k * _LN2
    r2 = r * r
    y = _A1 * r + _A2
    y = _A0 * r2 + y
    y = y * r2 + (y0 + r)
    out = y.astype(F32)
    out[one] = 0
    out[~finite_pos] = np.nan
    return out


def kl_curve_reference(h: np.ndarray) -> np.ndarray:
    """TNN's KL value (f32) for every candidate i = 128 … 2047 of one (2048,) f32 histogram."""
    h = np.asarray(h, F32)
    s = np.cumsum(h, dtype=F32)[-1]  # step 1, sequential
    p = (h / s).astype(F32)
    tail = np.cumsum(p[128:], dtype=F32)[-1]  # step 2
    out = np.empty(1920, F32)
    j = np.arange(128)
    for i in range(128, 2048):
        ref = p[:i].copy()  # 3.1
        ref[i - 1] = F32(ref[i - 1] + tail)
        tail = F32(tail - p[i])
        w = F32(i / 128)  # 3.2
        st = (j * w).astype(F32)
        en = (st + w).astype(F32)
        lu = np.ceil(st).astype(np.int64)
        rl = np.floor(en).astype(np.int64)
        left_f = (lu - st).astype(F32)
        right_f = (en - rl).astype(F32)
        has_l = lu > st
        has_r = rl < en
        left = np.where(has_l, (left_f * p[np.maximum(lu - 1, 0)]).astype(F32), F32(0))
        right = np.where(has_r, (right_f * p[np.minimum(rl, 2047)]).astype(F32), F32(0))
        q0 = (F32(0) + left).astype(F32)
        q0 = (q0 + right).astype(F32)
        n_in = rl - lu
        width = int(n_in.max()) + 1
        mat = np.zeros((128, width), F32)
        mat[:, 0] = q0
        cols = np.arange(1, width)[None, :]
        inside = cols <= n_in[:, None]
        idx = np.where(inside, lu[:, None] + cols - 1, 0)
        mat[:, 1:] = np.where(inside, p[idx], F32(0))
        q = np.cumsum(mat, axis=1, dtype=F32)[:, -1]  # left, right, then p[lu..rl-1] in order
        u = (q / w).astype(F32)  # 3.3: cnt == w exactly
        e = np.zeros(i, F32)
        owner = np.repeat(j, n_in)  # interior fine bins: e[k] = 0 + u_j
        e[np.concatenate([np.arange(a, b) for a, b in zip(lu, rl)])] = u[owner]
        # split fine bin under a non-integer boundary: first bin j's right part, then bin j+1's left
        e_r = np.where(has_r, (u * right_f).astype(F32), F32(0))
        e_l = np.where(has_l, (u * left_f).astype(F32), F32(0))
        split = np.nonzero(has_r[:-1])[0]
        e[rl[split]] = (e_r[split] + e_l[split + 1]).astype(F32)
        # 3.4: sequential f32 sum of ref·logf(ref/e); ref == 0 terms skipped
        ratio = (ref / e).astype(F32)
        with np.errstate(invalid="ignore"):
            terms = (ref * glibc_logf(ratio)).astype(F32)
        terms[ref == 0] = 0
        out[i - 128] = np.cumsum(terms, dtype=F32)[-1]
    return out


def kl_threshold_reference(h: np.ndarray) -> int:
    """TNN's chosen threshold: the first strict minimum, starting from best = 1e6f, T = 128."""
    kl = kl_curve_reference(h)
    best, t = F32(1e6), 128
    for i, v in enumerate(kl):
        if v < best:  # NaN never wins
            best, t = v, i + 128
    return t
