"""Convolution fp32 kernel against onnxruntime Conv and a direct loop written from the spec."""
from __future__ import annotations

import math

import numpy as np
import pytest
from conv_refs import activate, conv_resource
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx_ops import Const, run_onnx_op

from tnnquant.errors import UnsupportedError
from tnnquant.layers.convolution import ConvParams, conv_pads
from tnnquant.testing import run_layer


def words(group, cin, cout, kh, kw, sh, sw, ph, pw, bias, pad_type, dh=1, dw=1, act=0) -> str:
    """Proto parameter words of a Convolution (input_channel is per group)."""
    return f"{group} {cin // group} {cout} {kh} {kw} {sh} {sw} {ph} {pw} {int(bias)} " \
           f"{pad_type} {dh} {dw} {act}"


def random_conv(rng, n, cin, h, w, cout, group, kh, kw, bias):
    x = rng.standard_normal((n, cin, h, w)).astype(np.float32)
    weight = rng.standard_normal((cout, cin // group, kh, kw)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32) if bias else None
    return x, weight, b


def spec_axis(size, k, stride, pad, pad_type, dilation):
    """(out, pad_begin) along one axis, written from spec model-format §3.3.1."""
    extent = dilation * (k - 1) + 1
    if pad_type == -1:
        return (size + 2 * pad - extent) // stride + 1, pad
    out = math.ceil((size if pad_type == 0 else size - extent + 1) / stride)
    total = (out - 1) * stride + extent - size
    return out, int(total / 2)  # C division truncates toward zero


def loop_conv(x, weight, bias, group, stride, pads, out_hw, dilation_h, act):
    """TNN NAIVE convolution: for every output position and kernel tap, skip out-of-bounds
    input positions; the vertical dilation steps both axes (spec int8 §12.3, §14)."""
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    og = o // group
    y = np.zeros((n, o) + out_hw)
    for oy in range(out_hw[0]):
        for ox in range(out_hw[1]):
            for i in range(kh):
                for j in range(kw):
                    iy = oy * stride[0] - pads[0] + i * dilation_h
                    ix = ox * stride[1] - pads[1] + j * dilation_h
                    if not (0 <= iy < h and 0 <= ix < w):
                        continue
                    for g in range(group):
                        xs = x[:, g * cg:(g + 1) * cg, iy, ix].astype(np.float64)
                        ws = weight[g * og:(g + 1) * og, :, i, j].astype(np.float64)
                        y[:, g * og:(g + 1) * og, oy, ox] += xs @ ws.T
    if bias is not None:
        y += bias.reshape(-1, 1, 1)
    return activate(y, act)


def assert_close(actual, expected, tol=1e-4):
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


# --- geometry (spec model-format §3.3.1) -----------------------------------------------------

@pytest.mark.parametrize("size,k,stride,pad,pad_type,dilation,expected", [
    (224, 3, 2, 1, -1, 1, (112, 1, 1)),      # explicit, symmetric
    (224, 3, 2, 0, 0, 1, (112, 0, 1)),       # SAME: the odd pixel of padding goes to the end
    (7, 3, 1, 0, 0, 1, (7, 1, 1)),
    (5, 1, 3, 0, 0, 1, (2, 0, 0)),           # SAME, stride > kernel: P = -1, end clamped to 0
    (7, 3, 2, 0, 1, 1, (3, 0, 0)),           # VALID
    (8, 1, 4, 0, 1, 1, (2, -1, 0)),          # VALID, P = -3: the window starts 1 row in
    (10, 3, 1, 2, -1, 2, (10, 2, 2)),        # dilated explicit
    (9, 3, 2, 0, 0, 2, (5, 2, 2)),           # dilated SAME
])
def test_conv_pads_follow_the_spec_formulas(size, k, stride, pad, pad_type, dilation, expected):
    p = ConvParams(1, 1, 1, k, 1, stride, 1, pad, 0, 0, pad_type, dilation, 1)
    geo = conv_pads(p, size, 4)
    assert (geo.out_h, geo.pad_top, geo.pad_bottom) == expected
    p_w = ConvParams(1, 1, 1, 1, k, 1, stride, 0, pad, 0, pad_type, 1, dilation)
    geo_w = conv_pads(p_w, 4, size)
    assert (geo_w.out_w, geo_w.pad_left, geo_w.pad_right) == expected


# --- against onnxruntime Conv, where TNN and ONNX agree ---------------------------------------

ORT_CASES = {
    # name: (n, cin, h, w, cout, group, kh, kw, sh, sw, ph, pw, bias, pad_type, dilation, act)
    "dense3x3_relu_batch2": (2, 5, 9, 8, 7, 1, 3, 3, 1, 1, 1, 1, True, -1, 1, 1),
    "dense3x3_s2_nobias": (1, 4, 11, 10, 6, 1, 3, 3, 2, 2, 1, 1, False, -1, 1, 0),
    "pointwise": (3, 8, 5, 6, 4, 1, 1, 1, 1, 1, 0, 0, True, -1, 1, 0),
    "pointwise_s2": (1, 8, 7, 6, 4, 1, 1, 1, 2, 2, 0, 0, True, -1, 1, 2),
    "rect_kernel_rect_stride": (1, 3, 12, 9, 5, 1, 5, 3, 2, 1, 2, 1, True, -1, 1, 0),
    "first_layer_7x7": (1, 3, 20, 20, 8, 1, 7, 7, 2, 2, 3, 3, True, -1, 1, 1),
    "groups2": (2, 4, 7, 7, 6, 2, 3, 3, 1, 1, 1, 1, True, -1, 1, 0),
    "depthwise_relu6": (2, 8, 9, 9, 8, 8, 3, 3, 1, 1, 1, 1, True, -1, 1, 2),
    "depthwise_s2": (1, 6, 10, 9, 6, 6, 3, 3, 2, 2, 1, 1, False, -1, 1, 0),
    "depthwise_5x5": (1, 4, 12, 12, 4, 4, 5, 5, 1, 1, 2, 2, True, -1, 1, 0),
    "depth_multiplier2": (1, 4, 8, 8, 8, 4, 3, 3, 1, 1, 1, 1, True, -1, 1, 0),
    "dilation2": (1, 3, 12, 11, 4, 1, 3, 3, 1, 1, 2, 2, True, -1, 2, 0),
    "same_s2_even": (1, 3, 10, 10, 4, 1, 3, 3, 2, 2, 0, 0, True, 0, 1, 0),
    "same_s2_odd": (2, 3, 9, 11, 4, 1, 3, 3, 2, 2, 0, 0, True, 0, 1, 256),
    "same_depthwise_s2": (1, 5, 9, 8, 5, 5, 3, 3, 2, 2, 0, 0, True, 0, 1, 1),
    "valid_s2": (1, 3, 9, 10, 4, 1, 3, 3, 2, 2, 0, 0, True, 1, 1, 0),
    "swish": (1, 4, 6, 6, 5, 1, 3, 3, 1, 1, 1, 1, True, -1, 1, 256),
}


@pytest.mark.parametrize("case", ORT_CASES.values(), ids=ORT_CASES.keys())
def test_conv_matches_onnxruntime(case):
    n, cin, h, w, cout, group, kh, kw, sh, sw, ph, pw, bias, pad_type, dil, act = case
    rng = np.random.default_rng(len(str(case)))
    x, weight, b = random_conv(rng, n, cin, h, w, cout, group, kh, kw, bias)
    got = run_layer("Convolution", words(group, cin, cout, kh, kw, sh, sw, ph, pw, bias, pad_type,
                                         dil, dil, act), x, resource=conv_resource(weight, b))
    attrs = dict(group=group, strides=[sh, sw], dilations=[dil, dil], kernel_shape=[kh, kw])
    if pad_type == -1:
        attrs["pads"] = [ph, pw, ph, pw]
    else:
        attrs["auto_pad"] = "SAME_UPPER" if pad_type == 0 else "VALID"
    inputs = [x, Const(weight)] + ([Const(b)] if bias else [])
    expected = activate(run_onnx_op("Conv", *inputs, **attrs).astype(np.float64), act)
    assert_close(got, expected)


# --- TNN-specific corners, against the loop reference -------------------------------------

@pytest.mark.parametrize("case", [
    # (n, cin, h, w, cout, group, kh, kw, sh, sw, ph, pw, bias, pad_type, dh, dw, act)
    (1, 2, 8, 9, 3, 1, 1, 1, 4, 4, 0, 0, True, 1, 1, 1, 0),   # VALID with pad_begin -1
    (1, 2, 10, 8, 3, 1, 2, 2, 4, 3, 0, 0, True, 1, 1, 1, 0),  # VALID, different per axis
    (2, 3, 5, 7, 2, 1, 1, 1, 3, 3, 0, 0, False, 0, 1, 1, 0),  # SAME with stride > kernel
    (1, 2, 11, 12, 3, 1, 3, 3, 1, 1, 2, 1, True, -1, 2, 1, 0),  # dilation_w ignored (NAIVE)
    (1, 3, 9, 9, 3, 3, 3, 3, 1, 1, 1, 3, False, -1, 1, 3, 2),  # ... also for depthwise
    (1, 2, 4, 5, 2, 1, 3, 3, 2, 2, 0, 0, True, -1, 1, 1, 1),   # (in - k) / stride truncated
])
def test_conv_tnn_corners_match_loop_reference(case):
    n, cin, h, w, cout, group, kh, kw, sh, sw, ph, pw, bias, pad_type, dh, dw, act = case
    rng = np.random.default_rng(7)
    x, weight, b = random_conv(rng, n, cin, h, w, cout, group, kh, kw, bias)
    got = run_layer("Convolution", words(group, cin, cout, kh, kw, sh, sw, ph, pw, bias, pad_type,
                                         dh, dw, act), x, resource=conv_resource(weight, b))
    out_h, top = spec_axis(h, kh, sh, ph, pad_type, dh)
    out_w, left = spec_axis(w, kw, sw, pw, pad_type, dw)
    expected = loop_conv(x, weight, b, group, (sh, sw), (top, left), (out_h, out_w), dh, act)
    assert_close(got, expected)


def test_conv_valid_negative_pad_picks_shifted_rows():
    # in 8, k 1, stride 4, VALID: TNN's pad_begin is -1, so rows 1 and 5 are read (not 0, 4)
    x = np.arange(64, dtype=np.float32).reshape(1, 1, 8, 8)
    got = run_layer("Convolution", words(1, 1, 1, 1, 1, 4, 4, 0, 0, False, 1), x,
                    resource=conv_resource(np.ones((1, 1, 1, 1))))
    np.testing.assert_array_equal(got[0, 0], x[0, 0][1::4, 1::4])


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2), cin_per_group=st.integers(1, 3), group=st.integers(1, 3),
       out_per_group=st.integers(1, 3), h=st.integers(3, 9), w=st.integers(3, 9),
       kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 3), sw=st.integers(1, 3),
       pad=st.integers(0, 2), pad_type=st.sampled_from([-1, 0, 1]), dilation=st.integers(1, 2),
       bias=st.booleans(), act=st.sampled_from([0, 1, 2, 256]), seed=st.integers(0, 99))
def test_conv_random_parameters_match_loop_reference(n, cin_per_group, group, out_per_group, h,
                                                     w, kh, kw, sh, sw, pad, pad_type, dilation,
                                                     bias, act, seed):
    cin, cout = cin_per_group * group, out_per_group * group
    out_h, top = spec_axis(h, kh, sh, pad, pad_type, dilation)
    out_w, left = spec_axis(w, kw, sw, pad, pad_type, dilation)
    if out_h <= 0 or out_w <= 0:
        return
    x, weight, b = random_conv(np.random.default_rng(seed), n, cin, h, w, cout, group, kh, kw,
                               bias)
    got = run_layer("Convolution", words(group, cin, cout, kh, kw, sh, sw, pad, pad, bias,
                                         pad_type, dilation, dilation, act),
                    x, resource=conv_resource(weight, b))
    expected = loop_conv(x, weight, b, group, (sh, sw), (top, left), (out_h, out_w), dilation, act)
    assert_close(got, expected)


# --- errors a user can cause -------------------------------------------------------------------

def test_conv_unknown_pad_type_is_unsupported():
    x = np.zeros((1, 2, 5, 5), np.float32)
    with pytest.raises(UnsupportedError, match=r"Convolution 'layer'.*pad_type 2"):
        run_layer("Convolution", words(1, 2, 2, 3, 3, 1, 1, 0, 0, False, 2), x,
                  resource=conv_resource(np.zeros((2, 2, 3, 3))))


def test_conv_filter_of_the_wrong_size_is_reported():
    x = np.zeros((1, 4, 5, 5), np.float32)
    with pytest.raises(UnsupportedError, match="filter of 18 values.*expected 2x4x3x3"):
        run_layer("Convolution", words(1, 4, 2, 3, 3, 1, 1, 1, 1, False, -1), x,
                  resource=conv_resource(np.zeros((2, 1, 3, 3))))


def test_conv_input_too_small_is_reported():
    x = np.zeros((1, 1, 2, 2), np.float32)
    with pytest.raises(UnsupportedError, match="too small"):
        run_layer("Convolution", words(1, 1, 1, 3, 3, 1, 1, 0, 0, False, 1), x,
                  resource=conv_resource(np.zeros((1, 1, 3, 3))))
