"""Accuracy metrics of an int8 model against its float reference: pure, vectorized, streaming.

Error functions follow onnxruntime's ``compute_activation_error(..., err_func)`` design (any
function of a reference and a test tensor can be plugged in), split in two halves so that they
stream over evaluation batches: ``partial(ref, test)`` reduces one batch to a small vector of
statistics, ``merge`` combines two such vectors (a sum, or a maximum), and ``finish`` turns the
merged vector into the value. Memory therefore stays constant however many samples are
evaluated, and the streamed value equals the one-shot value on all samples at once (up to
float64 summation order).

Conventions for degenerate inputs, chosen so that "identical" always scores best:
* cosine of two all-zero tensors is 1, of a zero and a non-zero tensor 0;
* SQNR is +inf when the test tensor equals the reference exactly, -inf when the reference is
  all zeros but the test tensor is not.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

# int8 values at either end of the range: TNN's saturating cast clamps activations to
# [-128, 127] (spec int8 §0) and weights to [-127, 127], so |q| >= 127 means clipped (or at
# the calibrated maximum, which MIN_MAX maps exactly to 127)
INT8_SATURATED = 127

Stats = np.ndarray
Reduce = Callable[[np.ndarray, np.ndarray], Stats]


def _f64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(-1)


def _cosine_from(dot: float, ref_sq: float, test_sq: float) -> float:
    if ref_sq == 0 or test_sq == 0:
        return 1.0 if ref_sq == test_sq else 0.0
    return float(dot / np.sqrt(ref_sq * test_sq))


def _sqnr_from(signal: float, noise: float) -> float:
    if noise == 0:
        return float("inf")
    if signal == 0:
        return float("-inf")
    return float(10.0 * np.log10(signal / noise))


def _cosine_partial(x: np.ndarray, y: np.ndarray) -> Stats:
    return np.array([x @ y, x @ x, y @ y])


def _sqnr_partial(x: np.ndarray, y: np.ndarray) -> Stats:
    d = x - y
    return np.array([x @ x, d @ d])


def _max_abs_partial(x: np.ndarray, y: np.ndarray) -> Stats:
    d = x - y
    return np.array([max(d.max(), -d.min()) if d.size else 0.0])


@dataclass(frozen=True)
class ErrorMetric:
    """An error function of (reference, test) that can stream; call it for the one-shot value.
    ``partial`` receives both tensors as flat float64 vectors."""

    name: str
    partial: Reduce                                       # one batch -> statistics
    finish: Callable[[Stats], float]                      # merged statistics -> value
    merge: Callable[[Stats, Stats], Stats] = np.add       # combine two batches' statistics

    def __call__(self, ref: np.ndarray, test: np.ndarray) -> float:
        return self.finish(self.partial(_f64(ref), _f64(test)))


COSINE = ErrorMetric("cosine", _cosine_partial, lambda s: _cosine_from(*s))
SQNR_DB = ErrorMetric("sqnr_db", _sqnr_partial, lambda s: _sqnr_from(*s))
MAX_ABS_ERROR = ErrorMetric("max_abs_error", _max_abs_partial, lambda s: float(s[0]),
                            merge=np.maximum)
BLOB_METRICS: tuple[ErrorMetric, ...] = (COSINE, SQNR_DB, MAX_ABS_ERROR)


def cosine(ref: np.ndarray, test: np.ndarray) -> float:
    """Cosine similarity of two tensors taken as flat vectors."""
    return COSINE(ref, test)


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """Signal to quantization noise ratio ``10 log10(Σ ref² / Σ (ref - test)²)`` in dB."""
    return SQNR_DB(ref, test)


def max_abs_error(ref: np.ndarray, test: np.ndarray) -> float:
    """Largest ``|ref - test|`` over all elements (0 for empty tensors)."""
    return MAX_ABS_ERROR(ref, test)


def relative_noise(sqnr: float) -> float:
    """Noise power as a fraction of the signal power, ``Σ (ref - test)² / Σ ref²``, from an
    SQNR in dB (0 when exact, inf when the reference is all zeros)."""
    with np.errstate(over="ignore"):
        return float(np.power(10.0, -sqnr / 10.0))


def saturation_counts(q: np.ndarray, bottom: bool = True) -> Stats:
    """``[saturated, total]`` int8 values of a quantized tensor (|q| >= 127; only q >= 127
    without ``bottom``: a blob whose folded zero point is -128 holds its ReLU's zeros there,
    passes/zero_points.py)."""
    q = np.asarray(q)
    top = q >= INT8_SATURATED
    saturated = np.count_nonzero(top | (q <= -INT8_SATURATED) if bottom else top)
    return np.array([saturated, q.size], dtype=np.float64)


def saturated_fraction(q: np.ndarray) -> float:
    """Fraction of int8 values at the ends of the range (|q| >= 127); 0 for an empty tensor."""
    saturated, total = saturation_counts(q)
    return float(saturated / total) if total else 0.0


class ErrorAccumulator:
    """Streams error metrics over batches: ``update(ref, test[, q])`` per batch, then
    ``result()``. ``q``, the int8 values behind ``test`` when the blob is int8, adds the
    saturated fraction to the result (``bottom``: as in ``saturation_counts``)."""

    def __init__(self, metrics: Sequence[ErrorMetric] = BLOB_METRICS) -> None:
        self.metrics = tuple(metrics)
        self.stats: list[Stats | None] = [None] * len(self.metrics)
        self.saturation: Stats | None = None
        self.elements = 0

    def update(self, ref: np.ndarray, test: np.ndarray, q: np.ndarray | None = None,
               bottom: bool = True) -> None:
        if np.shape(ref) != np.shape(test):
            raise ValueError(f"reference shape {np.shape(ref)} != test shape {np.shape(test)}")
        x, y = _f64(ref), _f64(test)   # one float64 copy shared by every metric
        for i, metric in enumerate(self.metrics):
            s = metric.partial(x, y)
            self.stats[i] = s if self.stats[i] is None else metric.merge(self.stats[i], s)
        if q is not None:
            s = saturation_counts(q, bottom)
            self.saturation = s if self.saturation is None else self.saturation + s
        self.elements += int(np.size(ref))

    def result(self) -> dict[str, float | None]:
        """Metric name -> value, plus ``saturated`` (None unless int8 values were given)."""
        if any(s is None for s in self.stats):
            raise ValueError("no data: update() was never called")
        out: dict[str, float | None] = {m.name: m.finish(s)
                                        for m, s in zip(self.metrics, self.stats)}
        out["saturated"] = (None if self.saturation is None else
                            float(self.saturation[0] / self.saturation[1])
                            if self.saturation[1] else 0.0)
        return out


# --- classifiers -------------------------------------------------------------------------------

def is_classifier_shape(shape: Sequence[int]) -> bool:
    """An output of shape (N, K) with K >= 2, or (N, K, 1, 1), holds class scores."""
    shape = tuple(shape)
    return (len(shape) == 2 and shape[1] >= 2) or \
        (len(shape) == 4 and shape[1] >= 2 and shape[2:] == (1, 1))


def as_logits(x: np.ndarray) -> np.ndarray:
    """(N, K) view of classifier scores of shape (N, K) or (N, K, 1, 1)."""
    x = np.asarray(x)
    return x.reshape(x.shape[0], -1)


def top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """(N, k) class indices by decreasing score; equal scores keep the lower index first (so
    top-1 is ``argmax``: quantized scores often tie)."""
    return np.argsort(-as_logits(logits), axis=1, kind="stable")[:, :k]


def top_k_hits(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """(N,) bool: the label is among the k best classes."""
    return (top_k(logits, k) == np.asarray(labels).reshape(-1, 1)).any(axis=1)


def top_k_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of samples whose label is among the k best classes."""
    return float(top_k_hits(logits, labels, k).mean())


def top_k_agreement(ref: np.ndarray, test: np.ndarray, k: int) -> float:
    """Fraction of samples whose reference top-1 class is among the test model's k best
    (k = 1: both models predict the same class); the reference plays the label."""
    return top_k_accuracy(test, top_k(ref, 1)[:, 0], k)


def sample_cosines(ref: np.ndarray, test: np.ndarray) -> np.ndarray:
    """(N,) cosine similarity of each sample's scores (conventions of :func:`cosine`)."""
    x = as_logits(ref).astype(np.float64)
    y = as_logits(test).astype(np.float64)
    dot = np.einsum("nk,nk->n", x, y)
    xx = np.einsum("nk,nk->n", x, x)
    yy = np.einsum("nk,nk->n", y, y)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = dot / np.sqrt(xx * yy)
    degenerate = (xx == 0) | (yy == 0)
    return np.where(degenerate, (xx == yy).astype(np.float64), cos)


def mean_sample_cosine(ref: np.ndarray, test: np.ndarray) -> float:
    """Mean over samples of the per-sample score cosine (the usual "logit cosine")."""
    return float(sample_cosines(ref, test).mean())


@dataclass
class ClassAgreement:
    """Top-1 counts of the samples labelled with one class."""

    label: int
    samples: int
    float_top1: int        # samples the float model classifies correctly
    int8_top1: int         # samples the int8 model classifies correctly
    agreement: int         # samples where both models predict the same class


@dataclass
class ClassifierMetrics:
    """Agreement of an int8 classifier with its float reference (and accuracy with labels)."""

    samples: int
    top1_agreement: float
    top5_agreement: float
    mean_cosine: float                          # mean per-sample score cosine
    float_top1: float | None = None             # accuracies, with labels only
    float_top5: float | None = None
    int8_top1: float | None = None
    int8_top5: float | None = None
    per_class: list[ClassAgreement] | None = None   # with labels: every labelled class


class ClassifierAccumulator:
    """Streams classifier metrics over batches: ``update(ref, test[, labels])``, ``result()``.
    Keeps counts only; labels must be given for every batch or for none."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(("samples", "top1_agreement", "top5_agreement", "cosine",
                                     "labelled", "float_top1", "float_top5", "int8_top1",
                                     "int8_top5"), 0.0)
        # with labels, per class: [samples, float top-1, int8 top-1, agreement] counts
        self.per_class = np.zeros((4, 0), np.int64)

    def update(self, ref: np.ndarray, test: np.ndarray, labels: np.ndarray | None = None) -> None:
        ref, test = as_logits(ref), as_logits(test)
        c = self.counts
        reference = top_k(ref, 1)[:, 0]
        agree = top_k_hits(test, reference, 1)
        c["samples"] += len(ref)
        c["top1_agreement"] += agree.sum()
        c["top5_agreement"] += top_k_hits(test, reference, 5).sum()
        c["cosine"] += sample_cosines(ref, test).sum()
        if labels is not None:
            c["labelled"] += len(ref)
            for side, logits in (("float", ref), ("int8", test)):
                c[f"{side}_top1"] += top_k_hits(logits, labels, 1).sum()
                c[f"{side}_top5"] += top_k_hits(logits, labels, 5).sum()
            self._count_classes(np.asarray(labels, np.intp).reshape(-1), [
                np.ones(len(ref), bool), top_k_hits(ref, labels, 1),
                top_k_hits(test, labels, 1), agree])

    def _count_classes(self, labels: np.ndarray, hits: list[np.ndarray]) -> None:
        size = max(self.per_class.shape[1], int(labels.max(initial=-1)) + 1)
        counts = np.stack([np.bincount(labels, weights=h, minlength=size) for h in hits])
        grown = np.zeros((4, size), np.int64)
        grown[:, :self.per_class.shape[1]] = self.per_class
        self.per_class = grown + counts.astype(np.int64)

    def result(self) -> ClassifierMetrics:
        c = self.counts
        n = c["samples"]
        if not n:
            raise ValueError("no data: update() was never called")
        if c["labelled"] not in (0, n):
            raise ValueError(f"labels were given for {c['labelled']:.0f} of {n:.0f} samples")
        accuracy = {key: (float(c[key] / n) if c["labelled"] else None)
                    for key in ("float_top1", "float_top5", "int8_top1", "int8_top5")}
        per_class = None
        if c["labelled"]:
            per_class = [ClassAgreement(int(label), *map(int, self.per_class[:, label]))
                         for label in np.flatnonzero(self.per_class[0])]
        return ClassifierMetrics(samples=int(n), top1_agreement=float(c["top1_agreement"] / n),
                                 top5_agreement=float(c["top5_agreement"] / n),
                                 mean_cosine=float(c["cosine"] / n), **accuracy,
                                 per_class=per_class)
