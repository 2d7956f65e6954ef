"""fp32 kernels of StridedSlice, StridedSliceV2, Pad and PadV2 against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_ops import run_onnx_op

from tnnquant.errors import TnnQuantError
from tnnquant.testing import run_layer

INT_MAX, INT_MIN = 2**31 - 1, -2**31
BIG = np.iinfo(np.int64).max



def i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def same(y: np.ndarray, ref: np.ndarray) -> None:
    assert y.dtype == ref.dtype
    np.testing.assert_array_equal(y, ref)


@pytest.fixture
def x(rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((2, 5, 6, 4), dtype=np.float32)


@pytest.mark.parametrize("params, starts, ends, steps", [
    # ShuffleNet: channels [24, 48), end 0 = "to the end"
    ("4 0 2 0 0 4 0 5 0 0 4 1 1 1 1", (0, 2, 0, 0), (BIG, 5, BIG, BIG), (1, 1, 1, 1)),
    ("4 0 -3 1 0 4 0 -1 0 0 4 1 1 2 1", (0, 2, 1, 0), (BIG, 4, BIG, BIG), (1, 1, 2, 1)),
    ("4 1 0 0 1 4 2 0 5 0 4 1 3 2 2", (1, 0, 0, 1), (2, BIG, 5, BIG), (1, 3, 2, 2)),
])
def test_strided_slice(x, params, starts, ends, steps):
    ref = run_onnx_op("Slice", x, i64(*starts), i64(*ends), i64(0, 1, 2, 3), i64(*steps))
    same(run_layer("StridedSlice", params, x), ref)


@pytest.mark.parametrize("params, message", [
    ("3 0 0 0 3 1 1 1 3 1 1 1", "expected 4 begins, ends and strides"),
    ("4 0 3 0 0 4 0 2 0 0 4 1 1 1 1", r"empty or invalid slice \[3, 2\)"),
    ("4 0 0 0 0 4 0 0 0 0 4 1 0 1 1", "stride 0 must be positive"),
])
def test_strided_slice_errors(x, params, message):
    with pytest.raises(TnnQuantError, match=message):
        run_layer("StridedSlice", params, x)


@pytest.mark.parametrize("params, starts, ends, axes, steps", [
    ("1 0 1 2 1 1 1 1", (0,), (2,), (1,), (1,)),                       # yolov8n Slice
    ("1 2 1 4 1 1 1 1", (2,), (4,), (1,), (1,)),                       # yolov8n Slice_1
    (f"1 1 1 {INT_MAX} 1 2 1 1", (1,), (BIG,), (2,), (1,)),            # INT_MAX end
    ("1 0 1 100 1 1 1 2", (0,), (100,), (1,), (2,)),                   # end past the dim
    ("1 -4 1 -1 1 -1 1 1", (-4,), (-1,), (-1,), (1,)),                 # negative begin/end/axis
    (f"1 -1 1 {INT_MIN} 1 1 1 -1", (-1,), (-BIG - 1,), (1,), (-1,)),  # full reverse
    ("1 4 1 0 1 2 1 -2", (4,), (0,), (2,), (-2,)),                     # reverse, end exclusive
    (f"1 {INT_MAX} 1 {INT_MIN} 1 3 1 -1", (BIG,), (-BIG - 1,), (3,), (-1,)),  # clamped begin
    ("2 0 1 2 2 -1 2 1 3 2 1 2", (0, 1), (2, -1), (1, 3), (1, 2)),    # two axes
])
def test_strided_slice_v2(x, params, starts, ends, axes, steps):
    ref = run_onnx_op("Slice", x, i64(*starts), i64(*ends), i64(*axes), i64(*steps))
    same(run_layer("StridedSliceV2", params, x), ref)


def test_strided_slice_v2_default_axes_and_strides(x):
    # a line without axes and strides slices the first dims with step 1, as ONNX does
    same(run_layer("StridedSliceV2", "2 1 1 2 2 3", x), x[1:2, 1:3])


@pytest.mark.parametrize("params, message", [
    ("1 3 1 3 1 1 1 1", r"empty slice \[3, 3\)"),
    ("1 1 1 3 1 1 1 -1", "empty reverse slice from 1 down to 3"),
    ("1 0 1 3 1 1 1 0", "stride 0"),
    ("1 0 1 3 1 4 1 1", "axis 4 is out of range"),
    ("2 0 0 1 3 1 1 1 1", "differ in length"),
])
def test_strided_slice_v2_errors(x, params, message):
    with pytest.raises(TnnQuantError, match=message):
        run_layer("StridedSliceV2", params, x)


@pytest.mark.parametrize("params, pads, mode, value", [
    # Pad words: n1 n2 top bottom left right c_begin c_end type value
    ("0 0 1 2 3 0 0 0 0 1.5", (0, 0, 1, 3, 0, 0, 2, 0), "constant", 1.5),
    ("0 0 0 0 0 0 1 2 0 0", (0, 1, 0, 0, 0, 2, 0, 0), "constant", 0.0),
    ("0 0 0 0 0 0 1 2", (0, 1, 0, 0, 0, 2, 0, 0), "constant", 0.0),
    ("0 0 1 1 2 3 0 0 1 0", (0, 0, 1, 2, 0, 0, 1, 3), "reflect", 0.0),
    ("0 0 1 0 0 2 1 0 2 0", (0, 1, 1, 0, 0, 0, 0, 2), "edge", 0.0),
])
def test_pad(x, params, pads, mode, value):
    ref = run_onnx_op("Pad", x, i64(*pads), np.float32(value), mode=mode)
    same(run_layer("Pad", params, x), ref)


@pytest.mark.parametrize("params, message", [
    ("0 0 1 1 1 1", "pad words are missing"),          # TNN reads INT_MIN for them
    ("0 0 1 1 1 1 0 0 3 0", "unknown pad type 3"),
    ("0 0 -1 1 1 1 0 0 0 0", "negative pads"),
    ("0 0 6 0 0 0 0 0 1 0", "reflect pads 6, 0 must be smaller than the dimension 6"),
])
def test_pad_errors(x, params, message):
    with pytest.raises(TnnQuantError, match=message):
        run_layer("Pad", params, x)


@pytest.mark.parametrize("pads, mode, code", [((0, 1, 2, 3, 0, 2, 1, 0), "constant", 0),
                                              ((0, 1, 2, 3, 1, 2, 1, 0), "reflect", 1),
                                              ((1, 0, 2, 3, 0, 4, 1, 0), "edge", 2)])
def test_pad_v2(x, pads, mode, code):
    # ONNX order: all begins, then all ends
    params = f"4 {' '.join(map(str, pads))} {code} 0.25"
    value = np.float32(0.25 if mode == "constant" else 0)
    same(run_layer("PadV2", params, x), run_onnx_op("Pad", x, i64(*pads), value, mode=mode))


def test_pad_v2_3d(rng):
    x = rng.standard_normal((2, 3, 7), dtype=np.float32)
    same(run_layer("PadV2", "3 0 0 2 0 0 1 1 0", x), run_onnx_op("Pad", x, i64(0, 0, 2, 0, 0, 1),
                                                          mode="reflect"))


def test_pad_v2_rank_must_match(x):
    with pytest.raises(TnnQuantError, match="pads are given for 2 dims, the input has 4"):
        run_layer("PadV2", "2 1 1 1 1 0 0", x)
