"""fp32 kernels of the normalisation and per-channel affine layers, and Softmax."""
from __future__ import annotations

import functools

import numpy as np
import pytest
from onnx_ops import run_onnx_op

from tnnquant.errors import TnnQuantError
from tnnquant.formats.rawbuffer import RawBuffer
from tnnquant.layers._resources import BatchNormResource, ElementResource
from tnnquant.layers.scale import ScaleResource
from tnnquant.testing import assert_kernel_close, run_layer



close = functools.partial(assert_kernel_close, tol=1e-5)


def buf(values: np.ndarray) -> RawBuffer:
    return RawBuffer.of(np.asarray(values, np.float32), dims=np.shape(values))


@pytest.fixture
def x(rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((2, 3, 4, 5), dtype=np.float32) * 3 + 1


@pytest.fixture
def scale(rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(3, dtype=np.float32)


@pytest.fixture
def bias(rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(3, dtype=np.float32)


# --- BatchNormCxx, Scale, BiasAdd: y = x * scale[c] + bias[c] in float32, bit for bit ---------

def test_batch_norm(x, scale, bias):
    y = run_layer("BatchNormCxx", "", x, resource=BatchNormResource(buf(scale), buf(bias)))
    np.testing.assert_array_equal(y, x * scale.reshape(3, 1, 1) + bias.reshape(3, 1, 1))


def test_batch_norm_single_scale_and_empty_bias(x):
    # spec §2.5: a 1-element scale applies to every channel; an empty bias reads as zeros
    res = BatchNormResource(buf([2.5]), RawBuffer.of(np.zeros(0, np.float32)))
    np.testing.assert_array_equal(run_layer("BatchNormCxx", "", x, resource=res),
                                  x * np.float32(2.5))


def test_batch_norm_2d_input(rng, scale, bias):
    x = rng.standard_normal((4, 3), dtype=np.float32)
    y = run_layer("BatchNormCxx", "", x, resource=BatchNormResource(buf(scale), buf(bias)))
    np.testing.assert_array_equal(y, x * scale + bias)


def test_batch_norm_channel_mismatch(x):
    res = BatchNormResource(buf([1.0, 2.0]), buf([0.0, 0.0]))
    with pytest.raises(TnnQuantError, match="scale has 2 values, the input has 3 channels"):
        run_layer("BatchNormCxx", "", x, resource=res)


@pytest.mark.parametrize("bias_term", [0, 1])
def test_scale(x, scale, bias, bias_term):
    res = ScaleResource("scale", bias_term, buf(scale), buf(bias) if bias_term else None)
    ref = x * scale.reshape(3, 1, 1) + (bias.reshape(3, 1, 1) if bias_term else np.float32(0))
    np.testing.assert_array_equal(run_layer("Scale", f"1 1 {bias_term}", x, resource=res), ref)


def test_scale_other_axes_are_rejected(x, scale):
    res = ScaleResource("scale", 0, buf(scale))
    with pytest.raises(TnnQuantError, match="axis 2 is not supported"):
        run_layer("Scale", "2 1 0", x, resource=res)


def test_bias_add(x, bias):
    y = run_layer("BiasAdd", "", x, resource=ElementResource(buf(bias)))
    np.testing.assert_array_equal(y, x + bias.reshape(3, 1, 1))


# --- instance, group and layer normalisation ------------------------------------------------

@pytest.mark.parametrize("params, eps", [("", 1e-5), ("3 0.01", 0.01)])
def test_inst_batch_norm(x, scale, bias, params, eps):
    y = run_layer("InstBatchNormCxx", params, x, resource=BatchNormResource(buf(scale), buf(bias)))
    close(y, run_onnx_op("InstanceNormalization", x, scale, bias, epsilon=eps))


def test_inst_batch_norm_one_scale_for_every_channel(x):
    res = BatchNormResource(buf([2.0]), buf([0.5]))
    ref = run_onnx_op("InstanceNormalization", x, np.full(3, 2, np.float32),
                      np.full(3, 0.5, np.float32), epsilon=1e-5)
    close(run_layer("InstBatchNormCxx", "", x, resource=res), ref)


def test_inst_batch_norm_empty_bias(x, scale):
    res = BatchNormResource(buf(scale), RawBuffer.of(np.zeros(0, np.float32)))
    ref = run_onnx_op("InstanceNormalization", x, scale, np.zeros(3, np.float32), epsilon=1e-5)
    close(run_layer("InstBatchNormCxx", "", x, resource=res), ref)


@pytest.mark.parametrize("group, values", [(1, 4), (2, 4), (4, 4), (2, 1)])
def test_group_norm(rng, group, values):
    # values: per channel, or one for every channel
    x = rng.standard_normal((2, 4, 3, 5), dtype=np.float32) * 2 + 1
    scale = rng.standard_normal(values, dtype=np.float32)
    bias = rng.standard_normal(values, dtype=np.float32)
    # reference: instance normalisation of the [N, G, C/G*H*W] view, then the channel affine
    ones, zeros = np.ones(group, np.float32), np.zeros(group, np.float32)
    normed = run_onnx_op("InstanceNormalization", x.reshape(2, group, -1), ones, zeros,
                     epsilon=1e-3).reshape(x.shape)
    ref = normed * scale.reshape(-1, 1, 1) + bias.reshape(-1, 1, 1)
    close(run_layer("GroupNorm", f"{group} 0.001", x, scale, bias), ref)


def test_group_norm_needs_scale_and_bias(x):
    with pytest.raises(TnnQuantError, match=r"expected 3 inputs \(data, scale, bias\), got 1"):
        run_layer("GroupNorm", "1 1e-5", x)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_layer_norm(x, rng, k):
    inner = x.shape[4 - k:]
    scale = rng.standard_normal(inner, dtype=np.float32)
    bias = rng.standard_normal(inner, dtype=np.float32)
    ref = run_onnx_op("LayerNormalization", x, scale, bias, axis=-k, epsilon=1e-4)
    close(run_layer("LayerNorm", f"{k} 0.0001", x, scale, bias), ref)


@pytest.mark.parametrize("k", [1, 2])
def test_layer_norm_with_constant_scale_and_bias_runs_in_onnxruntime(rng, k):
    """As converted models hold them (the constant map), scale and bias are constants, the
    graph's batch dim is symbolic and its export runs (the test above feeds them as inputs,
    which the export takes too, built for the inputs' own dims)."""
    from tnnquant.exec.executor import Executor
    from tnnquant.testing import GraphBuilder
    x = rng.standard_normal((1, 6, 4, 5), dtype=np.float32) * 2 + 1
    inner = x.shape[4 - k:]
    scale = rng.standard_normal(inner, dtype=np.float32)
    bias = rng.standard_normal(inner, dtype=np.float32)
    b = GraphBuilder()
    data = b.input("data", x.shape)
    b.constants.update(scale=buf(scale.reshape(-1)), bias=buf(bias.reshape(-1)))
    out = b.layer("LayerNorm", [data, "scale", "bias"], f"{k} 0.0001")
    executor = Executor(b.build(out))
    got = executor.run({"data": x})[out]
    assert executor.backend == "onnxruntime"
    close(got, run_onnx_op("LayerNormalization", x, scale, bias, axis=-k, epsilon=1e-4))


def test_layer_norm_scale_must_cover_the_normalised_dims(x):
    scale = np.ones(4, np.float32)
    with pytest.raises(TnnQuantError, match=r"scale has 4 values, the last 2 dims \(4, 5\)"):
        run_layer("LayerNorm", "2 1e-5", x, scale, scale)


# --- Normalize, LRN ---------------------------------------------------------------------------

@pytest.mark.parametrize("p", [1, 2])
def test_normalize(x, p):
    y = run_layer("Normalize", f"0 1e-12 1 1 {p}", x)
    close(y, run_onnx_op("LpNormalization", x, axis=1, p=p))


def test_normalize_eps_bounds_the_norm():
    # x / max(||x||, eps): a zero vector stays zero, a short one is divided by eps
    x = np.array([[[[0.0, 0.3]], [[0.0, 0.4]]]], np.float32)   # norms 0 and 0.5 across C
    y = run_layer("Normalize", "0 2 1 1 2", x)
    np.testing.assert_allclose(y, x / 2, rtol=1e-6)
    np.testing.assert_allclose(run_layer("Normalize", "", x)[..., 1], x[..., 1] / 0.5, rtol=1e-6)


@pytest.mark.parametrize("params", ["1 1e-12 1 1 2", "0 1e-12 1 2 2", "0 1e-12 1 1 3"])
def test_normalize_unsupported_settings(x, params):
    with pytest.raises(TnnQuantError, match="is not supported"):
        run_layer("Normalize", params, x)


@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn(rng, size):
    x = rng.standard_normal((2, 7, 3, 4), dtype=np.float32) * 2
    y = run_layer("LRN", f"0.0001 0.75 1 {size}", x)
    close(y, run_onnx_op("LRN", x, size=size, alpha=1e-4, beta=0.75, bias=1.0))


def test_lrn_even_size_window(rng):
    # ONNX window [c - (size-1)//2, c + size//2] (onnxruntime itself rejects even sizes)
    x = rng.standard_normal((2, 7, 3, 4), dtype=np.float64) * 2
    size, alpha, beta, bias = 4, 0.3, 0.75, 1.5
    ref = np.empty_like(x)
    for c in range(7):
        window = np.square(x[:, max(0, c - 1):c + 3]).sum(axis=1)
        ref[:, c] = x[:, c] / (bias + alpha / size * window) ** beta
    close(run_layer("LRN", f"{alpha} {beta} {bias} {size}", x.astype(np.float32),
                    exported=False), ref.astype(np.float32))


def test_lrn_strong(rng):
    x = rng.standard_normal((1, 6, 2, 2), dtype=np.float32) * 3
    close(run_layer("LRN", "0.5 0.6 2 3", x), run_onnx_op("LRN", x, size=3, alpha=0.5, beta=0.6,
                                                     bias=2.0))


# --- Softmax -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["Softmax", "SoftmaxCaffe"])
@pytest.mark.parametrize("params, axis", [("", 1), ("1", 1), ("-1", -1), ("2", 2), ("0", 0)])
def test_softmax(x, kind, params, axis):
    close(run_layer(kind, params, x * 10), run_onnx_op("Softmax", x * 10, axis=axis), tol=1e-6)


def test_softmax_yolov8n_dfl(rng):
    # yolov8n: SoftmaxCaffe /model.22/dfl/Softmax ... 1 on the permuted [1, 16, 4, 2100]
    x = rng.standard_normal((1, 16, 4, 2100), dtype=np.float32) * 5
    close(run_layer("SoftmaxCaffe", "1", x), run_onnx_op("Softmax", x, axis=1), tol=1e-6)
