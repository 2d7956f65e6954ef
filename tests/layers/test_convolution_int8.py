"""Int8 Convolution (spec int8 §12.3, §13) against int64 loop sums and the per-element
requantization written out in int8_refs.py: any group, fused activations, fused add in both
orders, long sums, x86 and NAIVE arithmetic, NAIVE zero points."""
from __future__ import annotations

import numpy as np
import pytest
from int8_refs import conv_sums, float2int8, fma, requantize, x86_round

from tnnquant.exec.int8_math import FUSION_ACT_ADD, FUSION_ADD_ACT
from tnnquant.formats.rawbuffer import DataType, RawBuffer
from tnnquant.ir.graph import BlobScale
from tnnquant.layers._resources import ConvResource
from tnnquant.layers.convolution import ConvParams, FusedConvParams
from tnnquant.testing import run_int8_layer

f32 = np.float32
ACTS = {0: None, 1: "relu", 2: "relu6", 256: None}   # 256 has no int8 implementation


def int8_conv(rng, out_ch, in_per_group, k, bias=True, per_tensor_weights=False,
              zero_point=None):
    w = rng.integers(-127, 128, (out_ch, in_per_group, k, k)).astype(np.int8)
    n_scales = 1 if per_tensor_weights else out_ch
    scale = rng.uniform(0.5e-3, 2e-3, n_scales).astype(f32)
    zp = np.zeros(n_scales, np.int8) if zero_point is None else zero_point
    b = rng.integers(-3000, 3000, out_ch).astype(np.int32) if bias else None
    return ConvResource("layer", int(bias), RawBuffer.of(w),
                        None if b is None else RawBuffer.of(b, DataType.INT32),
                        RawBuffer.of(zp, DataType.INT8), RawBuffer.of(scale, DataType.FLOAT))


def params(group, cin, cout, k, stride=1, pad=0, bias=True, dilation=1, act=0):
    return ConvParams(group, cin // group, cout, k, k, stride, stride, pad, pad, int(bias), -1,
                      dilation, dilation, act)


def expected(x, res, p, s_out, device, add=None, s_add=None, add_first=True):
    w = res.filter.data.reshape(p.output_channel, -1, p.kernel_h, p.kernel_w)
    acc = conv_sums(x, w, p.group, (p.stride_h, p.stride_w), (p.pad_h, p.pad_w), p.dilation_h)
    out = np.zeros(acc.shape, np.int8)
    scale = res.scale.data
    for (n, o, y, xx), a in np.ndenumerate(acc):
        so = s_out[o % s_out.size]
        m = f32(scale[o % scale.size] / so)
        bias = int(res.bias.data[o]) if p.bias else 0
        extra = {}
        if add is not None:
            extra = dict(add=int(add[n, o, y, xx]), a=f32(s_add[o % s_add.size] / so),
                         add_first=add_first)
        out[n, o, y, xx] = requantize(int(a), bias, m, device, ACTS[p.activation_type],
                                      float2int8(f32(6) / so), **extra)
    return out


CASES = {
    "dense3x3": (1, 6, 5, 3, 1, 1), "stride2": (1, 4, 6, 3, 2, 1), "grouped": (2, 6, 4, 3, 1, 1),
    "depthwise": (6, 6, 6, 3, 2, 1), "pointwise": (1, 8, 5, 1, 1, 0), "5x5": (1, 3, 4, 5, 1, 2),
}


@pytest.mark.parametrize("device", ["x86", "naive"])
@pytest.mark.parametrize("act", [0, 1, 2, 256])
@pytest.mark.parametrize("case", list(CASES))
def test_conv_int8_matches_the_integer_formula(case, act, device):
    group, cin, cout, k, stride, pad = CASES[case]
    rng = np.random.default_rng(hash((case, act)) % 2**32)
    p = params(group, cin, cout, k, stride, pad, act=act)
    res = int8_conv(rng, cout, cin // group, k)
    x = rng.integers(-128, 128, (2, cin, 7, 7)).astype(np.int8)
    s_in, s_out = np.array([0.02], f32), rng.uniform(0.01, 0.03, cout).astype(f32)
    got = run_int8_layer("QuantizedConvolution", p, x, resource=res, scales=[s_in],
                         out_scales=[s_out], device=device)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, expected(x, res, p, s_out, device))


@pytest.mark.parametrize("device", ["x86", "naive"])
@pytest.mark.parametrize("fusion", [FUSION_ADD_ACT, FUSION_ACT_ADD])
@pytest.mark.parametrize("act", [0, 1, 2])
def test_conv_with_fused_add(fusion, act, device):
    rng = np.random.default_rng(fusion * 10 + act)
    p = FusedConvParams(**vars(params(1, 8, 6, 1, act=act)), fusion=fusion)
    res = int8_conv(rng, 6, 8, 1)
    x = rng.integers(-128, 128, (1, 8, 6, 6)).astype(np.int8)
    other = rng.integers(-128, 128, (1, 6, 6, 6)).astype(np.int8)
    s_out, s_add = np.array([0.05], f32), rng.uniform(0.01, 0.05, 6).astype(f32)
    got = run_int8_layer("QuantizedConvolution", p, x, other, resource=res,
                         scales=[[0.02], s_add], out_scales=[s_out], device=device)
    want = expected(x, res, p, s_out, device, other, s_add, add_first=fusion == FUSION_ADD_ACT)
    np.testing.assert_array_equal(got, want)


def test_long_sums_stay_exact():
    """200 channels x 3x3 = 1800 terms of up to 128*127: beyond what one f32 sum holds."""
    rng = np.random.default_rng(8)
    p = params(1, 200, 3, 3, pad=1, bias=False)
    res = int8_conv(rng, 3, 200, 3, bias=False)
    res.filter.data[:] = np.where(rng.random(res.filter.size) < 0.5, -127, 127)
    x = np.where(rng.random((1, 200, 4, 4)) < 0.5, -128, 127).astype(np.int8)
    w = res.filter.data.reshape(3, 200, 3, 3)
    assert np.abs(conv_sums(x, w, 1, (1, 1), (1, 1))).max() > 0   # sanity
    s_out = np.array([5e-3], f32)
    res.scale.data[:] = f32(1e-8)
    got = run_int8_layer("QuantizedConvolution", p, x, resource=res, scales=[[1.0]],
                         out_scales=[s_out])
    np.testing.assert_array_equal(got, expected(x, res, p, s_out, "x86"))


def test_per_tensor_weights_and_output():
    rng = np.random.default_rng(9)
    p = params(1, 4, 5, 3, pad=1)
    res = int8_conv(rng, 5, 4, 3, per_tensor_weights=True)
    x = rng.integers(-128, 128, (1, 4, 5, 5)).astype(np.int8)
    s_out = np.array([0.02], f32)
    got = run_int8_layer("QuantizedConvolution", p, x, resource=res, scales=[[0.1]],
                         out_scales=[s_out])
    np.testing.assert_array_equal(got, expected(x, res, p, s_out, "x86"))


def test_naive_honours_zero_points():
    """NAIVE: acc = conv(x - zp_in, q - zp_w) with zero padding (spec §12.3 steps 1-2), then
    float2int8(f32(v + zp_out)); x86 ignores every zero point."""
    rng = np.random.default_rng(10)
    p = params(1, 3, 4, 3, pad=1)
    zp_w = np.array([2, -3, 0, 5], np.int8)
    res = int8_conv(rng, 4, 3, 3, zero_point=zp_w)
    x = rng.integers(-100, 100, (1, 3, 5, 5)).astype(np.int8)
    zp_in, zp_out = np.array([7], np.int8), np.array([-4], np.int8)
    s_out = np.array([0.03], f32)
    got = run_int8_layer("QuantizedConvolution", p, x, resource=res,
                         scales=[BlobScale([0.02], zp_in)], out_scales=[BlobScale(s_out, zp_out)],
                         device="naive")
    w = res.filter.data.reshape(4, 3, 3, 3).astype(np.int64) - zp_w.reshape(-1, 1, 1, 1)
    acc = conv_sums(x.astype(np.int64) - 7, w, 1, (1, 1), (1, 1))
    for (n, o, y, xx), a in np.ndenumerate(acc):
        m = f32(res.scale.data[o] / s_out[0])
        v = f32(a + int(res.bias.data[o])) * m
        assert got[n, o, y, xx] == float2int8(v + f32(-4))
    x86 = run_int8_layer("QuantizedConvolution", p, x, resource=res,
                         scales=[BlobScale([0.02], zp_in)], out_scales=[BlobScale(s_out, zp_out)])
    np.testing.assert_array_equal(x86, expected(x, res, p, s_out, "x86"))


def test_float_filter_is_refused():
    rng = np.random.default_rng(11)
    res = int8_conv(rng, 2, 2, 1)
    res.filter = RawBuffer.of(res.filter.data.astype(f32))
    with pytest.raises(ValueError, match="the int8 kernel needs an INT8 filter"):
        run_int8_layer("QuantizedConvolution", params(1, 2, 2, 1), np.zeros((1, 2, 3, 3),
                       np.int8), resource=res, scales=[[1.0]], out_scales=[[1.0]])


def test_zero_dilation_runs_on_x86():
    """A damaged proto's dilation 0 (every tap on one pixel) is not an ONNX geometry: the x86
    kernel runs it in numpy instead of failing in onnxruntime (found by fuzzing)."""
    rng = np.random.default_rng(7)
    p = params(1, 4, 5, 3, pad=1, dilation=0)
    res = int8_conv(rng, 5, 4, 3)
    x = rng.integers(-128, 128, (1, 4, 6, 6)).astype(np.int8)
    s_in, s_out = np.array([0.02], f32), rng.uniform(0.01, 0.03, 5).astype(f32)
    got = run_int8_layer("QuantizedConvolution", p, x, resource=res, scales=[s_in],
                         out_scales=[s_out], device="x86")
    np.testing.assert_array_equal(got, expected(x, res, p, s_out, "x86"))


# (v, a_q, A) where TNN's single-rounding fma(a_q, A, v) and two roundings f32(f32(a_q·A) + v)
# give different codes (found by search); the first six are inside the range where
# onnxruntime's double sum is provably exact, the last two (tiny A) are not
FMA_CASES = [(89.74951934814453, 63, 0.3134996294975281),
             (149.41876220703125, -112, 0.48141756653785706),
             (36.328636169433594, 100, 0.3517135977745056),
             (31.984371185302734, 127, 0.5001230239868164),
             (23.757431030273438, 77, 0.7239294052124023),
             (148.18475341796875, -106, 0.3177807331085205)]
FMA_TINY = [(2.499999761581421, 25, 4.76837147544984e-09),
            (-3.499999761581421, 29, -4.11066514161007e-09)]


@pytest.mark.parametrize("fusion", [FUSION_ADD_ACT, FUSION_ACT_ADD])
@pytest.mark.parametrize("cases", [FMA_CASES, FMA_TINY], ids=["double-exact", "tiny-factor"])
def test_fused_add_rounds_once(cases, fusion, fp32_kernels, monkeypatch):
    """x86's fused add is one FMA: a 1x1 conv of code 1 with weight 1 and s_out 1 makes
    v = M = the weight scale, so each channel meets one hard case. Both paths (onnxruntime's
    double sum where provably exact, numpy's round-to-odd elsewhere) must round once."""
    from tnnquant.exec import ort_kernels
    v, a, s_add = (np.array(col, dtype) for col, dtype in zip(zip(*cases), (f32, int, f32)))
    o = len(cases)
    two_roundings = [x86_round(f32(f32(ai) * si) + vi) for vi, ai, si in zip(v, a, s_add)]
    assert two_roundings != [x86_round(fma(ai, si, vi)) for vi, ai, si in zip(v, a, s_add)]
    res = ConvResource("layer", 0, RawBuffer.of(np.ones((o, 1, 1, 1), np.int8)), None,
                       RawBuffer.of(np.zeros(o, np.int8), DataType.INT8),
                       RawBuffer.of(v, DataType.FLOAT))
    p = FusedConvParams(**vars(params(o, o, o, 1, bias=False)), fusion=fusion)
    x = np.ones((1, o, 2, 3), np.int8)
    other = np.broadcast_to(a.reshape(1, o, 1, 1), (1, o, 2, 3)).astype(np.int8)
    ran = []
    kernel = ort_kernels.conv_int8_x86
    monkeypatch.setattr(ort_kernels, "conv_int8_x86",
                        lambda *args: ran.append(kernel(*args)) or ran[-1])
    got = run_int8_layer("QuantizedConvolution", p, x, other, resource=res,
                         scales=[[1.0], s_add], out_scales=[[1.0]])
    np.testing.assert_array_equal(got, expected(x, res, p, np.array([1.0], f32), "x86", other,
                                                s_add, add_first=fusion == FUSION_ADD_ACT))
    in_onnxruntime = fp32_kernels == "onnxruntime" and cases is FMA_CASES
    assert (ran[0] is not None) == in_onnxruntime


@pytest.mark.parametrize("device", ["x86", "naive"])
def test_a_bias_at_the_int32_limit_wraps_the_sum(device, fp32_kernels):
    """TNN's tool writes INT32_MIN where b / S leaves int32 (spec §8.1, x86's conversion of an
    out-of-range float); TNN's int32 adds then carry acc + bq around to a positive sum, and
    the codes follow it (PP-OCRv4 detection's TNN-recipe file has such a channel). The
    onnxruntime path and the numpy path agree with the wrapped integer formula."""
    rng = np.random.default_rng(12)
    p = params(4, 4, 4, 3, pad=1)
    res = int8_conv(rng, 4, 1, 3)
    res.filter.data[:] = -127
    res.bias.data[:] = [np.iinfo(np.int32).min, np.iinfo(np.int32).min + 3000,
                        np.iinfo(np.int32).max, -5]
    res.scale.data[:] = f32(1e-9)
    x = np.full((1, 4, 5, 5), 127, np.int8)
    x[0, 2] = -128   # channel 2: a positive sum on top of INT32_MAX
    s_out = np.array([1e-3], f32)
    got = run_int8_layer("QuantizedConvolution", p, x, resource=res, scales=[[1.0]],
                         out_scales=[s_out], device=device)
    want = expected(x, res, p, s_out, device)
    np.testing.assert_array_equal(got, want)
    assert (want[0, 0] > 0).all() and (want[0, 2] < 0).all()   # carried to the other sign
