"""GELU kernel against onnxruntime's Gelu (opset 20) and the erf formula in double."""
from __future__ import annotations

import math

import numpy as np
from onnx_ops import run_onnx_op

from tnnquant.layers.gelu import erf
from tnnquant.testing import assert_kernel_close, run_layer


def test_gelu_like_onnxruntime(rng):
    x = rng.standard_normal((2, 3, 4, 5), dtype=np.float32) * 4
    assert_kernel_close(run_layer("GELU", "0", x), run_onnx_op("Gelu", x, opset=20), tol=1e-6)


def test_erf_within_float32_precision():
    x = np.linspace(-7, 7, 20001)
    reference = np.array([math.erf(v) for v in x])
    assert np.abs(erf(x) - reference).max() < 2e-7
