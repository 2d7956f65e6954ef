"""Report metrics against direct formulas written here, and streaming == one-shot."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tnnquant.report.metrics import (BLOB_METRICS, COSINE, ClassifierAccumulator,
                                     ErrorAccumulator, ErrorMetric, cosine,
                                     is_classifier_shape, max_abs_error, mean_sample_cosine,
                                     relative_noise, sample_cosines, saturated_fraction, sqnr_db,
                                     top_k, top_k_accuracy, top_k_agreement)

rng = np.random.default_rng(0)


def pair(shape=(3, 4, 5, 5), noise=0.1):
    x = rng.standard_normal(shape).astype(np.float32)
    return x, (x + noise * rng.standard_normal(shape)).astype(np.float32)


def test_cosine_is_the_formula():
    x, y = pair()
    a, b = x.astype(np.float64).ravel(), y.astype(np.float64).ravel()
    expected = sum(a * b) / math.sqrt(sum(a * a) * sum(b * b))
    assert cosine(x, y) == pytest.approx(expected, rel=1e-12)
    assert cosine(x, 3 * x) == pytest.approx(1.0)
    assert cosine(x, -x) == pytest.approx(-1.0)


def test_sqnr_is_the_formula():
    x, y = pair()
    a, b = x.astype(np.float64).ravel(), y.astype(np.float64).ravel()
    expected = 10 * math.log10(sum(a * a) / sum((a - b) ** 2))
    assert sqnr_db(x, y) == pytest.approx(expected, rel=1e-12)
    # error of a tenth of the signal amplitude everywhere: 20 dB
    assert sqnr_db(np.full(10, 2.0), np.full(10, 1.8)) == pytest.approx(20.0)


def test_max_abs_error_is_the_formula():
    x, y = pair()
    assert max_abs_error(x, y) == float(np.max(np.abs(x.astype(np.float64) - y)))
    assert max_abs_error(np.zeros(0), np.zeros(0)) == 0.0


def test_degenerate_conventions_rank_identical_best():
    z = np.zeros(5)
    x = np.arange(5.0)
    assert sqnr_db(x, x) == math.inf
    assert sqnr_db(z, z) == math.inf
    assert sqnr_db(z, x) == -math.inf
    assert cosine(z, z) == 1.0
    assert cosine(z, x) == 0.0 and cosine(x, z) == 0.0
    assert relative_noise(math.inf) == 0.0
    assert relative_noise(20.0) == pytest.approx(0.01)
    assert relative_noise(-math.inf) == math.inf
    assert relative_noise(-5000.0) == math.inf   # no OverflowError


def test_saturated_fraction_counts_both_ends():
    q = np.array([-128, -127, -126, 0, 5, 126, 127, 127], dtype=np.int8)
    assert saturated_fraction(q) == 4 / 8
    assert saturated_fraction(np.zeros(0, np.int8)) == 0.0


def test_error_metric_is_pluggable_and_callable_one_shot():
    # a user-defined error function: mean absolute error, streamed as (Σ|d|, n)
    mae = ErrorMetric("mae", lambda x, y: np.array([np.abs(x - y).sum(), x.size]),
                      lambda s: float(s[0] / s[1]))
    x, y = pair()
    assert mae(x, y) == pytest.approx(float(np.mean(np.abs(x - y))))
    acc = ErrorAccumulator([COSINE, mae])
    for i in range(3):
        acc.update(x[i:i + 1], y[i:i + 1])
    result = acc.result()
    assert set(result) == {"cosine", "mae", "saturated"}
    assert result["mae"] == pytest.approx(mae(x, y), rel=1e-12)
    assert result["saturated"] is None


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_streaming_equals_one_shot(batches, seed):
    r = np.random.default_rng(seed)
    x = r.standard_normal((batches * 2, 3, 4)).astype(np.float32)
    y = (x + r.standard_normal(x.shape) * r.uniform(0, 1)).astype(np.float32)
    q = r.integers(-128, 128, x.shape).astype(np.int8)
    acc = ErrorAccumulator()
    for i in range(batches):
        s = slice(2 * i, 2 * i + 2)
        acc.update(x[s], y[s], q[s])
    result = acc.result()
    for metric in BLOB_METRICS:
        assert result[metric.name] == pytest.approx(metric(x, y), rel=1e-9, abs=1e-12)
    assert result["saturated"] == saturated_fraction(q)
    assert acc.elements == x.size


def test_accumulator_keeps_only_sums():
    acc = ErrorAccumulator()
    x, y = pair((1, 1000))
    for _ in range(50):
        acc.update(x, y)
    held = sum(s.nbytes for s in acc.stats)
    assert held <= 8 * 8   # a few float64 per metric, whatever the number of batches


def test_accumulator_rejects_mismatched_shapes_and_empty_result():
    acc = ErrorAccumulator()
    with pytest.raises(ValueError):
        acc.update(np.zeros((1, 3)), np.zeros((1, 4)))
    with pytest.raises(ValueError):
        acc.result()


# --- classifiers -------------------------------------------------------------------------------

def test_classifier_shapes():
    assert is_classifier_shape((4, 1000))
    assert is_classifier_shape((1, 10, 1, 1))
    assert not is_classifier_shape((4, 1))
    assert not is_classifier_shape((1, 10, 2, 1))
    assert not is_classifier_shape((1, 22, 2100))


def test_top_k_breaks_ties_like_argmax():
    logits = np.array([[1, 3, 3, 0, 3], [5, 5, 5, 5, 5]], np.float32)
    assert top_k(logits, 1)[:, 0].tolist() == np.argmax(logits, axis=1).tolist() == [1, 0]
    assert top_k(logits, 3).tolist() == [[1, 2, 4], [0, 1, 2]]
    assert top_k(logits[:, :, None, None], 2).tolist() == [[1, 2], [0, 1]]


def test_top_k_accuracy_and_agreement_are_the_definitions():
    r = np.random.default_rng(1)
    ref = r.standard_normal((50, 20))
    test = ref + r.standard_normal(ref.shape)
    labels = r.integers(0, 20, 50)
    for k in (1, 5):
        ranked = np.argsort(-test, axis=1)[:, :k]
        assert top_k_accuracy(test, labels, k) == np.mean(
            [labels[i] in ranked[i] for i in range(50)])
        ref_top1 = np.argmax(ref, axis=1)
        assert top_k_agreement(ref, test, k) == np.mean(
            [ref_top1[i] in ranked[i] for i in range(50)])


def test_sample_cosine_is_per_sample():
    ref = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    test = np.array([[0.0, 2.0], [2.0, 2.0], [0.0, 0.0]])
    assert sample_cosines(ref, test).tolist() == pytest.approx([0.0, 1.0, 1.0])
    assert mean_sample_cosine(ref, test) == pytest.approx(2 / 3)


def test_classifier_streaming_equals_one_shot():
    r = np.random.default_rng(2)
    ref = r.standard_normal((23, 10)).astype(np.float32)
    test = (ref + r.standard_normal(ref.shape)).astype(np.float32)
    labels = r.integers(0, 10, 23)
    acc = ClassifierAccumulator()
    for start in range(0, 23, 4):
        s = slice(start, start + 4)
        acc.update(ref[s, :, None, None], test[s, :, None, None], labels[s])
    m = acc.result()
    assert m.samples == 23
    assert m.top1_agreement == top_k_agreement(ref, test, 1)
    assert m.top5_agreement == top_k_agreement(ref, test, 5)
    assert m.mean_cosine == pytest.approx(mean_sample_cosine(ref, test), rel=1e-12)
    assert m.float_top1 == top_k_accuracy(ref, labels, 1)
    assert m.float_top5 == top_k_accuracy(ref, labels, 5)
    assert m.int8_top1 == top_k_accuracy(test, labels, 1)
    assert m.int8_top5 == top_k_accuracy(test, labels, 5)


def test_classifier_without_labels_has_no_accuracy():
    acc = ClassifierAccumulator()
    acc.update(np.eye(3), np.eye(3))
    m = acc.result()
    assert (m.top1_agreement, m.mean_cosine) == (1.0, 1.0)
    assert m.float_top1 is None and m.int8_top5 is None
    acc.update(np.eye(3), np.eye(3), np.arange(3))
    with pytest.raises(ValueError, match="labels were given for 3 of 6"):
        acc.result()


def test_per_class_counts_stream_and_match_a_direct_count():
    r = np.random.default_rng(4)
    ref = r.standard_normal((31, 7))
    test = ref + r.standard_normal(ref.shape)
    labels = r.integers(2, 6, 31)   # classes 0, 1 and 6 have no sample
    acc = ClassifierAccumulator()
    for start in range(0, 31, 5):
        s = slice(start, start + 5)
        acc.update(ref[s], test[s], labels[s])
    f1, q1 = ref.argmax(axis=1), test.argmax(axis=1)
    per_class = acc.result().per_class
    assert [a.label for a in per_class] == sorted(set(labels))
    for a in per_class:
        mine = labels == a.label
        assert (a.samples, a.float_top1, a.int8_top1, a.agreement) == (
            mine.sum(), (f1[mine] == a.label).sum(), (q1[mine] == a.label).sum(),
            (f1[mine] == q1[mine]).sum())
    assert sum(a.agreement for a in per_class) == round(acc.result().top1_agreement * 31)
    no_labels = ClassifierAccumulator()
    no_labels.update(ref, test)
    assert no_labels.result().per_class is None
