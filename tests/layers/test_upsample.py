"""Upsample fp32 kernel against onnxruntime Resize with the matching coordinate mode."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_ops import Const, run_onnx_op

from tnnquant.errors import UnsupportedError
from tnnquant.testing import run_layer


def random_input(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def ort_resize(x, out_hw, **attrs):
    sizes = Const(np.array(x.shape[:2] + tuple(out_hw), np.int64))
    return run_onnx_op("Resize", x, None, None, sizes, **attrs)


SIZE_CASES = [
    # (input shape, proto words, expected output h, w)
    ((2, 3, 4, 5), "{m} 2 2 {a}", (8, 10)),
    ((1, 2, 5, 6), "{m} 1.5 2.5 {a}", (8, 15)),          # 7.5 -> 8 (half away from zero)
    ((1, 2, 5, 7), "{m} 0.5 0.5 {a}", (3, 4)),           # 2.5 -> 3, 3.5 -> 4
    ((1, 2, 6, 4), "{m} 3 3 {a} 9 5", (9, 5)),           # both sizes given: they win
    ((1, 2, 3, 3), "{m} 2 3 {a}", (6, 9)),
]


@pytest.mark.parametrize("shape,line,out_hw", SIZE_CASES)
@pytest.mark.parametrize("align", [0, 1])
def test_nearest_matches_resize_asymmetric_floor(shape, line, out_hw, align):
    x = random_input(shape)
    got = run_layer("Upsample", line.format(m=1, a=align), x)
    assert got.shape == shape[:2] + out_hw
    expected = ort_resize(x, out_hw, mode="nearest", coordinate_transformation_mode="asymmetric",
                          nearest_mode="floor")
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("shape,line,out_hw", SIZE_CASES)
@pytest.mark.parametrize("align,ort_mode", [(0, "half_pixel"), (1, "align_corners")])
def test_bilinear_matches_resize_linear(shape, line, out_hw, align, ort_mode):
    x = random_input(shape, seed=1)
    got = run_layer("Upsample", line.format(m=2, a=align), x)
    expected = ort_resize(x, out_hw, mode="linear", coordinate_transformation_mode=ort_mode)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_one_row_output_with_align_corners_takes_the_first_row():
    x = random_input((1, 1, 4, 3))
    got = run_layer("Upsample", "2 1 1 1 1 3", x)
    np.testing.assert_array_equal(got[0, 0, 0], x[0, 0, 0])


def test_size_words_are_ignored_unless_both_are_set():
    x = random_input((1, 1, 4, 4))
    assert run_layer("Upsample", "1 2 2 0 0 5", x).shape == (1, 1, 8, 8)


@pytest.mark.parametrize("scales,expected_align", [("2 2", 0), ("0.5 2", 1)])
def test_negative_align_corners_is_resolved_from_the_scales(scales, expected_align):
    x = random_input((1, 2, 5, 4), seed=2)
    got = run_layer("Upsample", f"2 {scales} -1", x)
    np.testing.assert_array_equal(got, run_layer("Upsample", f"2 {scales} {expected_align}", x))


def test_cubic_is_unsupported():
    with pytest.raises(UnsupportedError, match="cubic"):
        run_layer("Upsample", "3 2 2 0", random_input((1, 1, 2, 2)))


def test_unknown_mode_is_unsupported():
    with pytest.raises(UnsupportedError, match="mode 4"):
        run_layer("Upsample", "4 2 2 0", random_input((1, 1, 2, 2)))
