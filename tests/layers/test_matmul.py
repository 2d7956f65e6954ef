"""MatMul fp32 kernel against onnxruntime MatMul (numpy broadcasting rules)."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_ops import Const, run_onnx_op

from tnnquant.errors import UnsupportedError
from tnnquant.formats.rawbuffer import RawBuffer
from tnnquant.layers.matmul import MatMulResource
from tnnquant.testing import run_layer


def rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def weight_resource(weight):
    return MatMulResource(RawBuffer.of(weight, dims=weight.shape))


SHAPES = [((2, 3, 4), (4, 5)), ((2, 3, 4, 5), (5, 6)), ((1, 4, 5), (2, 1, 5, 3)), ((3, 4), (4, 2))]


@pytest.mark.parametrize("a_shape,b_shape", SHAPES)
def test_two_blob_inputs(a_shape, b_shape):
    a, b = rand(a_shape, 0), rand(b_shape, 1)
    got = run_layer("MatMul", "-1", a, b)
    np.testing.assert_allclose(got, run_onnx_op("MatMul", a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("a_shape,b_shape", SHAPES)
def test_weight_on_the_right(a_shape, b_shape):
    x, weight = rand(a_shape, 2), rand(b_shape, 3)
    got = run_layer("MatMul", "1", x, resource=weight_resource(weight))
    expected = run_onnx_op("MatMul", x, Const(weight))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("a_shape,b_shape", SHAPES)
def test_weight_on_the_left(a_shape, b_shape):
    weight, x = rand(a_shape, 4), rand(b_shape, 5)
    got = run_layer("MatMul", "0", x, resource=weight_resource(weight))
    expected = run_onnx_op("MatMul", Const(weight), x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_weight_without_dims_is_reported():
    resource = MatMulResource(RawBuffer.of(rand((4, 2), 0)))
    with pytest.raises(UnsupportedError, match="dims"):
        run_layer("MatMul", "1", rand((3, 4), 1), resource=resource)
