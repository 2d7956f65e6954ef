"""fp32 kernels of the element-wise activations against onnxruntime or a numpy formula."""
from __future__ import annotations

import functools

import warnings

import numpy as np
import pytest
from onnx_ops import run_onnx_op

from tnnquant.errors import TnnQuantError
from tnnquant.formats.rawbuffer import RawBuffer
from tnnquant.layers.prelu import PReLUResource
from tnnquant.testing import assert_kernel_close, run_layer



close = functools.partial(assert_kernel_close, tol=1e-6)


@pytest.fixture
def x(rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((2, 3, 4, 5), dtype=np.float32) * 4


@pytest.mark.parametrize("tnn, onnx_type", [("ReLU", "Relu"), ("Sigmoid", "Sigmoid"),
                                            ("Tanh", "Tanh"), ("Abs", "Abs")])
def test_unary_like_onnx(x, tnn, onnx_type):
    close(run_layer(tnn, "", x), run_onnx_op(onnx_type, x))


def test_relu6(x):
    close(run_layer("ReLU6", "", x), run_onnx_op("Clip", x, np.float32(0), np.float32(6)))


def test_sigmoid_saturates_without_warnings():
    x = np.array([[-200.0, 0.0, 200.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(run_layer("Sigmoid", "", x), [[0.0, 0.5, 1.0]])
        np.testing.assert_array_equal(run_layer("Swish", "", x), [[-0.0, 0.0, 200.0]])


def test_swish(x):
    close(run_layer("Swish", "", x), x / (1 + np.exp(-x)))


@pytest.mark.parametrize("params, alpha", [("", 1.0), ("0.7", 0.7)])
def test_elu(x, params, alpha):
    close(run_layer("Elu", params, x), run_onnx_op("Elu", x, alpha=alpha))


@pytest.mark.parametrize("params, exponent, scale, shift",
                         [("", 1.0, 1.0, 0.0), ("2 3 0.5", 2.0, 3.0, 0.5),
                          ("0.5 1 10", 0.5, 1.0, 10.0), ("-1 2 0", -1.0, 2.0, 0.0)])
def test_power(x, params, exponent, scale, shift):
    ref = (shift + scale * x.astype(np.float64)) ** exponent
    close(run_layer("Power", params, x), ref.astype(np.float32), tol=1e-5)


@pytest.mark.parametrize("params, lo, hi", [("-1.5 2", -1.5, 2.0),
                                            ("-1", -1.0, 0.0),   # TNN: a missing max is 0.0
                                            ("", 0.0, 0.0)])
def test_clip(x, params, lo, hi):
    close(run_layer("Clip", params, x), run_onnx_op("Clip", x, np.float32(lo), np.float32(hi)))


@pytest.mark.parametrize("params, alpha, beta", [("", 1.0, 0.0),   # TNN defaults, not ONNX's
                                                 ("0.2 0.5", 0.2, 0.5)])
def test_hard_sigmoid(x, params, alpha, beta):
    close(run_layer("HardSigmoid", params, x),
          run_onnx_op("HardSigmoid", x, alpha=alpha, beta=beta))


def test_hard_swish_one_input(x):
    close(run_layer("HardSwish", f"{1 / 6!r} 0.5", x), run_onnx_op("HardSwish", x))


def test_hard_swish_defaults_are_tnn_ones(x):
    close(run_layer("HardSwish", "", x), x * np.clip(x, 0, 1))


def test_hard_swish_two_inputs_broadcast_gate(rng):
    # pplcnet: HardSwish Mul.2 2 1 <features> <gate [N,C,1,1]> 0.166667 0.5
    x0 = rng.standard_normal((2, 3, 4, 5), dtype=np.float32)
    x1 = rng.standard_normal((2, 3, 1, 1), dtype=np.float32) * 4
    gate = run_onnx_op("HardSigmoid", x1, alpha=0.166667, beta=0.5)
    close(run_layer("HardSwish", "0.166667 0.5", x0, x1), x0 * gate)


def prelu_resource(slope: np.ndarray, dims: tuple[int, ...]) -> PReLUResource:
    return PReLUResource("prelu", RawBuffer.of(slope, dims=dims))


@pytest.mark.parametrize("params", ["0 0", "", "2 0"])   # only the word 1 means shared
def test_prelu_per_channel(x, params):
    slope = np.array([0.1, -0.5, 2.0], np.float32)
    res = prelu_resource(slope, (1, 3, 1, 1))   # mtcnn stores [1,C,1,1]
    close(run_layer("PReLU", params, x, resource=res),
          run_onnx_op("PRelu", x, slope.reshape(3, 1, 1)))


def test_prelu_2d_input(rng):
    # mtcnn p_re_lu_11 follows an InnerProduct: [N, 256] input, slope dims [256]
    x = rng.standard_normal((2, 6), dtype=np.float32)
    slope = rng.standard_normal(6, dtype=np.float32)
    res = prelu_resource(slope, (6,))
    close(run_layer("PReLU", "0 0", x, resource=res), run_onnx_op("PRelu", x, slope))


def test_prelu_channel_shared(x):
    res = prelu_resource(np.array([0.25], np.float32), (1,))
    close(run_layer("PReLU", "1 0", x, resource=res),
          run_onnx_op("PRelu", x, np.array([0.25], np.float32)))


def test_prelu_slope_count_mismatch_is_an_error(x):
    res = prelu_resource(np.ones(2, np.float32), (2,))
    with pytest.raises(TnnQuantError, match="slope has 2 values, the input has 3 channels"):
        run_layer("PReLU", "0 0", x, resource=res)
