"""Int8 Add (spec int8 §12.5, §13): dequantize, add, requantize; inputs with different scales."""
from __future__ import annotations

import numpy as np
import pytest
from int8_refs import float2int8, x86_round

from tnnquant.ir.graph import BlobScale
from tnnquant.testing import run_int8_layer

f32 = np.float32


def test_x86_add_multiplies_by_the_reciprocal():
    rng = np.random.default_rng(0)
    a, b = (rng.integers(-128, 128, (2, 3, 4, 4)).astype(np.int8) for _ in range(2))
    sa, sb = rng.uniform(0.01, 0.1, 3).astype(f32), np.array([0.04], f32)
    so = rng.uniform(0.02, 0.2, 3).astype(f32)
    got = run_int8_layer("QuantizedAdd", "-1", a, b, scales=[sa, sb], out_scales=[so])
    for (n, c, y, x), q in np.ndenumerate(got):
        total = f32(a[n, c, y, x] * sa[c]) + f32(b[n, c, y, x] * sb[0])
        assert q == x86_round(total * f32(1.0 / float(so[c])))


def test_saturation_both_ways():
    big = np.full((1, 1, 1, 2), 127, np.int8)
    big[..., 1] = -128
    got = run_int8_layer("QuantizedAdd", "-1", big, big, scales=[[1.0], [1.0]],
                         out_scales=[[1.0]])
    np.testing.assert_array_equal(got.ravel(), [127, -128])


def test_naive_add_divides_and_honours_zero_points():
    rng = np.random.default_rng(1)
    xs = [rng.integers(-128, 128, (1, 2, 3)).astype(np.int8) for _ in range(3)]
    scales = [BlobScale([0.05, 0.07], [1, -2]), BlobScale([0.03, 0.02], [0, 4]),
              BlobScale([0.01, 0.09], [3, 3])]
    out = BlobScale([0.1, 0.15], [-1, 2])
    got = run_int8_layer("QuantizedAdd", "-1", *xs, scales=scales, out_scales=[out],
                         device="naive")
    for (n, c, i), q in np.ndenumerate(got):
        acc = None
        for x, s in zip(xs, scales):
            term = f32(s.scale[c] * f32(f32(x[n, c, i]) - f32(s.zero_points[c])))
            acc = term if acc is None else f32(acc + term)
        assert q == float2int8(f32(acc / out.scale[c]) + f32(out.zero_points[c]))


def test_refusals():
    x = np.zeros((1, 2, 2, 2), np.int8)
    with pytest.raises(ValueError, match="does not broadcast"):
        run_int8_layer("QuantizedAdd", "-1", x, x[:, :1], scales=[[1.0], [1.0]],
                       out_scales=[[1.0]])
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        run_int8_layer("QuantizedAdd", "-1", x, x, x, scales=[[1.0]] * 3, out_scales=[[1.0]])
