"""fp32 kernels of Add/Sub/Mul/Div/Maximum/Minimum against onnxruntime."""
from __future__ import annotations

import functools

import warnings

import numpy as np
import pytest
from onnx_ops import run_onnx_op

from tnnquant.errors import TnnQuantError
from tnnquant.formats.rawbuffer import RawBuffer
from tnnquant.layers._resources import ElementResource
from tnnquant.testing import assert_kernel_close, run_layer

OPS = [("Add", "Add"), ("Sub", "Sub"), ("Mul", "Mul"), ("Div", "Div"), ("Maximum", "Max"),
       ("Minimum", "Min")]



close = functools.partial(assert_kernel_close, tol=1e-6)


def const(values: np.ndarray, dims: tuple[int, ...] | None = None) -> ElementResource:
    return ElementResource(RawBuffer.of(values, dims=dims))


def randn(rng: np.random.Generator, *shape: int) -> np.ndarray:
    # away from zero so that Div stays well conditioned
    x = rng.standard_normal(shape, dtype=np.float32)
    return np.where(np.abs(x) < 0.1, np.float32(0.5), x)


@pytest.mark.parametrize("tnn, onnx_type", OPS)
@pytest.mark.parametrize("shape0, shape1", [((2, 3, 4, 5), (2, 3, 4, 5)),
                                            ((2, 3, 4, 5), (1, 3, 1, 1)),
                                            ((1, 3, 1, 1), (2, 3, 4, 5)),
                                            ((2, 3, 4, 5), (3, 1, 5)),
                                            ((4, 1), (2, 3, 1, 5))])
def test_two_blobs_broadcast(rng, tnn, onnx_type, shape0, shape1):
    a, b = randn(rng, *shape0), randn(rng, *shape1)
    close(run_layer(tnn, "-1", a, b), run_onnx_op(onnx_type, a, b))


@pytest.mark.parametrize("tnn, onnx_type", [("Add", "Sum"), ("Maximum", "Max"),
                                            ("Minimum", "Min")])
def test_variadic_ops_fold_n_inputs(rng, tnn, onnx_type):
    xs = [randn(rng, 2, 3, 4, 5), randn(rng, 1, 3, 1, 1), randn(rng, 2, 3, 4, 5)]
    close(run_layer(tnn, "-1", *xs), run_onnx_op(onnx_type, *xs))


def test_mul_folds_n_inputs_left_to_right(rng):
    a, b, c = randn(rng, 2, 3, 4, 5), randn(rng, 2, 3, 4, 5), randn(rng, 5)
    np.testing.assert_array_equal(run_layer("Mul", "-1", a, b, c), (a * b) * c)


@pytest.mark.parametrize("tnn", ["Sub", "Div"])
def test_sub_and_div_take_two_inputs(rng, tnn):
    xs = [randn(rng, 2, 3) for _ in range(3)]
    with pytest.raises(TnnQuantError, match="expected 2 inputs, got 3"):
        run_layer(tnn, "-1", *xs)


@pytest.mark.parametrize("tnn, onnx_type", OPS)
@pytest.mark.parametrize("x_shape, c_dims", [((2, 3, 4, 5), (3, 1, 1)),
                                             ((2, 3, 4, 5), (1, 3, 4, 5)),
                                             ((2, 2, 7), (1, 2, 7)),   # yolov8n anchors
                                             ((2, 4, 7), (1, 1, 7)),   # yolov8n strides
                                             ((2, 4, 7), (1, 1, 1)),
                                             ((2, 5), (1, 1, 1, 1))])  # const of higher rank
@pytest.mark.parametrize("index", [0, 1])
def test_constant_operand_uses_its_dims(rng, tnn, onnx_type, x_shape, c_dims, index):
    x, c = randn(rng, *x_shape), randn(rng, *c_dims)
    y = run_layer(tnn, str(index), x, resource=const(c, c_dims))
    # weight_input_index 0: const op x; 1: x op const
    ref = run_onnx_op(onnx_type, c, x) if index == 0 else run_onnx_op(onnx_type, x, c)
    close(y, ref)


@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.parametrize("size, shape", [(1, ()), (3, (1, 3, 1, 1)), (3 * 4 * 5, (1, 3, 4, 5))])
def test_legacy_constant_without_dims(rng, index, size, shape):
    # spec §2.5: 1 value -> scalar, C values -> per channel, C*H*W values -> per sample
    x, c = randn(rng, 2, 3, 4, 5), randn(rng, size)
    y = run_layer("Sub", str(index), x, resource=const(c))
    c = c.reshape(shape)
    close(y, run_onnx_op("Sub", c, x) if index == 0 else run_onnx_op("Sub", x, c))


def test_legacy_constant_that_fits_nothing_is_an_error(rng):
    with pytest.raises(TnnQuantError, match="constant operand without dims has 7 values"):
        run_layer("Add", "1", randn(rng, 2, 3, 4, 5), resource=const(randn(rng, 7)))


def test_constant_dims_must_match_its_values(rng):
    res = ElementResource(RawBuffer(randn(rng, 6), dims=(1, 5)))
    with pytest.raises(TnnQuantError, match="has 6 values but dims"):
        run_layer("Add", "1", randn(rng, 2, 5), resource=res)


def test_one_input_without_constant_is_an_error(rng):
    with pytest.raises(TnnQuantError, match="no constant operand"):
        run_layer("Sub", "1", randn(rng, 2, 3))


def test_index_minus_one_with_a_constant_means_x_op_const(rng):
    # TNN puts the constant first only for index 0
    x, c = randn(rng, 2, 3), randn(rng, 3)
    np.testing.assert_array_equal(run_layer("Sub", "-1", x, resource=const(c, (3,))), x - c)


def test_division_by_zero_gives_inf_silently():
    x = np.array([[1.0, -1.0, 0.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = run_layer("Div", "1", x, resource=const(np.zeros(1, np.float32), (1,)))
    assert y[0, 0] == np.inf and y[0, 1] == -np.inf and np.isnan(y[0, 2])
