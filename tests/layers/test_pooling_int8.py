"""Int8 Pooling (spec int8 §12.7, §13): max from -127, average as the truncated quotient of the
window sum, which x86 keeps in int16."""
from __future__ import annotations

import numpy as np
import pytest

from tnnquant.testing import run_int8_layer

MAX_3x3_S2_P1 = "0 3 3 2 2 1 1 -1 -1 -1 0 0 0 0"
AVG_3x3_S2_P1 = "1 3 3 2 2 1 1 -1 -1 -1 0 0 0 0"
GLOBAL_AVG = "1 0 0 1 1 0 0 -1 -1 -1 0 0 0 0"


def windows(x, k, s, p):
    """(n, c, oy, ox) -> in-bounds window values, by explicit loops."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    for y in range(oh):
        for xx in range(ow):
            r0, c0 = y * s - p, xx * s - p
            yield y, xx, x[:, :, max(r0, 0):min(r0 + k, h), max(c0, 0):min(c0 + k, w)]


def test_max_pooling_starts_at_minus_127():
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (2, 3, 7, 7)).astype(np.int8)
    x[0, 0] = -128          # an all -128 plane gives -127, not -128
    got = run_int8_layer("QuantizedPooling", MAX_3x3_S2_P1, x, scales=[[0.1]],
                         out_scales=[[0.1]])
    for y, xx, win in windows(x, 3, 2, 1):
        np.testing.assert_array_equal(got[:, :, y, xx],
                                      np.maximum(win.max(axis=(2, 3)), -127))
    assert (got[0, 0] == -127).all()


@pytest.mark.parametrize("device", ["x86", "naive"])
def test_average_pooling_truncates_toward_zero(device):
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (1, 4, 6, 6)).astype(np.int8)
    got = run_int8_layer("QuantizedPooling", AVG_3x3_S2_P1, x, scales=[[0.1]],
                         out_scales=[[0.1]], device=device)
    for y, xx, win in windows(x, 3, 2, 1):
        total = win.astype(np.int64).sum(axis=(2, 3))
        count = win.shape[2] * win.shape[3]          # padding excluded
        want = np.trunc(total / count).astype(np.int64)
        np.testing.assert_array_equal(got[:, :, y, xx], want)


@pytest.mark.parametrize("device, want", [("x86", -99), ("naive", 127)])
def test_global_average_of_17x17_wraps_in_int16_on_x86(device, want):
    x = np.full((1, 1, 17, 17), 127, np.int8)   # sum 36703 > 32767 wraps to -28833
    got = run_int8_layer("QuantizedPooling", GLOBAL_AVG, x, scales=[[0.1]], out_scales=[[0.1]],
                         device=device)
    assert got.item() == want          # x86: trunc(-28833 / 289) = -99


def test_adaptive_pooling_has_no_int8_path():
    with pytest.raises(ValueError, match="no int8 adaptive pooling"):
        run_int8_layer("QuantizedPooling", "1 0 0 1 1 0 0 -1 -1 -1 0 1 2 2",
                       np.zeros((1, 1, 4, 4), np.int8), scales=[[1.0]], out_scales=[[1.0]])
