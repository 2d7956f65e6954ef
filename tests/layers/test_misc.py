"""fp32 kernels of Gather, Const, Cast, Dropout and Reformat."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_ops import run_onnx_op

from tnnquant.errors import TnnQuantError
from tnnquant.formats.rawbuffer import DataType, RawBuffer
from tnnquant.layers._resources import ElementResource
from tnnquant.layers.gather import GatherResource
from tnnquant.testing import run_layer



def same(y: np.ndarray, ref: np.ndarray) -> None:
    assert y.dtype == ref.dtype and y.shape == ref.shape
    np.testing.assert_array_equal(y, ref)


@pytest.fixture
def x(rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((2, 5, 3, 4), dtype=np.float32)


def indices_resource(indices: np.ndarray) -> GatherResource:
    return GatherResource(0, None, 1, RawBuffer.of(indices.astype(np.int32),
                                                   dims=indices.shape))


@pytest.mark.parametrize("axis, indices", [(0, [1, 0, 1]), (1, [4, -1, 0, 2]),
                                           (-1, [[3, 0], [1, 1]]), (2, 2)])   # 2: a scalar index
def test_gather_indices_from_resource(x, axis, indices):
    indices = np.array(indices)
    y = run_layer("Gather", f"{axis} 0 1", x, resource=indices_resource(indices))
    same(y, run_onnx_op("Gather", x, indices.astype(np.int64), axis=axis))


def test_gather_data_from_resource_indices_from_blob(rng):
    # an embedding table: Gather 0 1 0 with the token ids as the input blob
    table = rng.standard_normal((6, 4), dtype=np.float32)
    res = GatherResource(1, RawBuffer.of(table, dims=table.shape), 0, None)
    ids = np.array([[5, 0, 2]], np.float32)   # the executor feeds every network input as float
    # float index blobs run on the numpy kernel, which checks that they hold integers
    same(run_layer("Gather", "0 1 0", ids, resource=res, exported=False),
         run_onnx_op("Gather", table, ids.astype(np.int64), axis=0))


def test_gather_int8_data_is_dequantized(rng):
    table = rng.integers(-127, 128, (6, 4)).astype(np.int8)
    res = GatherResource(1, RawBuffer.of(table, dims=table.shape), 0, None,
                         RawBuffer.of(np.array([0.5], np.float32)))
    y = run_layer("Gather", "0 1 0", np.array([3.0, 1.0], np.float32), resource=res,
                  exported=False)   # a float index blob
    same(y, table[[3, 1]].astype(np.float32) * np.float32(0.5))


@pytest.mark.parametrize("indices, message", [([5], "indices out of range"),
                                              ([-6], "indices out of range")])
def test_gather_errors(x, indices, message):
    with pytest.raises(TnnQuantError, match=message):
        run_layer("Gather", "1 0 1", x, resource=indices_resource(np.array(indices)))


def test_gather_indices_blob_must_be_integral(x):
    with pytest.raises(TnnQuantError, match="indices are not integers"):
        run_layer("Gather", "0 0 0", x, np.array([0.5], np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_const(dtype):
    values = np.arange(6).astype(dtype)
    y = run_layer("Const", "3 1 2 3", resource=ElementResource(RawBuffer.of(values)))
    same(y, values.reshape(1, 2, 3))


def test_const_dims_must_fit():
    with pytest.raises(TnnQuantError, match=r"dims \[4\] do not fit the 6 stored values"):
        run_layer("Const", "1 4", resource=ElementResource(RawBuffer.of(np.zeros(6, np.float32))))


@pytest.mark.parametrize("to, dtype", [(DataType.INT32, np.int32), (DataType.INT8, np.int8),
                                       (DataType.INT64, np.int64)])
def test_cast_to_integers_truncates(x, to, dtype):
    # like a C cast: toward zero
    same(run_layer("Cast", str(int(to)), x * 10), np.trunc(x * 10).astype(dtype))


def test_cast_to_float_keeps_values(x):
    same(run_layer("Cast", "0", x), x)


def test_cast_to_half_is_unsupported(x):
    with pytest.raises(TnnQuantError, match="cannot cast to data type 1"):
        run_layer("Cast", "1", x)


def test_dropout_is_identity(x):
    same(run_layer("Dropout", "", x), x)


def test_reformat_is_identity_in_fp32(x):
    same(run_layer("Reformat", "0 2", x), x)
    a, b = run_layer("Reformat", "0 2", x, x[:1], n_out=2)
    same(a, x)
    same(b, x[:1])
