"""Per-blob calibration statistics, exactly as TNN's quantization tool gathers them (spec int8 §5).

Observers only collect: ``update(x)`` once per batch of calibration files, then ``result()``
returns an immutable statistics object that the blob-scale methods (``calib.methods``) turn
into scales. Memory is independent of the number of calibration files.

Input arrays are float32 batches shaped ``(N, C, ...)`` (rank 2 ``(N, C)`` and rank 1 ``(N,)``
are accepted too); every batch item ``n`` is one calibration file, in file order. An observer
built with ``channels == 1`` for a blob with C > 1 channels is *merged* (per-tensor, spec §4):
every channel updates slot 0.

Pass 1 uses ``RangeObserver`` (and ``AciqMeansObserver`` for the ACIQ methods); the pass-2
``HistogramObserver`` is built from the pass-1 ``RangeStats`` (spec §5.3).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..parallel import compiled_module, loaded_compiled_module

HIST_BINS = 2048  # histogram bins per channel (spec int8 §5.3, TNN's bin_nums_)
RANGE_INIT_MIN = np.float32(1e6)  # range[c] starts at (1e6, -1e6) (spec int8 §5)
RANGE_INIT_MAX = np.float32(-1e6)
VALID_ABSMAX = 1e-5  # a channel is valid iff max-abs > 1e-5, compared in double (spec §5.3)
EMPTY_BIN = np.float32(1e-7)  # every f32 bin starts at f32(1e-7) (spec int8 §5.3)
ONE_COUNT_BIN = np.float32(1 + 2.0 ** -23)  # f32(1e-7 + 1) (spec int8 §5.4)
COUNTER_SATURATION = 2 ** 24  # f32 counters stop growing at 2^24 (spec int8 §5.4)
_FLUSH_CHANNELS = 128  # channels counted per np.bincount (its int64 output: 2 MB)


# --- shared helpers -----------------------------------------------------------------------


def _as_ncl(x: np.ndarray, channels: int, who: str) -> tuple[np.ndarray, bool]:
    """View ``x`` as float32 ``(N, C, L)``; returns it and whether the update is merged."""
    x = np.asarray(x)
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    if x.ndim == 0:
        raise ValueError(f"{who}: expected a batch (N, C, ...), got a scalar")
    if x.ndim == 1:
        x = x.reshape(x.shape[0], 1)
    c = x.shape[1]
    if channels != c and channels != 1:
        raise ValueError(f"{who}: built for {channels} channels, got an array of shape "
                         f"{x.shape} ({c} channels)")
    return x.reshape(x.shape[0], c, -1), (channels == 1 and c != 1)


def interval_from_range(vmin: np.ndarray, vmax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TNN's histogram reset (spec int8 §5.3): ``(interval, valid)`` per slot.

    ``m = max(|min|, |max|)`` (f32), ``valid = m > 1e-5`` (double comparison),
    ``interval = f32(2048 / m)`` for valid slots, 0 otherwise.
    """
    m = np.maximum(np.abs(np.asarray(vmin, np.float32)), np.abs(np.asarray(vmax, np.float32)))
    valid = m.astype(np.float64) > VALID_ABSMAX
    interval = np.zeros(m.shape, np.float32)
    np.divide(np.float32(HIST_BINS), m, out=interval, where=valid)
    return interval, valid


def tnn_bin_values(counts: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Map integer bin counts to the values TNN's f32 counters hold (spec int8 §5.4), into
    ``out`` (float32, counts' shape) if given.

    f(0) = f32(1e-7), f(1) = 1 + 2^-23, f(n) = n for 2 <= n <= 2^24, f(n) = 2^24 above.
    """
    counts = np.asarray(counts)
    if out is None:
        out = np.empty(counts.shape, np.float32)
    np.minimum(counts, COUNTER_SATURATION, out=out, casting="unsafe")   # exact below 2^24
    out[counts == 0] = EMPTY_BIN
    out[counts == 1] = ONE_COUNT_BIN
    return out


# --- statistics results ---------------------------------------------------------------------


@dataclass(frozen=True)
class RangeStats:
    """Pass-1 ranges (spec int8 §5.1). One slot per channel, or one slot when merged.

    ``numel`` is the element count ACIQ_GAUS uses (spec §6.4): H·W (product of dims from 2)
    per channel, or C·H·W when merged. ``files`` counts the calibration files seen.
    """

    min: np.ndarray  # (slots,) float32
    max: np.ndarray  # (slots,) float32
    numel: int
    files: int
    merged: bool

    @property
    def absmax(self) -> np.ndarray:
        return np.maximum(np.abs(self.min), np.abs(self.max))

    @property
    def interval(self) -> np.ndarray:
        """f32(2048 / max-abs) per slot, 0 for invalid slots (spec §5.3)."""
        return interval_from_range(self.min, self.max)[0]

    @property
    def valid(self) -> np.ndarray:
        """Slots whose max-abs exceeds 1e-5 (spec §0, §5.3)."""
        return interval_from_range(self.min, self.max)[1]


def combine_ranges(ranges: list[RangeStats]) -> RangeStats:
    """The ranges of several disjoint sets of files together."""
    return RangeStats(np.minimum.reduce([r.min for r in ranges]),
                      np.maximum.reduce([r.max for r in ranges]), ranges[0].numel,
                      sum(r.files for r in ranges), ranges[0].merged)


@dataclass(frozen=True)
class AciqMeans:
    """Running mean and mean-|v| per slot over batch item 0 of every file (spec int8 §5.2)."""

    mean: np.ndarray  # (slots,) float32
    meanabs: np.ndarray  # (slots,) float32
    count: np.ndarray  # (slots,) int64, number of running-average steps


@dataclass(frozen=True)
class Histogram:
    """Pass-2 histograms (spec int8 §5.4): integer counts, mapped to TNN's f32 bins on demand."""

    counts: np.ndarray  # (slots, 2048) int32, saturated at 2^24
    interval: np.ndarray  # (slots,) float32, 0 for invalid slots
    valid: np.ndarray  # (slots,) bool

    def bins(self) -> np.ndarray:
        """The (slots, 2048) float32 bin values TNN holds (counter semantics of spec §5.4)."""
        return tnn_bin_values(self.counts)

    def valid_bins(self, out: np.ndarray | None = None) -> np.ndarray:
        """``bins()`` of the valid slots only, into ``out`` if given (no full-size copy)."""
        rows = self.counts if self.valid.all() else self.counts[self.valid]
        return tnn_bin_values(rows, out)


@dataclass(frozen=True)
class BlobStats:
    """Everything a blob-scale method may need; methods declare which parts they read."""

    range: RangeStats
    histogram: Optional[Histogram] = None
    aciq_means: Optional[AciqMeans] = None

    def has(self, kind: str) -> bool:
        return getattr(self, kind) is not None


# --- observers ------------------------------------------------------------------------------


def extremes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per batch item and channel, the min and max of a batch ``(N, C, ...)`` over its other
    axes: float32 ``(N, C)`` arrays (rank 1 ``(N,)`` counts as one channel). NaN is never
    picked (TNN's strict comparisons never take it): a row gives NaN only when it holds
    nothing else. Rows without elements give (+inf, -inf)."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("expected a batch (N, C, ...), got a scalar")
    x3 = x.reshape(x.shape[0], x.shape[1] if x.ndim > 1 else 1, -1)
    if x3.shape[2] == 0:
        shape = x3.shape[:2]
        return np.full(shape, np.inf, np.float32), np.full(shape, -np.inf, np.float32)
    lo = x3.min(axis=2).astype(np.float32, copy=False)
    hi = x3.max(axis=2).astype(np.float32, copy=False)
    nan = np.isnan(lo) | np.isnan(hi)
    if nan.any():
        lo[nan] = np.fmin.reduce(x3[nan], axis=1)
        hi[nan] = np.fmax.reduce(x3[nan], axis=1)
    return lo, hi


class RangeObserver:
    """Per-channel min / max with TNN's (1e6, -1e6) init and strict comparisons (spec §5.1).

    Vectorized over the batch; equal to TNN's sequential ``if v < min: min = v`` update,
    including its quirks (values beyond ±1e6 never move the "wrong" end, NaN never moves
    anything). ``update_extremes`` takes the per-item, per-channel extremes instead of the
    batch (an executor may compute them where the blob is made).
    """

    def __init__(self, channels: int) -> None:
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.channels = channels
        self._min = np.full(channels, RANGE_INIT_MIN, np.float32)
        self._max = np.full(channels, RANGE_INIT_MAX, np.float32)
        self._numel = 0
        self._files = 0
        self._merged = False

    def update(self, x: np.ndarray) -> None:
        """Add a batch ``(N, C, ...)`` of calibration files."""
        x3, _ = _as_ncl(x, self.channels, "RangeObserver")
        lo, hi = extremes(x3)
        self.update_extremes(lo, hi, x3.shape[2])

    def update_extremes(self, lo: np.ndarray, hi: np.ndarray, numel: int) -> None:
        """Add a batch given by its ``extremes`` (float32 ``(N, C)`` each) and the element
        count per channel of one item, ``numel``."""
        n, c = lo.shape
        if self.channels not in (c, 1):
            raise ValueError(f"RangeObserver: built for {self.channels} channels, got {c}")
        merged = self.channels == 1 and c != 1
        self._merged |= merged
        self._numel = c * numel if merged else numel
        self._files += n
        if n == 0 or numel == 0:
            return
        # fmin/fmax skip NaN: a slot moves only when some element was a number
        lo = np.fmin.reduce(lo.reshape(-1) if merged else lo, axis=0)
        hi = np.fmax.reduce(hi.reshape(-1) if merged else hi, axis=0)
        self._min = np.where(lo < self._min, lo, self._min).astype(np.float32)
        self._max = np.where(hi > self._max, hi, self._max).astype(np.float32)

    def result(self) -> RangeStats:
        return RangeStats(self._min.copy(), self._max.copy(), self._numel, self._files,
                          self._merged)


def sample_folds(first: int, count: int, folds: int) -> np.ndarray:
    """The folds of samples ``first .. first+count-1`` (in calibration order): sample i is in
    fold ``i % folds``. Every cross-validation over the calibration samples uses this rule, so
    that ranges, scales and scores fitted per fold see the same samples."""
    return (first + np.arange(count)) % folds


class FoldRangeObserver:
    """``RangeObserver`` ranges of each of ``folds`` interleaved folds of the samples (sample
    i, in the order the observer sees them, is in fold ``i % folds``): what a cross-validation
    fits min-max scales on. Same update API as ``RangeObserver``."""

    def __init__(self, channels: int, folds: int) -> None:
        self.folds = [RangeObserver(channels) for _ in range(folds)]
        self.channels = channels
        self._seen = 0

    def update(self, x: np.ndarray) -> None:
        x3, _ = _as_ncl(x, self.channels, "FoldRangeObserver")
        lo, hi = extremes(x3)
        self.update_extremes(lo, hi, x3.shape[2])

    def update_extremes(self, lo: np.ndarray, hi: np.ndarray, numel: int) -> None:
        fold = sample_folds(self._seen, len(lo), len(self.folds))
        self._seen += len(lo)
        for f, observer in enumerate(self.folds):
            rows = fold == f
            if rows.any():
                observer.update_extremes(lo[rows], hi[rows], numel)

    def result(self) -> list[RangeStats]:
        return [observer.result() for observer in self.folds]


class AciqMeansObserver:
    """Running f32 averages of mean(v) and mean(|v|) per channel (spec int8 §5.2).

    For every file (batch item) in order and every channel c:
    ``mean = f32(f32(f32(mean·k) + f32(s/L)) / f32(k+1))`` with ``s`` the sequential f32
    sum over the channel's L elements, likewise for |v|. Merged observers advance slot 0
    once per (file, channel) pair, in file-then-channel order, as TNN does.
    """

    def __init__(self, channels: int) -> None:
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.channels = channels
        self._mean = np.zeros(channels, np.float32)
        self._meanabs = np.zeros(channels, np.float32)
        self._count = np.zeros(channels, np.int64)

    def update(self, x: np.ndarray) -> None:
        """Add a batch ``(N, C, ...)``; each batch item is one calibration file."""
        x3, merged = _as_ncl(x, self.channels, "AciqMeansObserver")
        n, c, length = x3.shape
        if n == 0 or length == 0:
            return
        # sequential f32 sums (np.cumsum accumulates strictly left to right)
        s = np.cumsum(x3, axis=2, dtype=np.float32)[:, :, -1]
        sa = np.cumsum(np.abs(x3), axis=2, dtype=np.float32)[:, :, -1]
        hw = np.float32(length)
        s = (s / hw).astype(np.float32)
        sa = (sa / hw).astype(np.float32)
        if not merged:
            for b in range(n):  # one running-average step per file, in order
                kf = self._count.astype(np.float32)
                k1 = (self._count + 1).astype(np.float32)
                self._mean = (self._mean * kf + s[b]) / k1  # every operation rounds to f32
                self._meanabs = (self._meanabs * kf + sa[b]) / k1
                self._count += 1
            return
        mean, meanabs, k = self._mean[0], self._meanabs[0], int(self._count[0])
        for b in range(n):
            for ch in range(c):  # merged: TNN advances once per (file, channel) pair
                kf, k1 = np.float32(k), np.float32(k + 1)
                mean = np.float32(np.float32(mean * kf) + s[b, ch]) / k1
                meanabs = np.float32(np.float32(meanabs * kf) + sa[b, ch]) / k1
                k += 1
        self._mean[0], self._meanabs[0], self._count[0] = mean, meanabs, k

    def result(self) -> AciqMeans:
        return AciqMeans(self._mean.copy(), self._meanabs.copy(), self._count.copy())


class HistogramObserver:
    """2048-bin |v| histograms per channel over the pass-1 ranges (spec int8 §5.3–5.4).

    For valid slots, every element with ``v != 0`` (exact zeros and -0 are skipped) goes
    to ``min(trunc(f32(|v| · interval)), 2047)``. Counting is in int32 (vectorized
    ``np.bincount``), saturating at 2^24 where TNN's f32 counters stop growing, so the
    counts take the memory of TNN's f32 bins and cannot overflow; ``Histogram.bins()`` maps
    them through TNN's f32 counter semantics.
    NaN elements are not counted (TNN's behaviour on NaN is undefined).

    ``update`` turns a batch into int16 bin numbers and counts them once enough are pending
    (a quarter of the bins): a ``bincount`` costs as much as the bins it produces, so small
    blobs fed one sample at a time would otherwise cost their histogram's size per sample.
    Where numba is already loaded (by the KL search), ``update`` counts in one compiled pass
    instead (``histogram_kernel``), to the same counts; ``compiled`` True / False forces
    either way.
    """

    def __init__(self, ranges: RangeStats, compiled: bool | None = None) -> None:
        self.interval, self.valid = interval_from_range(ranges.min, ranges.max)
        kernel = f"{__package__}.histogram_kernel"
        self._kernel = (loaded_compiled_module(kernel) if compiled is None
                        else compiled_module(kernel) if compiled else None)
        self.channels = len(self.interval)
        self._counts = np.zeros((self.channels, HIST_BINS), np.int32)
        self._pending: list[np.ndarray] = []   # (N, C, L) int16 bin numbers
        self._pending_size = 0
        self._skipped = np.zeros(self.channels, np.int64)  # zeros and NaN, counted in bin 0
        self._merged = False
        self._since_saturation = 0   # elements counted per slot since counts were last clamped

    def update(self, x: np.ndarray) -> None:
        """Add a batch ``(N, C, ...)`` of calibration files."""
        x3, merged = _as_ncl(x, self.channels, "HistogramObserver")
        if x3.size == 0 or not self.valid.any():
            return
        self._merged |= merged
        self._since_saturation += x3.size // (1 if merged else x3.shape[1])
        if self._kernel is not None:
            self._kernel.count_bins(np.ascontiguousarray(x3), self.interval, self._counts)
            if self._since_saturation >= COUNTER_SATURATION:
                self._saturate()
            return
        interval = self.interval[0] if merged else self.interval[None, :, None]
        prod = np.abs(x3)
        with np.errstate(invalid="ignore"):   # inf · 0 (an invalid slot): NaN, handled below
            prod *= interval  # f32 product, as TNN
        np.minimum(prod, np.float32(HIST_BINS - 1), out=prod)  # trunc(v) >= 2047 <=> v >= 2047
        axes = None if merged else (0, 2)
        skipped = np.count_nonzero(x3 == 0, axis=axes)
        if np.isnan(prod.max()):
            nan = np.isnan(prod)
            prod[nan] = 0  # counted in bin 0, then removed with the zeros
            skipped = skipped + np.count_nonzero(nan, axis=axes)
        self._skipped[:1 if merged else None] += skipped
        self._pending.append(prod.astype(np.int16))  # trunc toward zero (prod >= 0)
        self._pending_size += prod.size
        if self._pending_size * 4 >= self._counts.size:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        bins = np.concatenate(self._pending, axis=0) if len(self._pending) > 1 \
            else self._pending[0]
        self._pending, self._pending_size = [], 0
        if self._merged:
            self._add(0, np.bincount(bins.reshape(-1), minlength=HIST_BINS)[None, :])
        else:
            offsets = (np.arange(_FLUSH_CHANNELS, dtype=np.intp) * HIST_BINS)[None, :, None]
            for c0 in range(0, bins.shape[1], _FLUSH_CHANNELS):   # bounded int64 temporaries
                idx = bins[:, c0:c0 + _FLUSH_CHANNELS].astype(np.intp)
                c = idx.shape[1]
                idx += offsets[:, :c]
                self._add(c0, np.bincount(idx.reshape(-1), minlength=c * HIST_BINS)
                          .reshape(c, HIST_BINS))
        self._skipped[:] = 0
        if self._since_saturation >= COUNTER_SATURATION:  # int32 keeps 2^31: clamp long before
            self._saturate()

    def _add(self, c0: int, counts: np.ndarray) -> None:
        """Add bincount results for slots c0… (bin 0 loses the skipped zeros and NaN)."""
        slots = slice(c0, c0 + len(counts))
        counts[:, 0] -= self._skipped[slots]
        np.add(self._counts[slots], counts, out=self._counts[slots], casting="unsafe")

    def _saturate(self) -> None:
        np.minimum(self._counts, COUNTER_SATURATION, out=self._counts)
        self._since_saturation = 0

    def merge(self, other: "HistogramObserver") -> None:
        """Add another observer's counts (same blob, same ranges), e.g. from a worker."""
        if not np.array_equal(self.interval, other.interval):
            raise ValueError("HistogramObserver.merge: observers were built from different ranges")
        self._flush()
        other._flush()
        np.add(self._counts, other._counts, out=self._counts, casting="unsafe")
        self._saturate()

    def result(self) -> Histogram:
        """The histograms; they share the observer's counts (C·2048 of them per blob, the
        largest statistics of a calibration), so update no more after this."""
        self._flush()
        self._counts[~self.valid] = 0  # invalid slots are never updated (spec §5.4)
        self._saturate()
        return Histogram(self._counts, self.interval.copy(), self.valid.copy())


def merged_stats(stats: BlobStats) -> BlobStats:
    """Per-channel statistics merged into per-tensor ones (one slot), as if the blob had been
    observed merged: ranges by min/max; histograms re-binned onto the merged interval
    ``f32(2048 / max-abs)``, each channel's bin counted at its centre. (Re-binning moves a
    value by at most one merged bin, which the clipping searches do not resolve anyway.)
    ACIQ means are not merged."""
    r = stats.range
    vmin = np.array([r.min.min()], np.float32)
    vmax = np.array([r.max.max()], np.float32)
    numel = r.numel * len(r.min)
    ranges = RangeStats(vmin, vmax, numel, r.files, True)
    h = stats.histogram
    if h is None:
        return BlobStats(ranges)
    interval, valid = interval_from_range(vmin, vmax)
    counts = np.zeros((1, HIST_BINS), np.int64)
    if valid[0] and h.valid.any():
        centres = (np.arange(HIST_BINS) + 0.5)[None] / h.interval[h.valid, None]
        # a range reaching inf (a damaged model's activations) gives inf / NaN positions:
        # they land in the edge bins instead of becoming negative indices
        position = np.nan_to_num(centres * interval[0], nan=0.0, posinf=HIST_BINS - 1)
        index = np.clip(position, 0, HIST_BINS - 1).astype(np.int64)
        counts[0] = np.bincount(index.ravel(), weights=h.counts[h.valid].ravel(),
                                minlength=HIST_BINS)
    counts = np.minimum(counts, COUNTER_SATURATION).astype(np.int32)
    return BlobStats(ranges, Histogram(counts, interval, valid))
