"""KL_DIVERGENCE blob scales, TNN ``-b 2`` (spec int8 §6.2), in O(128) per candidate threshold.

TNN tries every threshold ``i = 128 … 2047`` (in bins) and, for each, builds the clipped
reference ``ref`` (bins below i, the tail mass added to ``ref[i-1]``), quantizes ``p[0:i]``
into 128 bins of width ``w = i/128``, expands them back and sums
``KL_i = Σ_k ref[k]·log(ref[k]/e[k])`` over k < i: O(i) per candidate, ~30 ms per channel.

Here ``KL_i`` is evaluated exactly (in float64) with prefix sums, O(128) per candidate:

* ``F(x) = P[⌊x⌋] + frac(x)·p[⌊x⌋]`` (P = prefix sums of p) is the mass below x, so bin j
  holds ``q_j = F(en_j) - F(st_j)`` and expands to ``u_j = q_j / w`` on every unit interval
  fully inside it. Because ``w >= 1``, a unit interval touches at most two bins: the fine
  bin ``k = ⌊b⌋`` under a non-integer boundary ``b = en_j`` gets
  ``e_k = fr·u_j + (1-fr)·u_{j+1}`` with ``fr = b - k``.
* ``Σ_k ref log ref`` = prefix sum of ``p log p`` up to ``i-1`` plus ``r log r`` for
  ``r = ref[i-1]``.
* ``Σ_k ref log e`` = ``Σ_j M_j log u_j`` (M_j = mass of the fine bins fully inside bin j)
  + one term ``p_k log e_k`` per split boundary + ``(r - p[i-1])·log u_127`` (the tail).

All (i, j)-only index and fraction arrays are built once (``_plan``); per channel the work
is two gathers, two logs and ~12 arithmetic passes per (candidate, bin), vectorized over
candidates and channels. ``kl_thresholds`` also skips candidates that provably lose
(``_search``: a cheap lower bound against the best of a few exactly evaluated candidates),
about half of them on real activations, and runs groups of channels on threads.

With numba installed (``pip install tnnquant[fast]``), the surviving candidates are first
screened by a compiled loop (``kl_screen``: float32 logs, a bound on their error) and only
those that may reach the minimum are evaluated in float64 (``_screened``): the same
thresholds, ~4× faster where NumPy's float64 log is scalar (CPUs without AVX-512).

The inputs TNN feeds its loop are reproduced bit-exactly in f32: ``p = f32(h/S)``
(sequential S) and ``r = f32(p[i-1] + tail)`` with TNN's *running* f32 tail
(``tail -= p[i]``), whose rounding drift decides candidates in sparse tails (a negative
``r`` makes TNN's KL NaN, so that candidate is never chosen). TNN's own f32 rounding noise in
q, e, logf and the sequential sum (~5e-6 relative) decides between candidates whose KL agree to
f32 precision (1-2 channels of a real model): by default the float64 value decides them;
``exact=True`` re-scores them in TNN's f32 arithmetic (``kl_candidate_f32``), which makes the
thresholds TNN's on every channel of the shared models. Exact f32 ties (identical f32 KL for
many candidates, e.g. all values in one bin) are resolved like TNN, to the first.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

import numpy as np

from ...exec.naive_math import logf
from ...parallel import compiled_module, run_blocks, usable_cpus
from ..observers import HIST_BINS, BlobStats
from .base import act_method, finish, threshold_scale

KL_TARGET_BINS = 128  # the candidate distribution is squeezed into 128 bins (spec int8 §6.2)
KL_FIRST = KL_TARGET_BINS  # candidate thresholds i = 128 … 2047 bins (spec int8 §6.2 step 3)
N_CANDIDATES = HIST_BINS - KL_FIRST  # 1920
KL_INIT_BEST = 1e6  # TNN's best KL starts at 1e6f, T at 128 (spec int8 §6.2 step 2)

_BLOCK_ELEMS = 1 << 16  # (channel, candidate, bin) elements per vectorized block
_CHANNELS_PER_BLOCK = 8  # channels evaluated together in one vectorized block
_PAIRS_PER_BLOCK = 1024  # (channel, candidate) pairs evaluated together after the screen
_CHANNELS_PER_TASK = 64  # channels per search group / thread task (~12 MB of scratch each)
_SEED_STRIDE = 32  # exact KL at every 32nd candidate bounds each channel's minimum
_TIE_RTOL = 1e-8  # KL this close to the minimum ties; TNN keeps the first (_first_min)
_PRUNE_MARGIN = 1e-7  # relative slack of the pruning bound, > _TIE_RTOL so no tie is skipped
# exact mode re-scores in TNN's f32 arithmetic every candidate this close (relative) to the
# float64 minimum: TNN's f32 KL is a sequential sum of <= 2047 terms, whose rounding error is
# ~1e-6 relative in practice (below 1e-5 on every real channel we checked)
F32_TIE_RTOL = 1e-5


def _rowdot(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``Σ a·b`` over the last axis: ``np.vecdot`` (numpy >= 2, the faster), else einsum."""
    if hasattr(np, "vecdot"):
        return np.vecdot(a, b, out=out)
    return np.einsum("...i,...i->...", a, b, out=out)


@dataclass(frozen=True)
class _Plan:
    """(candidate, bin)-only arrays, shared by every histogram."""

    rl: np.ndarray  # (1920, 128) floor(en_j): P is read here
    rl_flat: np.ndarray  # views of the same three arrays, raveled
    rl_split_flat: np.ndarray
    fr_flat: np.ndarray
    rl_split: np.ndarray  # (1920, 128) floor(en_j) where en_j is not an integer, else 2048
    fr: np.ndarray  # (1920, 128) en_j - floor(en_j), float64 (multiples of 1/128)
    log_w: np.ndarray  # (1920,) log(i/128)
    w: np.ndarray  # (1920,) i/128
    last_left: np.ndarray  # (1920,) ceil(st_127) - 1: the split bin below bin 127
    last_fl: np.ndarray  # (1920,) ceil(st_127) - st_127


@functools.lru_cache(maxsize=1)
def _plan() -> _Plan:
    i = np.arange(KL_FIRST, HIST_BINS)[:, None]
    j = np.arange(KL_TARGET_BINS)[None, :]
    en128 = (j + 1) * i  # 128·en_j, exact integers
    rl = en128 // KL_TARGET_BINS
    rem = en128 % KL_TARGET_BINS
    fr = rem / float(KL_TARGET_BINS)
    rl_split = np.where(rem > 0, rl, HIST_BINS)
    i1 = i[:, 0]
    st128 = (KL_TARGET_BINS - 1) * i1  # 128·st_127
    lu = -(-st128 // KL_TARGET_BINS)  # ceil(st_127)
    w = i1 / float(KL_TARGET_BINS)
    rl, rl_split = rl.astype(np.intp), rl_split.astype(np.intp)
    plan = _Plan(rl=rl, rl_flat=rl.reshape(-1), rl_split_flat=rl_split.reshape(-1),
                 fr_flat=fr.reshape(-1), rl_split=rl_split, fr=fr, log_w=np.log(w), w=w,
                 last_left=(lu - 1).astype(np.intp),
                 last_fl=(lu * KL_TARGET_BINS - st128) / float(KL_TARGET_BINS))
    for a in plan.__dict__.values():
        a.setflags(write=False)
    return plan


def _normalise(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TNN's f32 inputs to the loop: ``p = f32(h/S)`` and ``ref[i-1]`` for every candidate."""
    h = np.asarray(hist, np.float32)
    # the running sums' last columns are copied out, so that the sums themselves are freed
    s = np.cumsum(h, axis=1, dtype=np.float32)[:, -1:].copy()  # sequential f32 sum (step 1)
    p32 = h / s
    tail0 = np.cumsum(p32[:, KL_FIRST:], axis=1, dtype=np.float32)[:, -1:].copy()  # step 2
    ref_last = np.concatenate([tail0, -p32[:, KL_FIRST:HIST_BINS - 1]], axis=1)
    np.cumsum(ref_last, axis=1, out=ref_last)  # the tail before candidate i (step 3.1)
    ref_last += p32[:, KL_FIRST - 1:HIST_BINS - 1]  # f32(ref[i-1] + tail)
    return p32, ref_last


@dataclass
class _Tables:
    """Per-channel tables of a few histograms (float64 unless noted)."""

    p: np.ndarray  # (c, 2049) TNN's p = f32(h/S); p[2048] = 0 pads the "no split" gathers
    prefix: np.ndarray  # (c, 2049) P[n] = Σ_{k<n} p[k]
    p_min: np.ndarray  # (c,) smallest p: every bin holds >= w·p_min
    q_last: np.ndarray  # (c, 1920) mass of bin 127 per candidate
    ref_last: np.ndarray  # (c, 1920) float32, TNN's ref[i-1]
    base: np.ndarray  # (c, 1920) the O(1) part of KL_i (everything but the per-bin sums)


def _tables(hist: np.ndarray) -> _Tables:
    plan = _plan()
    p32, ref_last = _normalise(hist)
    c = p32.shape[0]
    p = np.zeros((c, HIST_BINS + 1))
    p[:, :HIST_BINS] = p32
    del p32
    prefix = np.zeros((c, HIST_BINS + 1))
    np.cumsum(p[:, :HIST_BINS], axis=1, out=prefix[:, 1:])
    below = slice(KL_FIRST - 1, HIST_BINS - 1)  # bin i-1 of every candidate i
    # base = Σ_{k<i-1} p log p + r log r + Σref·log w - tail·log q_127, summed in this order in
    # a few (c, 1920) buffers: every thread runs its own tables, so their size is peak memory
    r = ref_last.astype(np.float64)
    base = np.zeros_like(r)
    np.log(r, out=base, where=r > 0)
    base *= r  # r log r, 0 where r <= 0
    plogp = np.log(p[:, :HIST_BINS])
    plogp *= p[:, :HIST_BINS]
    np.cumsum(plogp, axis=1, out=plogp)
    base += plogp[:, below.start - 1:below.stop - 1]  # the prefix sum up to bin i-2
    del plogp
    term = prefix[:, below] + r  # Σ ref
    term *= plan.log_w
    base += term
    r -= p[:, below]  # the tail TNN adds to ref[i-1], including its f32 drift
    # bin 127 sums its fine bins directly: its log is weighted by the tail mass, so it
    # needs full relative precision (prefix differences would lose it in sparse tails)
    q_last = np.zeros((c, N_CANDIDATES))
    compiled = _compiled()
    if compiled is not None:  # the same sums in the same order, one pass
        compiled.last_bin_mass(p, plan.last_left, plan.last_fl, q_last)
    else:
        for width in range(1, HIST_BINS // KL_TARGET_BINS):
            # i in [128·L, 128·L + 128) has w in [L, L+1): bin 127 holds p[i-L .. i-1] whole,
            # added one shifted slice at a time (a window sum over a short strided axis is
            # slower)
            first = KL_TARGET_BINS * width
            rows = q_last[:, first - KL_FIRST:first - KL_FIRST + KL_TARGET_BINS]
            for k in range(first - width, first):
                rows += p[:, k:k + KL_TARGET_BINS]
        q_last += plan.last_fl * p[:, plan.last_left]  # the split fine bin below bin 127
    np.log(q_last, out=term)
    term *= r
    base -= term
    base[ref_last < 0] = np.inf  # TNN: ref[i-1] < 0 makes KL NaN, never `< best`
    return _Tables(p, prefix, p[:, :HIST_BINS].min(axis=1), q_last, ref_last, base)


def _lower_bound(t: _Tables) -> np.ndarray:
    """A cheap lower bound of KL_i (c, 1920), from the log-sum inequality on two groups of
    fine bins, {k < i-1} (ref mass R = P[i-1], e mass E = Σe - u_127 = P[i] - u_127) and
    {i-1} (ref r, e = u_127): ``KL_i >= R·log(R/E) + r·log(r/u_127)``, and
    ``R·log(R/E) >= R - E = u_127 - p[i-1]`` (no cancellation). Large where a candidate
    clips much mass, which lets the search skip it."""
    plan = _plan()
    u = t.q_last / plan.w
    lb = u - t.p[:, KL_FIRST - 1:HIST_BINS - 1]
    r = t.ref_last.astype(np.float64)
    has_r = r > 0
    np.divide(r, u, out=u, where=has_r)   # u becomes r·log(r/u) where r > 0
    np.log(u, out=u, where=has_r)
    u *= r
    np.add(lb, u, out=lb, where=has_r)
    lb[t.ref_last < 0] = np.inf
    return lb


def _cross(t: _Tables, ch: slice | np.ndarray, rows: np.ndarray | slice | None
           ) -> np.ndarray:
    """``Σ_j M_j log q_j + Σ_b p_b log(w·e_b)`` for channels ``ch`` and candidate rows
    (indices into 0..1919, a ``slice(start, 1920)``, or None = all), in blocks of
    ~_BLOCK_ELEMS elements laid out (c, nb·128) so that each NumPy call runs one long
    contiguous loop."""
    plan = _plan()
    prefix, p, q_last, p_min = t.prefix[ch], t.p[ch], t.q_last[ch], t.p_min[ch]
    c = prefix.shape[0]
    if isinstance(rows, slice):
        offset, rows = rows.start, None
    else:
        offset = 0
    n_rows = N_CANDIDATES - offset if rows is None else len(rows)
    out = np.empty((c, n_rows))
    nb = max(1, _BLOCK_ELEMS // (c * KL_TARGET_BINS))
    # weights (M | p_split) and their logs (log q | log w·e) sit side by side, so one np.log
    # and one row dot serves both sums (fewer calls: less time holding the GIL)
    weights = np.empty((2, c, nb * KL_TARGET_BINS))
    values = np.empty((2, c, nb * KL_TARGET_BINS))
    logs = np.empty((2, c, nb * KL_TARGET_BINS))
    pr_full = np.empty((c, nb * KL_TARGET_BINS))
    sums = np.empty(2 * c * nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        for a in range(0, n_rows, nb):
            b = min(a + nb, n_rows)
            n = (b - a) * KL_TARGET_BINS
            m = (b - a) * c
            inner, ps = weights[0, :, :n], weights[1, :, :n]
            q, e = values[0, :, :n], values[1, :, :n]
            pr_at = pr_full[:, :n]
            if rows is None:
                sel = slice(offset + a, offset + b)
                flat = slice(sel.start * KL_TARGET_BINS, sel.stop * KL_TARGET_BINS)
                rl, rl_split = plan.rl_flat[flat], plan.rl_split_flat[flat]
                fr = plan.fr_flat[flat]
            else:
                sel = rows[a:b]
                rl, rl_split, fr = (plan.rl[sel].ravel(), plan.rl_split[sel].ravel(),
                                    plan.fr[sel].ravel())
            np.take(prefix, rl, axis=1, out=pr_at, mode="wrap")  # P[rl_j]
            np.take(p, rl_split, axis=1, out=ps, mode="wrap")  # p[rl_j] under a split, else 0
            g = e  # scratch: G_j = F(en_j) = P[rl_j] + fr_j·p[rl_j]
            np.multiply(ps, fr, out=g)
            g += pr_at
            np.subtract(g[:, 1:], g[:, :-1], out=q[:, 1:])  # q_j = G_j - G_{j-1}
            q[:, ::KL_TARGET_BINS] = g[:, ::KL_TARGET_BINS]  # G_{-1} = F(0) = 0
            q[:, KL_TARGET_BINS - 1::KL_TARGET_BINS] = q_last[:, sel]
            # M_j = P[rl_j] - P[lu_j], lu_j = rl_{j-1} (+1 under a split): bins inside bin j
            np.subtract(pr_at[:, 1:], pr_at[:, :-1], out=inner[:, 1:])
            inner[:, 1:] -= ps[:, :-1]
            inner[:, ::KL_TARGET_BINS] = pr_at[:, ::KL_TARGET_BINS]
            # w·e_k = fr·q_j + (1-fr)·q_{j+1} under the boundary right of bin j (= q_{j+1},
            # weight 0, when there is none; column 127 reads the next candidate's q_0)
            np.subtract(q[:, :-1], q[:, 1:], out=e[:, :-1])
            e[:, :-1] *= fr[:-1]
            e[:, :-1] += q[:, 1:]
            e[:, -1] = 1.0
            if n == weights.shape[2]:
                np.log(values, out=logs)
                _rowdot(weights.reshape(-1, KL_TARGET_BINS), logs.reshape(-1, KL_TARGET_BINS),
                        out=sums)
                both = sums.reshape(2, c, b - a)
            else:  # last, shorter block
                lg = np.log(values[:, :, :n])
                both = _rowdot(weights[:, :, :n].reshape(2, m, KL_TARGET_BINS),
                               lg.reshape(2, m, KL_TARGET_BINS)).reshape(2, c, b - a)
            cross = out[:, a:b]
            np.add(both[0], both[1], out=cross)
            if not np.isfinite(cross).all():  # rounding swamped a bin of empty fine bins
                bad = ~np.isfinite(cross)
                idx = np.arange(N_CANDIDATES)[sel]
                cross[bad] = _cross_safe(prefix, p, p_min, idx)[bad]
    return out


def _cross_safe(prefix: np.ndarray, p: np.ndarray, p_min: np.ndarray, rows: np.ndarray
                ) -> np.ndarray:
    """``_cross`` with q clamped to its lower bound w·min(p) (every bin holds w fine bins of
    mass >= min(p)). Only needed when prefix-sum rounding made some q_j <= 0, i.e. for
    histograms with ~1e10 counts; the affected terms weigh as little as those bins (~1e-17),
    so the clamp changes KL by far less than TNN's own f32 noise."""
    plan = _plan()
    fr = plan.fr[rows]
    pr_at = prefix[:, plan.rl[rows]]
    ps = p[:, plan.rl_split[rows]]
    q = np.diff(pr_at + fr * ps, axis=-1, prepend=0.0)
    inner = np.diff(pr_at, axis=-1, prepend=0.0)
    inner[..., 1:] -= ps[..., :-1]
    np.maximum(q, p_min[:, None, None] * plan.w[None, rows, None], out=q)
    e_split = q[..., 1:] + fr[..., :-1] * (q[..., :-1] - q[..., 1:])
    return _rowdot(inner, np.log(q)) + _rowdot(ps[..., :-1], np.log(e_split))


def kl_divergences(hist: np.ndarray) -> np.ndarray:
    """KL_i for every candidate threshold ``i = 128 … 2047``: (C, 2048) -> (C, 1920) float64.

    ``hist`` holds TNN's f32 bin values (``Histogram.bins()``). Candidates TNN can never
    choose (NaN KL) are ``+inf``. No pruning: O(1920·128) per channel.
    """
    hist = np.atleast_2d(np.asarray(hist, np.float32))
    if hist.ndim != 2 or hist.shape[1] != HIST_BINS:
        raise ValueError(f"kl_divergences: expected (C, {HIST_BINS}) bins, got {hist.shape}")
    out = np.empty((hist.shape[0], N_CANDIDATES))
    for lo in range(0, hist.shape[0], _CHANNELS_PER_BLOCK):
        t = _tables(hist[lo:lo + _CHANNELS_PER_BLOCK])
        out[lo:lo + _CHANNELS_PER_BLOCK] = t.base - _cross(t, slice(None), None)
    return out


def kl_candidate_f32(p: np.ndarray, i: int, ref_last: np.float32) -> np.float32:
    """TNN's KL of candidate threshold ``i`` in its own f32 arithmetic (spec int8 §6.2 steps
    3.1-3.4): ``p`` the normalized f32 bins, ``ref_last`` = f32(p[i-1] + running tail)."""
    f32 = np.float32
    j = np.arange(KL_TARGET_BINS)
    ref = p[:i].copy()
    ref[i - 1] = ref_last
    w = f32(i / KL_TARGET_BINS)
    st = (j * w).astype(f32)
    en = (st + w).astype(f32)
    lu = np.ceil(st).astype(np.int64)
    rl = np.floor(en).astype(np.int64)
    left_f = (lu - st).astype(f32)
    right_f = (en - rl).astype(f32)
    has_l = lu > st
    has_r = rl < en
    left = np.where(has_l, (left_f * p[np.maximum(lu - 1, 0)]).astype(f32), f32(0))
    right = np.where(has_r, (right_f * p[np.minimum(rl, HIST_BINS - 1)]).astype(f32), f32(0))
    n_in = rl - lu
    width = int(n_in.max()) + 1
    # q[j] = ((0 + left) + right) + p[lu] + ... + p[rl-1], summed in this order in f32
    terms = np.zeros((KL_TARGET_BINS, width), f32)
    terms[:, 0] = ((f32(0) + left).astype(f32) + right).astype(f32)
    cols = np.arange(1, width)[None, :]
    inside = cols <= n_in[:, None]
    terms[:, 1:] = np.where(inside, p[np.where(inside, lu[:, None] + cols - 1, 0)], f32(0))
    u = (np.cumsum(terms, axis=1, dtype=f32)[:, -1] / w).astype(f32)   # cnt == w exactly
    e = np.zeros(i, f32)
    e[np.concatenate([np.arange(a, b) for a, b in zip(lu, rl)])] = np.repeat(u, n_in)
    # a fine bin under a non-integer boundary: bin j's right part, then bin j+1's left part
    split = np.nonzero(has_r[:-1])[0]
    e[rl[split]] = ((u[split] * right_f[split]).astype(f32)
                    + (u[split + 1] * left_f[split + 1]).astype(f32)).astype(f32)
    with np.errstate(invalid="ignore", divide="ignore"):
        kl_terms = (ref * logf((ref / e).astype(f32))).astype(f32)
    kl_terms[ref == 0] = 0
    return np.cumsum(kl_terms, dtype=f32)[-1]


def _f32_first_min(kl: np.ndarray, hist: np.ndarray) -> np.ndarray:
    """TNN's choice where float64 cannot settle it: every candidate within ``F32_TIE_RTOL``
    of a channel's float64 minimum is re-scored in TNN's f32 arithmetic, and the first
    strict f32 minimum wins (spec int8 §6.2 step 3.5)."""
    chosen = _first_min(kl)
    p32, ref_last = _normalise(hist)
    low = kl.min(axis=1)
    for c in np.flatnonzero(low < KL_INIT_BEST):
        near = np.flatnonzero(kl[c] <= low[c] + F32_TIE_RTOL * abs(low[c]))
        if len(near) < 2:
            continue
        best = np.float32(KL_INIT_BEST)
        for j in near:
            value = kl_candidate_f32(p32[c], int(j) + KL_FIRST, ref_last[c, j])
            if value < best:      # NaN never wins, as in TNN
                best, chosen[c] = value, int(j) + KL_FIRST
    return chosen


def _compiled() -> ModuleType | None:
    """The ``kl_screen`` module with numba (the ``fast`` extra), else None: the search then
    runs in NumPy alone, to the same thresholds."""
    return compiled_module(f"{__package__}.kl_screen")


def _search(hist: np.ndarray, exact: bool = False) -> np.ndarray:
    """TNN's thresholds for a group of channels, skipping candidates that provably lose.

    1. Exact KL at every 32nd candidate gives an upper bound U of each channel's minimum.
    2. A candidate whose lower bound (``_lower_bound``) exceeds U cannot be the first
       minimum. The bound is large for candidates that clip much mass, so what survives is
       essentially a suffix ``i >= i0`` of the candidates (on real activations ~half).
    3. Channels are sorted by i0 and their suffixes evaluated exactly, a few channels at a
       time (vectorized over channels and candidates, contiguous plan slices).

    With the compiled screen, step 1 and 3 run through it instead (``_screened``).
    """
    t = _tables(hist)
    margin = F32_TIE_RTOL if exact else _PRUNE_MARGIN   # keep every candidate exact mode re-scores
    compiled = _compiled()
    if compiled is not None:
        kl = _screened(t, compiled.screen, margin)
        return _f32_first_min(kl, hist) if exact else _first_min(kl)
    c = hist.shape[0]
    kl = np.full((c, N_CANDIDATES), np.inf)
    seeds = np.arange(0, N_CANDIDATES, _SEED_STRIDE)
    for lo in range(0, c, _CHANNELS_PER_BLOCK):
        ch = slice(lo, min(lo + _CHANNELS_PER_BLOCK, c))
        kl[ch, seeds] = t.base[ch, seeds] - _cross(t, ch, seeds)
    upper = kl.min(axis=1)
    todo = _lower_bound(t) <= upper[:, None] + margin * (1 + np.abs(upper[:, None]))
    todo &= np.isfinite(t.base)
    todo[:, seeds] = False
    first = np.where(todo.any(axis=1), np.argmax(todo, axis=1), N_CANDIDATES)
    order = np.argsort(first, kind="stable")
    for lo in range(0, c, _CHANNELS_PER_BLOCK):
        ch = order[lo:lo + _CHANNELS_PER_BLOCK]
        start = int(first[ch].min())
        if start < N_CANDIDATES:
            rows = slice(start, N_CANDIDATES)
            kl[ch, start:] = t.base[ch, start:] - _cross(t, ch, rows)
    return _f32_first_min(kl, hist) if exact else _first_min(kl)


def _screened(t: _Tables, screen: Callable, margin: float) -> np.ndarray:
    """``_search``'s steps with the compiled screen (``kl_screen``) in place of float64:
    every candidate gets an interval ``[lo, hi]`` holding its KL, from the screen or the
    lower bound; the float64 KL (``_cross``) is computed only where ``lo`` reaches the least
    ``hi`` (plus the tie margin), and every other candidate is +inf: it provably loses."""
    c = t.prefix.shape[0]
    cross = np.full((c, N_CANDIDATES), np.nan)
    err = np.full((c, N_CANDIDATES), np.inf)
    seeds = np.arange(0, N_CANDIDATES, _SEED_STRIDE)
    screen(t.prefix, t.p, t.q_last, np.zeros(c, np.int64), seeds, cross, err)
    hi = t.base[:, seeds] - cross[:, seeds] + err[:, seeds]  # NaN where the screen gave up
    upper = np.fmin.reduce(hi, axis=1)  # the least KL is below this
    upper[np.isnan(upper)] = np.inf
    todo = _lower_bound(t) <= upper[:, None] + margin * (1 + np.abs(upper[:, None]))
    todo &= np.isfinite(t.base)
    first = np.where(todo.any(axis=1), np.argmax(todo, axis=1), N_CANDIDATES)
    screen(t.prefix, t.p, t.q_last, first, np.arange(N_CANDIDATES), cross, err)
    hi = t.base - cross
    lo = hi - err
    hi += err
    upper = np.fmin(upper, np.fmin.reduce(np.where(todo, hi, np.inf), axis=1))
    need = todo & ~(lo > upper[:, None] + margin * (1 + np.abs(upper[:, None])))  # NaN: needed
    kl = np.full((c, N_CANDIDATES), np.inf)
    ch, rows = np.nonzero(need)
    for lo_pair in range(0, len(ch), _PAIRS_PER_BLOCK):
        pairs = slice(lo_pair, lo_pair + _PAIRS_PER_BLOCK)
        kl[ch[pairs], rows[pairs]] = t.base[ch[pairs], rows[pairs]] - _cross_pairs(
            t, ch[pairs], rows[pairs])
    return kl


def _cross_pairs(t: _Tables, ch: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``_cross`` of scattered (channel, candidate row) pairs, in the same arithmetic."""
    plan = _plan()
    fr = plan.fr[rows]
    pr_at = t.prefix[ch[:, None], plan.rl[rows]]
    ps = t.p[ch[:, None], plan.rl_split[rows]]
    g = ps * fr
    g += pr_at
    q = np.empty_like(g)
    q[:, 0] = g[:, 0]
    np.subtract(g[:, 1:], g[:, :-1], out=q[:, 1:])
    q[:, -1] = t.q_last[ch, rows]
    inner = np.empty_like(g)
    inner[:, 0] = pr_at[:, 0]
    np.subtract(pr_at[:, 1:], pr_at[:, :-1], out=inner[:, 1:])
    inner[:, 1:] -= ps[:, :-1]
    e = np.ones_like(g)   # the last column has weight 0
    np.subtract(q[:, :-1], q[:, 1:], out=e[:, :-1])
    e[:, :-1] *= fr[:, :-1]
    e[:, :-1] += q[:, 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = _rowdot(inner, np.log(q)) + _rowdot(ps, np.log(e))
    for k in np.flatnonzero(~np.isfinite(cross)):  # as in _cross
        c = slice(ch[k], ch[k] + 1)
        cross[k] = _cross_safe(t.prefix[c], t.p[c], t.p_min[c], rows[k:k + 1])[0, 0]
    return cross


def _first_min(kl: np.ndarray) -> np.ndarray:
    """TNN's choice: the first candidate reaching the minimum (strict ``KL < best``, best
    starting at 1e6). Candidates within a relative 1e-8 of the minimum count as reaching it:
    where TNN's f32 KL values are *identical* (e.g. a channel whose values all fall in one bin:
    its f32 KL is the same for every candidate below that bin) the exact values differ only by
    float64 rounding, ~1e-12, and TNN keeps the first. Real near-ties are ~1e-6 apart."""
    low = kl.min(axis=1, keepdims=True)
    best = np.argmax(kl <= low + _TIE_RTOL * np.abs(low), axis=1)
    ok = low[:, 0] < KL_INIT_BEST
    return np.where(ok, best + KL_FIRST, KL_FIRST)


def kl_thresholds(hist: np.ndarray, threads: int | None = None,
                  exact: bool = False) -> np.ndarray:
    """TNN's KL threshold (in bins, 128 … 2047) of every histogram: (C, 2048) -> (C,) int.

    Pass all channels of a blob (or of many blobs) at once; groups of channels run on
    ``threads`` threads (default: the usable CPUs; NumPy releases the GIL). ``exact`` settles
    near-ties in TNN's f32 arithmetic, as TNN does (slower; ``_f32_first_min``).
    """
    hist = np.atleast_2d(np.asarray(hist, np.float32))
    if hist.ndim != 2 or hist.shape[1] != HIST_BINS:
        raise ValueError(f"kl_thresholds: expected (C, {HIST_BINS}) bins, got {hist.shape}")
    n = hist.shape[0]
    out = np.full(n, KL_FIRST, np.int64)
    group = max(_CHANNELS_PER_BLOCK, min(_CHANNELS_PER_TASK, -(-n // (threads or usable_cpus()))))
    starts = range(0, n, group)

    def run(lo: int) -> None:
        out[lo:lo + group] = _search(hist[lo:lo + group], exact)

    run_blocks(run, starts, threads)
    return out


_CHANNELS_PER_CALL = 256  # channels of several blobs searched together (their f32 bins: 2 MB)


def kl_many(stats: list[BlobStats], exact: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """``kl`` for several blobs: their valid channels are searched together, ~256 per
    threaded ``kl_thresholds`` call, so small blobs keep both cores busy."""
    hists = [s.histogram for s in stats]
    thresholds = [np.full(len(h.valid), KL_FIRST, np.int64) for h in hists]
    pending: list[int] = []

    def flush() -> None:
        counts = [int(np.count_nonzero(hists[k].valid)) for k in pending]
        bins = np.empty((sum(counts), HIST_BINS), np.float32)
        starts = np.cumsum([0] + counts)
        for k, start, stop in zip(pending, starts, starts[1:]):
            hists[k].valid_bins(out=bins[start:stop])
        found = kl_thresholds(bins, exact=exact)
        for k, start, stop in zip(pending, starts, starts[1:]):
            thresholds[k][hists[k].valid] = found[start:stop]
        pending.clear()

    for k, h in enumerate(hists):
        if h.valid.any():
            pending.append(k)
        if sum(int(np.count_nonzero(hists[j].valid)) for j in pending) >= _CHANNELS_PER_CALL:
            flush()
    if pending:
        flush()
    return [finish(threshold_scale(t, h.interval), 0, h.valid) for t, h in zip(thresholds, hists)]


@act_method("kl", code=2, needs=("range", "histogram"), has_exact=True, batch=kl_many,
            compiled=True)
def kl(stats: BlobStats, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``scale = f32((T + 0.5) / interval / 127)`` with T the KL-optimal threshold in bins.

    Only valid slots are searched; invalid ones get scale 0 (spec int8 §6). Zero point 0.
    """
    return kl_many([stats], exact)[0]
