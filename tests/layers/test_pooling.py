"""Pooling fp32 kernel against onnxruntime pooling ops and a direct loop written from the spec."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx_ops import run_onnx_op

from tnnquant.errors import UnsupportedError
from tnnquant.layers.pooling import PoolingParams, pool_pads
from tnnquant.testing import run_layer

FLT_MAX = float(np.finfo(np.float32).max)


def words(pool_type, kh, kw, sh, sw, ph, pw, pad_type, ceil_mode=0, index_h=-1, index_w=-1,
          adaptive=0, out_h=0, out_w=0) -> str:
    return (f"{pool_type} {kh} {kw} {sh} {sw} {ph} {pw} {index_h} {index_w} {pad_type} "
            f"{ceil_mode} {adaptive} {out_h} {out_w}")


def spec_axis(size, k, stride, pad, pad_type, ceil_mode):
    """(out, pad_begin) along one axis, written from spec model-format §3.3.2."""
    if pad_type == -1:
        ratio = (size + 2 * pad - k) / stride + 1
        return (math.ceil(ratio) if ceil_mode else math.floor(ratio)), pad
    out = math.ceil((size if pad_type == 0 else size - k + 1) / stride)
    return out, int(((out - 1) * stride + k - size) / 2)


def exported(size_hw, kernel, stride, pads, out_hw):
    """``run_layer``'s ``exported``: False where a window lies wholly in the padding (the
    export leaves such poolings to the numpy kernel), else None (the export must run)."""
    for size, k, s, begin, out in zip(size_hw, kernel, stride, pads, out_hw):
        starts = np.arange(out) * s - begin
        if ((starts >= size) | (starts + k <= 0)).any():
            return False
    return None


def loop_pool(x, pool_type, kernel, stride, pads, out_hw):
    """TNN CPU pooling: the window is clipped to the input; max starts from -FLT_MAX, the
    average divides by the clipped window's size (spec §3.3.2, int8 §14)."""
    h, w = x.shape[2:]
    y = np.zeros(x.shape[:2] + out_hw)
    for oy in range(out_hw[0]):
        for ox in range(out_hw[1]):
            hs, ws = oy * stride[0] - pads[0], ox * stride[1] - pads[1]
            he, we = min(hs + kernel[0], h), min(ws + kernel[1], w)
            hs, ws = max(hs, 0), max(ws, 0)
            window = x[:, :, hs:he, ws:we].astype(np.float64).reshape(x.shape[:2] + (-1,))
            if pool_type == 0:
                y[:, :, oy, ox] = np.maximum(window.max(axis=2, initial=-FLT_MAX), -FLT_MAX)
            else:
                with np.errstate(invalid="ignore", divide="ignore"):
                    y[:, :, oy, ox] = window.sum(axis=2) / ((he - hs) * (we - ws))
    return y


def assert_close(actual, expected):
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def random_input(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# --- geometry ------------------------------------------------------------------------------

@pytest.mark.parametrize("line,dims,expected", [
    # (kernel_h, kernel_w, out_h, out_w, pad_top, pad_left, pad_bottom, pad_right)
    ("0 3 3 2 2 0 0 -1 -1 -1 1", (1, 8, 112, 112), (3, 3, 56, 56, 0, 0, 1, 1)),  # ceil
    ("0 3 3 2 2 0 0 -1 -1 -1 0", (1, 8, 112, 112), (3, 3, 55, 55, 0, 0, 0, 0)),  # floor
    ("0 3 3 2 2 0 0 -1 -1 1 0", (1, 8, 11, 10), (3, 3, 5, 4, 0, 0, 0, -1)),      # VALID
    ("0 2 2 2 2 0 0 -1 -1 0 0", (1, 8, 5, 6), (2, 2, 3, 3, 0, 0, 1, 0)),         # SAME
    ("1 0 0 1 1 0 0 -1 -1 -1 0", (1, 8, 7, 5), (7, 5, 1, 1, 0, 0, 0, 0)),        # global
    ("1 0 0 1 1 0 0 2 -1 -1 0", (1, 8, 4, 6), (4, 4, 1, 3, 0, 0, 0, 0)),         # kernel_index
])
def test_pool_pads_follow_the_spec_formulas(line, dims, expected):
    p, _ = PoolingParams.parse(line.split())
    assert tuple(pool_pads(p, dims)) == expected


# --- against onnxruntime, where TNN and ONNX agree ------------------------------------------

ORT_CASES = {
    # name: (shape, pool_type, kh, kw, sh, sw, ph, pw, pad_type, ceil_mode)
    "max3x3_s2_floor": ((2, 3, 11, 10), 0, 3, 3, 2, 2, 0, 0, -1, 0),
    "max3x3_s2_ceil": ((1, 3, 8, 8), 0, 3, 3, 2, 2, 0, 0, -1, 1),
    "max3x3_s2_pad1": ((1, 4, 9, 9), 0, 3, 3, 2, 2, 1, 1, -1, 0),
    "max5x5_s1_pad2": ((2, 4, 10, 10), 0, 5, 5, 1, 1, 2, 2, -1, 0),  # YOLO SPPF
    "avg3x3_s1_pad1": ((2, 3, 7, 8), 1, 3, 3, 1, 1, 1, 1, -1, 0),   # padding excluded
    "avg2x2_s2": ((1, 5, 8, 6), 1, 2, 2, 2, 2, 0, 0, -1, 0),
    "avg_rect": ((1, 2, 9, 7), 1, 3, 2, 2, 1, 1, 0, -1, 0),
    "max_same_2x2": ((1, 3, 5, 6), 0, 2, 2, 2, 2, 0, 0, 0, 0),
    "avg_same_3x3_s2": ((2, 3, 9, 8), 1, 3, 3, 2, 2, 0, 0, 0, 0),
    "max_valid_3x3_s2": ((1, 3, 11, 11), 0, 3, 3, 2, 2, 0, 0, 1, 0),
}


@pytest.mark.parametrize("case", ORT_CASES.values(), ids=ORT_CASES.keys())
def test_pool_matches_onnxruntime(case):
    shape, pool_type, kh, kw, sh, sw, ph, pw, pad_type, ceil_mode = case
    x = random_input(shape)
    got = run_layer("Pooling", words(pool_type, kh, kw, sh, sw, ph, pw, pad_type, ceil_mode), x)
    attrs = dict(kernel_shape=[kh, kw], strides=[sh, sw], ceil_mode=ceil_mode)
    if pad_type == -1:
        attrs["pads"] = [ph, pw, ph, pw]
    else:
        attrs["auto_pad"] = "SAME_UPPER" if pad_type == 0 else "VALID"
    if pool_type == 1:
        attrs["count_include_pad"] = 0
    expected = run_onnx_op("MaxPool" if pool_type == 0 else "AveragePool", x, **attrs)
    assert_close(got, expected)


@pytest.mark.parametrize("pool_type,op", [(0, "GlobalMaxPool"), (1, "GlobalAveragePool")])
@pytest.mark.parametrize("line", ["{t} 0 0 1 1 0 0 -1 -1 -1 0", "{t} 7 5 1 1 0 0 -1 -1 -1 0",
                                  "{t} 0 0 1 1 0 0 2 3 -1 0"])
def test_global_pooling_matches_onnxruntime(pool_type, op, line):
    x = random_input((2, 6, 7, 5), seed=3)
    got = run_layer("Pooling", line.format(t=pool_type), x)
    assert_close(got, run_onnx_op(op, x))


# --- TNN-specific corners, against the loop reference -------------------------------------

@pytest.mark.parametrize("case", [
    # (shape, pool_type, kh, kw, sh, sw, ph, pw, pad_type, ceil_mode)
    ((1, 2, 5, 5), 0, 2, 2, 2, 2, 1, 1, -1, 1),   # ceil: last window wholly in the padding
    ((1, 2, 6, 7), 1, 3, 3, 2, 2, 1, 1, -1, 1),   # ceil avg, window past the end
    ((1, 2, 11, 10), 0, 3, 3, 2, 2, 0, 0, 1, 0),  # VALID (mtcnn line), odd pixel dropped
    ((2, 3, 9, 9), 1, 1, 1, 4, 4, 0, 0, 1, 0),    # VALID with pad_begin -1
    ((1, 2, 7, 9), 1, 2, 3, 3, 3, 0, 0, 0, 0),    # SAME, stride > kernel
])
def test_pool_tnn_corners_match_loop_reference(case):
    shape, pool_type, kh, kw, sh, sw, ph, pw, pad_type, ceil_mode = case
    x = random_input(shape, seed=1)
    out_h, top = spec_axis(shape[2], kh, sh, ph, pad_type, ceil_mode)
    out_w, left = spec_axis(shape[3], kw, sw, pw, pad_type, ceil_mode)
    got = run_layer("Pooling", words(pool_type, kh, kw, sh, sw, ph, pw, pad_type, ceil_mode), x,
                    exported=exported(shape[2:], (kh, kw), (sh, sw), (top, left), (out_h, out_w)))
    expected = loop_pool(x, pool_type, (kh, kw), (sh, sw), (top, left), (out_h, out_w))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, equal_nan=True)


def test_ceil_mode_keeps_a_window_that_starts_in_the_padding():
    # TNN does not apply PyTorch's "last window starts inside the input" rule (spec §3.3.2)
    x = random_input((1, 1, 5, 5))
    got = run_layer("Pooling", words(0, 2, 2, 2, 2, 1, 1, -1, 1), x, exported=False)
    assert got.shape == (1, 1, 4, 4)
    assert got[0, 0, 3, 3] == -FLT_MAX


def test_average_excludes_padding():
    x = np.ones((1, 2, 4, 5), np.float32)
    got = run_layer("Pooling", words(1, 3, 3, 1, 1, 1, 1, -1), x)
    np.testing.assert_array_equal(got, np.ones((1, 2, 4, 5), np.float32))


def test_kernel_index_w_defaults_to_kernel_index_h():
    # kernel_index_h = 2 and kernel_index_w = -1: both kernel sizes are the input height
    x = random_input((2, 3, 4, 6), seed=2)
    got = run_layer("Pooling", words(0, 0, 0, 1, 1, 0, 0, -1, index_h=2), x)
    expected = loop_pool(x, 0, (4, 4), (1, 1), (0, 0), (1, 3))
    assert_close(got, expected)


def loop_adaptive(x, pool_type, out_hw):
    """Adaptive pooling: window [floor(o*in/out), ceil((o+1)*in/out)) on each axis."""
    h, w = x.shape[2:]
    y = np.zeros(x.shape[:2] + out_hw)
    for oy in range(out_hw[0]):
        for ox in range(out_hw[1]):
            hs, he = oy * h // out_hw[0], -(-(oy + 1) * h // out_hw[0])
            ws, we = ox * w // out_hw[1], -(-(ox + 1) * w // out_hw[1])
            window = x[:, :, hs:he, ws:we].astype(np.float64)
            y[:, :, oy, ox] = window.max(axis=(2, 3)) if pool_type == 0 else \
                window.mean(axis=(2, 3))
    return y


@pytest.mark.parametrize("pool_type", [0, 1])
@pytest.mark.parametrize("shape,out_hw", [((2, 3, 7, 5), (3, 2)), ((1, 2, 6, 6), (1, 1)),
                                          ((1, 2, 4, 4), (4, 4)), ((1, 1, 5, 3), (2, 3))])
def test_adaptive_pooling_matches_loop_reference(pool_type, shape, out_hw):
    x = random_input(shape, seed=4)
    got = run_layer("Pooling", words(pool_type, 0, 0, 1, 1, 0, 0, -1, adaptive=1,
                                     out_h=out_hw[0], out_w=out_hw[1]), x,
                    exported=None if out_hw == (1, 1) else False)   # larger: numpy only
    assert_close(got, loop_adaptive(x, pool_type, out_hw))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(2, 9), w=st.integers(2, 9),
       pool_type=st.sampled_from([0, 1]), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), pad=st.integers(0, 1),
       pad_type=st.sampled_from([-1, 0, 1]), ceil_mode=st.integers(0, 1))
def test_pool_random_parameters_match_loop_reference(n, c, h, w, pool_type, kh, kw, sh, sw, pad,
                                                     pad_type, ceil_mode):
    out_h, top = spec_axis(h, kh, sh, pad, pad_type, ceil_mode)
    out_w, left = spec_axis(w, kw, sw, pad, pad_type, ceil_mode)
    if out_h <= 0 or out_w <= 0:
        return
    x = random_input((n, c, h, w), seed=h * w)
    got = run_layer("Pooling", words(pool_type, kh, kw, sh, sw, pad, pad, pad_type, ceil_mode), x,
                    exported=exported((h, w), (kh, kw), (sh, sw), (top, left), (out_h, out_w)))
    expected = loop_pool(x, pool_type, (kh, kw), (sh, sw), (top, left), (out_h, out_w))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, equal_nan=True)


def test_unknown_pool_type_is_unsupported():
    with pytest.raises(UnsupportedError, match="pool_type 2"):
        run_layer("Pooling", words(2, 2, 2, 2, 2, 0, 0, -1), random_input((1, 1, 4, 4)))
