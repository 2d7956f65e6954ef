"""Int8 InnerProduct (spec int8 §12.4, §13) against an int64 matmul and the per-element
requantization of int8_refs.py."""
from __future__ import annotations

import numpy as np
import pytest
from int8_refs import float2int8, requantize

from tnnquant.formats.rawbuffer import DataType, RawBuffer
from tnnquant.ir.graph import BlobScale
from tnnquant.layers.inner_product import InnerProductParams, InnerProductResource
from tnnquant.testing import run_int8_layer

f32 = np.float32


def int8_fc(rng, n, k, bias=True, zero_point=None):
    w = rng.integers(-127, 128, (n, k)).astype(np.int8)
    b = rng.integers(-5000, 5000, n).astype(np.int32) if bias else np.zeros(0, f32)
    zp = np.zeros(n, np.int8) if zero_point is None else zero_point
    return InnerProductResource("fc", RawBuffer.of(w), RawBuffer.of(b),
                                RawBuffer.of(zp, DataType.INT8),
                                RawBuffer.of(rng.uniform(1e-4, 1e-3, n).astype(f32)))


@pytest.mark.parametrize("device", ["x86", "naive"])
@pytest.mark.parametrize("bias", [True, False])
def test_inner_product_int8_matches_the_integer_formula(bias, device):
    """K = 5*16*16 = 1280 (MobileNetV2's classifier): longer than one exact f32 sum."""
    rng = np.random.default_rng(int(bias))
    x = rng.integers(-128, 128, (3, 5, 16, 16)).astype(np.int8)
    res = int8_fc(rng, 7, 1280, bias)
    s_out = f32(0.05)
    got = run_int8_layer("QuantizedInnerProduct", InnerProductParams(7, int(bias), 0, 1), x,
                         resource=res, scales=[[0.02]], out_scales=[[s_out]], device=device)
    assert got.shape == (3, 7) and got.dtype == np.int8
    acc = x.reshape(3, -1).astype(np.int64) @ res.weight.data.reshape(7, -1).T.astype(np.int64)
    for (n, o), a in np.ndenumerate(acc):
        b = int(res.bias.data[o]) if bias else 0
        assert got[n, o] == requantize(int(a), b, f32(res.scale.data[o] / s_out), device)


def test_naive_zero_points():
    rng = np.random.default_rng(3)
    zp_w = rng.integers(-5, 6, 4).astype(np.int8)
    res = int8_fc(rng, 4, 12, zero_point=zp_w)
    x = rng.integers(-100, 100, (2, 3, 2, 2)).astype(np.int8)
    zp_in = np.array([3, -2, 0], np.int8)     # per input channel: ch(k) = k / (H*W)
    s_out = f32(0.04)
    got = run_int8_layer("QuantizedInnerProduct", "4 1 0 1", x, resource=res,
                         scales=[BlobScale([0.1, 0.1, 0.1], zp_in)],
                         out_scales=[BlobScale([s_out], [5])], device="naive")
    xc = (x.astype(np.int64) - zp_in.reshape(1, 3, 1, 1)).reshape(2, 12)
    wc = res.weight.data.reshape(4, 12).astype(np.int64) - zp_w.reshape(4, 1)
    for (n, o), a in np.ndenumerate(xc @ wc.T):
        v = f32(f32(a + int(res.bias.data[o])) * f32(res.scale.data[o] / s_out))
        assert got[n, o] == float2int8(v + f32(5))
