"""Standalone int8 ReLU and ReLU6 (spec int8 §12.8, §13)."""
from __future__ import annotations

import numpy as np

from tnnquant.testing import run_int8_layer

CODES = np.arange(-128, 128, dtype=np.int8).reshape(1, 2, 8, 16)


def test_relu_is_max_with_zero_on_the_codes():
    got = run_int8_layer("QuantizedReLU", "", CODES, scales=[[0.1]], out_scales=[[0.1]])
    np.testing.assert_array_equal(got, np.maximum(CODES.astype(int), 0))
    assert got.dtype == np.int8


def test_relu6_clamps_the_codes_at_6_not_6_over_scale():
    """TNN's int8 ReLU6 bug, reproduced: the clamp is the integer 6 whatever the scale."""
    got = run_int8_layer("ReLU6", "", CODES, scales=[[0.01]], out_scales=[[0.01]])
    np.testing.assert_array_equal(got, np.clip(CODES.astype(int), 0, 6))
