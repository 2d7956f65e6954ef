"""fp32 kernels of the data-movement layers against onnxruntime or a numpy formula."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_ops import run_onnx_op

from tnnquant.errors import TnnQuantError
from tnnquant.testing import run_layer



def i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


@pytest.fixture
def x(rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((2, 3, 4, 5), dtype=np.float32)


def same(y: np.ndarray, ref: np.ndarray) -> None:
    assert y.dtype == ref.dtype
    np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize("params, axis", [("1", 1), ("-1", -1), ("0", 0), ("", 1)])
def test_concat(rng, params, axis):
    shapes = {1: [(2, 1, 4, 5), (2, 3, 4, 5), (2, 2, 4, 5)],
              -1: [(2, 3, 4, 1), (2, 3, 4, 2), (2, 3, 4, 3)],
              0: [(1, 3, 4, 5), (2, 3, 4, 5), (1, 3, 4, 5)]}[axis]
    xs = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    same(run_layer("Concat", params, *xs), run_onnx_op("Concat", *xs, axis=axis))


def test_concat_axis_out_of_range(x):
    with pytest.raises(TnnQuantError, match="axis 4 is out of range for a 4-d input"):
        run_layer("Concat", "4", x, x)


def test_split_single_output_is_the_input(x):
    same(run_layer("Split", "", x), x)


@pytest.mark.parametrize("shape, params, axis, sizes", [
    ((2, 3, 4, 5), "1 2 1 2", 1, (1, 2)),
    ((2, 3, 4, 5), "-1 3 1 3 1", 3, (1, 3, 1)),
    ((2, 3, 4, 5), "2 1 4", 2, (4,)),
    ((2, 82, 2100), "1 2 64 18", 1, (64, 18)),   # yolov8n /model.22/Split_1
])
def test_splitv(rng, shape, params, axis, sizes):
    x = rng.standard_normal(shape, dtype=np.float32)
    ys = run_layer("SplitV", params, x, n_out=len(sizes))
    ys = ys if len(sizes) > 1 else [ys]
    begin = 0
    for y, size in zip(ys, sizes):   # consecutive slices along the axis
        index = [slice(None)] * x.ndim
        index[axis] = slice(begin, begin + size)
        same(y, x[tuple(index)])
        begin += size


def test_splitv_sizes_must_cover_the_axis(x):
    with pytest.raises(TnnQuantError, match=r"slice sizes \[1, 1\] do not split dimension 1"):
        run_layer("SplitV", "1 2 1 1", x, n_out=2)


@pytest.mark.parametrize("shape, params, onnx_shape", [
    ((2, 64, 2100), "0 4 4 0 4 16 2100 0", (0, 4, 16, 2100)),   # yolov8n dfl
    ((2, 4, 1, 2100), "0 3 3 0 4 2100 0", (0, 4, 2100)),         # yolov8n dfl Reshape_1
    ((2, 6, 5, 4), "0 3 3 0 0 -1 0", (0, 0, -1)),               # yolov8n head
    ((2, 8, 1, 1), "0 2 2 -1 0 0", (-1, 0)),                    # pplcnet flatten
    ((2, 8, 1, 1), "0 4 4 0 -1 1 1", (0, -1, 1, 1)),            # 7 words: reshape_type 0
    ((2, 3, 4, 5), "1 2 2 0 -1 0", (0, 0, -1)),                 # axis 1 copies dim 0
    ((2, 3, 4, 5), "0 -1 2 0 -1 0", (0, -1)),                   # num_axes -1 = count
    ((2, 3, 4, 5), "0 3 3 6 2 10 0", (6, 2, 10)),               # no 0 or -1
])
def test_reshape(rng, shape, params, onnx_shape):
    x = rng.standard_normal(shape, dtype=np.float32)
    same(run_layer("Reshape", params, x), run_onnx_op("Reshape", x, i64(*onnx_shape)))


@pytest.mark.parametrize("params, out_shape", [("0 4 4 0 6 2 2 1", (2, 6, 2, 2)),
                                               ("0 2 2 0 -1 1", (2, 24)),
                                               ("0 3 3 0 4 -1 1", (2, 4, 6))])
def test_reshape_tensorflow_order(rng, params, out_shape):
    # reshape_type 1: the NHWC view is reshaped, then moved back to NCHW
    x = rng.standard_normal((2, 3, 4, 2), dtype=np.float32)
    nhwc = run_onnx_op("Transpose", x, perm=[0, 2, 3, 1])
    nhwc_out = out_shape[:1] + out_shape[2:] + out_shape[1:2] if len(out_shape) > 2 else out_shape
    y = run_onnx_op("Reshape", nhwc, i64(*nhwc_out))
    if len(out_shape) > 2:
        perm = [0, len(out_shape) - 1] + list(range(1, len(out_shape) - 1))
        y = run_onnx_op("Transpose", y, perm=perm)
    same(run_layer("Reshape", params, x), y)


@pytest.mark.parametrize("params, message", [
    ("0 2 2 -1 -1 0", "more than one -1"),
    ("0 2 2 7 -1 0", "cannot infer the -1"),
    ("0 2 2 7 3 0", r"cannot reshape \(2, 3, 4, 5\)"),
    ("0 3 2 0 -1 0", "num_axes 3 differs from the 2 shape values"),
    ("0 2 2 0 -1 2", "unknown reshape_type 2"),
])
def test_reshape_errors(x, params, message):
    with pytest.raises(TnnQuantError, match=message):
        run_layer("Reshape", params, x)


@pytest.mark.parametrize("axis", [0, 1, 2, 4, -1])
def test_flatten(x, axis):
    same(run_layer("Flatten", str(axis), x), run_onnx_op("Flatten", x, axis=axis))


@pytest.mark.parametrize("orders", [(0, 2, 3, 1), (0, 2, 1, 3), (3, 2, 1, 0)])  # mtcnn, yolov8n
def test_permute(x, orders):
    same(run_layer("Permute", f"4 {' '.join(map(str, orders))}", x),
         run_onnx_op("Transpose", x, perm=list(orders)))


def test_permute_orders_must_be_a_permutation(x):
    with pytest.raises(TnnQuantError, match="not a permutation"):
        run_layer("Permute", "3 0 2 1", x)


@pytest.mark.parametrize("params, axes", [("2 2 -1", (2, -1)), ("1 0", (0,)), ("", None)])
def test_squeeze(rng, params, axes):
    x = rng.standard_normal((1, 3, 1, 1), dtype=np.float32)
    ref = run_onnx_op("Squeeze", x) if axes is None else run_onnx_op("Squeeze", x, i64(*axes))
    same(run_layer("Squeeze", params, x), ref)


def test_squeeze_of_a_dim_larger_than_one_is_an_error(x):
    with pytest.raises(TnnQuantError, match="cannot run"):
        run_layer("Squeeze", "1 1", x)


@pytest.mark.parametrize("params, axes", [("2 1 -1", (1, -1)), ("1 0", (0,)), ("2 0 5", (0, 5))])
def test_unsqueeze(x, params, axes):
    same(run_layer("Unsqueeze", params, x), run_onnx_op("Unsqueeze", x, i64(*axes)))


@pytest.mark.parametrize("in_shape, shape", [((3, 1, 5), (2, 1, 4, 1)),
                                             ((2, 3, 1, 1), (2, 3, 4, 5)),
                                             ((1, 3, 1, 1), (3, 1, 1))])
def test_expand(rng, in_shape, shape):
    x = rng.standard_normal(in_shape, dtype=np.float32)
    params = f"{len(shape)} {' '.join(map(str, shape))}"
    y = run_layer("Expand", params, x)
    same(y, run_onnx_op("Expand", x, i64(*shape)))
    assert y.flags.writeable


@pytest.mark.parametrize("params, repeats", [("1 2 1 3", (1, 2, 1, 3)), ("2 3", (1, 1, 2, 3)),
                                             ("", (1, 1, 1, 1))])
def test_tile(x, params, repeats):
    # fewer repeat counts than dims apply to the last dims
    same(run_layer("Tile", params, x), run_onnx_op("Tile", x, i64(*repeats)))


def test_tile_with_more_counts_than_dims_tiles_new_leading_dims(x):
    # numpy's tile: the input gains leading dims of size 1 (x is 4-d, 5 counts)
    same(run_layer("Tile", "3 1 1 1 2", x),
         run_onnx_op("Tile", x.reshape((1,) + x.shape), i64(3, 1, 1, 1, 2)))


@pytest.mark.parametrize("group", [1, 2, 3, 6])
def test_shuffle_channel(rng, group):
    x = rng.standard_normal((2, 6, 3, 2), dtype=np.float32)
    c = x.shape[1]
    # spec §3.3.23: output channel j*group + i takes input channel i*(C/group) + j
    source = np.array([i * (c // group) + j for j in range(c // group) for i in range(group)])
    same(run_layer("ShuffleChannel", str(group), x), x[:, source])


def test_shuffle_channel_group_must_divide_channels(rng):
    with pytest.raises(TnnQuantError, match="6 channels cannot be shuffled in 4 groups"):
        run_layer("ShuffleChannel", "4", rng.standard_normal((1, 6, 2, 2), dtype=np.float32))
