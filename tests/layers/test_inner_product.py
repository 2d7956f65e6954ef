"""InnerProduct fp32 kernel against onnxruntime Gemm and a direct numpy formula."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_ops import Const, run_onnx_op

from tnnquant.errors import UnsupportedError
from tnnquant.formats.rawbuffer import RawBuffer
from tnnquant.layers.inner_product import InnerProductResource
from tnnquant.testing import run_layer


def resource(weight, bias):
    weight = np.asarray(weight, np.float32)
    bias = np.zeros(0, np.float32) if bias is None else np.asarray(bias, np.float32)
    return InnerProductResource("layer", RawBuffer.of(weight), RawBuffer.of(bias))


def random_case(shape, n_out, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    k = int(np.prod(shape[1:]))
    return x, rng.standard_normal((n_out, k)).astype(np.float32), \
        rng.standard_normal(n_out).astype(np.float32)


@pytest.mark.parametrize("shape", [(1, 16), (3, 16), (2, 4, 3, 2), (2, 5, 1, 1)])
def test_inner_product_matches_gemm(shape):
    x, weight, bias = random_case(shape, 7)
    got = run_layer("InnerProduct", "7 1 0 1", x, resource=resource(weight, bias))
    x2d = x.reshape(shape[0], -1)
    expected = run_onnx_op("Gemm", x2d, Const(weight), Const(bias), transB=1)
    assert got.shape == (shape[0], 7)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_has_bias_zero_ignores_the_bias_buffer():
    x, weight, bias = random_case((2, 3, 2, 2), 5, seed=1)
    got = run_layer("InnerProduct", "5 0 0 1", x, resource=resource(weight, bias))
    expected = x.reshape(2, -1).astype(np.float64) @ weight.T.astype(np.float64)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_empty_bias_buffer_means_no_bias():
    x, weight, _ = random_case((2, 6), 4, seed=2)
    got = run_layer("InnerProduct", "4 1 0 1", x, resource=resource(weight, None))
    expected = x.astype(np.float64) @ weight.T.astype(np.float64)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_axis_2_keeps_the_leading_dims():
    # output = input dims before axis + [num_output]; K = product of the dims from 1
    x, weight, bias = random_case((2, 1, 6), 3, seed=3)
    got = run_layer("InnerProduct", "3 1 0 2", x, resource=resource(weight, bias))
    expected = x.reshape(2, 6).astype(np.float64) @ weight.T.astype(np.float64) + bias
    assert got.shape == (2, 1, 3)
    np.testing.assert_allclose(got.reshape(2, 3), expected, rtol=1e-5, atol=1e-5)


def test_weight_of_the_wrong_size_is_reported():
    x, weight, bias = random_case((1, 8), 3)
    with pytest.raises(UnsupportedError, match="weight has 24 values, expected num_output 3 x K 4"):
        run_layer("InnerProduct", "3 1 0 1", x[:, :4], resource=resource(weight, bias))
