"""The MSE weight clipping search against a brute-force search written here."""
from __future__ import annotations

import warnings

import numpy as np

from tnnquant.weights import WEIGHT_METHODS
from tnnquant.weights.methods.mse import CLIP_MIN, CLIP_STEPS


def round_half_away(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def test_mse_weights_match_brute_force_and_never_lose_to_minmax():
    rng = np.random.default_rng(0)
    w = np.concatenate([rng.normal(size=(3, 64)), rng.standard_t(2, (3, 64))]).astype(np.float32)
    w[0, 0] = 0
    q, scale, zero_point = WEIGHT_METHODS.get("mse")(w)
    assert q.dtype == np.int8 and np.abs(q).max() <= 127 and not zero_point.any()
    _, minmax_scale, _ = WEIGHT_METHODS.get("minmax")(w)
    for row, qs, s, s_mm in zip(w, q, scale, minmax_scale):
        amax = np.abs(row).max()
        errors = []
        for ratio in np.linspace(CLIP_MIN, 1, CLIP_STEPS):
            st = np.float32(amax * np.float32(ratio) / 127)
            codes = np.clip(round_half_away(row / st), -127, 127)
            errors.append(((row - codes * st) ** 2).sum())
        got = ((row - qs.astype(np.float64) * s) ** 2).sum()
        assert got <= min(errors) * (1 + 1e-5)
        minmax_err = ((row - np.clip(round_half_away(row / s_mm), -127, 127) * s_mm) ** 2).sum()
        assert got <= minmax_err * (1 + 1e-5)


def test_mse_weights_all_zero_row():
    q, scale, _ = WEIGHT_METHODS.get("mse")(np.zeros((2, 5), np.float32))
    assert not q.any() and not scale.any()


def test_subnormal_row_quantizes_quietly():
    """A row whose maximum is subnormal (a shipped PP-OCR model has them): no numpy warning,
    no NaN cast to int8 (its zeros stay 0), the other rows unaffected."""
    w = np.array([[3e-40, -1e-40, 0, 0], [1, 0.5, -0.25, 0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        q, s, _ = WEIGHT_METHODS.get("mse")(w)
    assert q[0, 2] == 0 and q[0, 3] == 0 and q[0, 0] > 0 > q[0, 1]
    alone, alone_scale, _ = WEIGHT_METHODS.get("mse")(w[1:])
    assert (q[1] == alone[0]).all() and s[1] == alone_scale[0]
