"""Deconvolution fp32 kernel against onnxruntime ConvTranspose and a direct scatter loop."""
from __future__ import annotations

import numpy as np
import pytest
from conv_refs import activate, conv_resource
from onnx_ops import Const, run_onnx_op

from tnnquant.errors import UnsupportedError
from tnnquant.testing import run_layer


def words(group, cin, cout, kh, kw, sh, sw, ph, pw, bias, pad_type, dh=1, dw=1, act=0) -> str:
    return f"{group} {cin // group} {cout} {kh} {kw} {sh} {sw} {ph} {pw} {int(bias)} " \
           f"{pad_type} {dh} {dw} {act}"


def spec_axis(size, k, stride, pad, pad_type, dilation):
    """(out, pad_begin) of a Deconvolution axis, written from spec model-format §3.3.1."""
    extent = dilation * (k - 1) + 1
    if pad_type == -1:
        return stride * (size - 1) + extent - 2 * pad, pad
    out = {0: size * stride, 3: size * stride, 1: size * stride + max(extent - stride, 0),
           2: size * stride - (stride + extent - 2)}[pad_type]
    total = (size - 1) * stride + extent - out
    if pad_type == 3:
        total = max(total, 0)
        return out, total - int(total / 2)  # begin and end swapped
    return out, int(total / 2)


def loop_deconv(x, weight, bias, group, stride, pads, out_hw, dilation, act):
    """Every input pixel adds weight * x at out = in * stride - pad_begin + k * dilation."""
    n, c, h, w = x.shape
    _, og, kh, kw = weight.shape
    cg = c // group
    y = np.zeros((n, og * group) + out_hw)
    for iy in range(h):
        for ix in range(w):
            for i in range(kh):
                for j in range(kw):
                    oy = iy * stride[0] - pads[0] + i * dilation[0]
                    ox = ix * stride[1] - pads[1] + j * dilation[1]
                    if not (0 <= oy < out_hw[0] and 0 <= ox < out_hw[1]):
                        continue
                    for g in range(group):
                        xs = x[:, g * cg:(g + 1) * cg, iy, ix].astype(np.float64)
                        ws = weight[g * cg:(g + 1) * cg, :, i, j].astype(np.float64)
                        y[:, g * og:(g + 1) * og, oy, ox] += xs @ ws
    if bias is not None:
        y += bias.reshape(-1, 1, 1)
    return activate(y, act)


def random_deconv(seed, n, cin, h, w, cout, group, kh, kw, bias):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, cin, h, w)).astype(np.float32)
    # TNN layout [group][I/group][O/group][kH][kW] = ONNX ConvTranspose [I][O/group][kH][kW]
    weight = rng.standard_normal((cin, cout // group, kh, kw)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32) if bias else None
    return x, weight, b


def assert_close(actual, expected):
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * scale)


ORT_CASES = {
    # name: (n, cin, h, w, cout, group, kh, kw, sh, sw, ph, pw, bias, dilation)
    "up2x_k2": (2, 4, 5, 6, 3, 1, 2, 2, 2, 2, 0, 0, True, 1),
    "k3_s2_p1": (1, 3, 6, 5, 4, 1, 3, 3, 2, 2, 1, 1, False, 1),
    "k4_s2_p1": (1, 2, 4, 4, 2, 1, 4, 4, 2, 2, 1, 1, True, 1),
    "rect": (1, 3, 5, 4, 2, 1, 3, 2, 1, 2, 1, 0, True, 1),
    "groups": (2, 4, 5, 5, 6, 2, 3, 3, 2, 2, 1, 1, True, 1),
    "depthwise": (1, 4, 5, 5, 4, 4, 4, 4, 2, 2, 1, 1, True, 1),
    "dilated": (1, 2, 5, 5, 3, 1, 3, 3, 1, 1, 2, 2, True, 2),
}


@pytest.mark.parametrize("case", ORT_CASES.values(), ids=ORT_CASES.keys())
def test_deconv_matches_onnxruntime(case):
    n, cin, h, w, cout, group, kh, kw, sh, sw, ph, pw, bias, dil = case
    x, weight, b = random_deconv(len(str(case)), n, cin, h, w, cout, group, kh, kw, bias)
    got = run_layer("Deconvolution", words(group, cin, cout, kh, kw, sh, sw, ph, pw, bias, -1,
                                           dil, dil), x, resource=conv_resource(weight, b))
    inputs = [x, Const(weight)] + ([Const(b)] if bias else [])
    expected = run_onnx_op("ConvTranspose", *inputs, group=group, strides=[sh, sw],
                           pads=[ph, pw, ph, pw], dilations=[dil, dil], kernel_shape=[kh, kw])
    assert_close(got, expected)


@pytest.mark.parametrize("pad_type", [-1, 0, 1, 2, 3])
@pytest.mark.parametrize("case", [
    # (n, cin, h, w, cout, group, kh, kw, sh, sw, ph, pw, bias, dh, dw, act)
    (1, 2, 4, 5, 3, 1, 3, 3, 2, 2, 1, 1, True, 1, 1, 1),
    (2, 4, 3, 3, 4, 2, 2, 3, 2, 1, 0, 1, False, 1, 1, 0),
    (1, 2, 4, 4, 2, 1, 3, 3, 3, 3, 0, 0, True, 2, 1, 2),
    (1, 1, 3, 4, 1, 1, 1, 1, 2, 2, 0, 0, True, 1, 1, 256),
])
def test_deconv_pad_types_match_loop_reference(pad_type, case):
    n, cin, h, w, cout, group, kh, kw, sh, sw, ph, pw, bias, dh, dw, act = case
    x, weight, b = random_deconv(3, n, cin, h, w, cout, group, kh, kw, bias)
    out_h, top = spec_axis(h, kh, sh, ph, pad_type, dh)
    out_w, left = spec_axis(w, kw, sw, pw, pad_type, dw)
    got = run_layer("Deconvolution", words(group, cin, cout, kh, kw, sh, sw, ph, pw, bias,
                                           pad_type, dh, dw, act),
                    x, resource=conv_resource(weight, b))
    expected = loop_deconv(x, weight, b, group, (sh, sw), (top, left), (out_h, out_w), (dh, dw),
                           act)
    assert_close(got, expected)


def test_deconv_filter_of_the_wrong_size_is_reported():
    x = np.zeros((1, 4, 3, 3), np.float32)
    with pytest.raises(UnsupportedError, match="filter of 48 values.*expected 1x4x2x2x2"):
        run_layer("Deconvolution", words(1, 4, 2, 2, 2, 2, 2, 0, 0, False, -1), x,
                  resource=conv_resource(np.zeros((3, 4, 2, 2))))
