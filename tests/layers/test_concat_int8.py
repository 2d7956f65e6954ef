"""Int8 Concat (spec int8 §12.6, §13): per-tensor inputs are requantized with a precomputed
ratio, any per-channel input makes it a raw byte copy."""
from __future__ import annotations

import numpy as np
from int8_refs import float2int8, x86_round

from tnnquant.ir.graph import BlobScale
from tnnquant.testing import run_int8_layer

f32 = np.float32


def inputs():
    rng = np.random.default_rng(0)
    return [rng.integers(-128, 128, (1, c, 3, 3)).astype(np.int8) for c in (2, 3)]


def test_per_tensor_inputs_are_requantized():
    xs = inputs()
    s_in, s_out = [f32(0.05), f32(0.3)], f32(0.1)
    got = run_int8_layer("QuantizedConcat", "1", *xs, scales=[[s] for s in s_in],
                         out_scales=[[s_out]])
    want = [np.vectorize(lambda q, s=s: x86_round(f32(q) * f32(s / s_out)))(x)
            for x, s in zip(xs, s_in)]
    np.testing.assert_array_equal(got, np.concatenate(want, axis=1))
    assert got[0, 2:].max() == 127 and got[0, 2:].min() == -128   # 3x the range saturates


def test_naive_requantizes_by_division_with_zero_points():
    xs = inputs()
    scales = [BlobScale([0.05], [2]), BlobScale([0.3], [-1])]
    out = BlobScale([0.1], [4])
    got = run_int8_layer("QuantizedConcat", "1", *xs, scales=scales, out_scales=[out],
                         device="naive")
    want = [np.vectorize(lambda q, s=s: float2int8(
        f32(f32(f32(int(q) - int(s.zero_points[0])) * s.scale[0]) / out.scale[0]) + f32(4)))(x)
        for x, s in zip(xs, scales)]
    np.testing.assert_array_equal(got, np.concatenate(want, axis=1))


def test_any_per_channel_input_copies_bytes():
    xs = inputs()
    got = run_int8_layer("QuantizedConcat", "1", *xs, scales=[[0.05], [0.1, 0.2, 0.3]],
                         out_scales=[[0.1] * 5])
    np.testing.assert_array_equal(got, np.concatenate(xs, axis=1))
