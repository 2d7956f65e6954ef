"""Int8 Concat (spec int8 §12.6, §13): per-tensor inputs are requantized with a precomputed
ratio, any per-channel input makes it a raw byte copy."""
from __future__ import annotations

import numpy as np
import pytest
from int8_refs import float2int8, x86_round

from tnnquant.ir.graph import BlobScale
from tnnquant.layers.concat import ConcatParams, copy_scale_error
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


def _copy_error_measured(xs, scales, out_scale, axis):
    """The largest relative change a byte-copying int8 Concat makes to its inputs' values:
    run it, read its output codes with the output's scales, compare with the values the
    input codes stood for (nonzero codes only)."""
    got = run_int8_layer("QuantizedConcat", str(axis), *xs, scales=[list(s) for s in scales],
                         out_scales=[list(out_scale)]).astype(np.float64)
    made = [x.astype(np.float64) * np.reshape(np.broadcast_to(s, (x.shape[1],)), (1, -1, 1, 1))
            for x, s in zip(xs, scales)]
    made = np.concatenate(made, axis=axis)
    read = got * np.reshape(np.broadcast_to(out_scale, (got.shape[1],)), (1, -1, 1, 1))
    live = made != 0
    return float(np.max(np.abs(read[live] / made[live] - 1)))


@pytest.mark.parametrize("in_scales, out_scale, axis", [
    ([[0.5, 0.5], [1.0, 2.0, 3.0]], [0.5, 0.5, 1.0, 2.0, 3.0], 1),   # exact copy
    ([[0.5], [1.0, 2.0, 3.0]], [0.5, 0.5, 1.0, 2.0, 3.0], 1),        # per-tensor input, exact
    ([[0.5], [1.0, 2.0, 3.0]], [1.0, 1.0, 1.0, 2.0, 3.0], 1),        # its codes read 2x
    ([[0.5, 0.25], [1.0, 2.0, 3.0]], [0.5, 0.5, 1.5, 2.0, 2.0], 1),
    ([[1.0, 2.0, 3.0], [2.0, 2.0, 1.0]], [2.0, 2.0, 3.0], 2),        # YOLOv8's spatial concat
])
def test_copy_scale_error_is_what_the_byte_copy_does_to_the_values(in_scales, out_scale, axis):
    rng = np.random.default_rng(1)
    channels = [len(s) if len(s) > 1 else 2 for s in in_scales]
    if axis == 2:
        channels = [3, 3]
    xs = [rng.integers(-128, 128, (1, c, 3, 3)).astype(np.int8) for c in channels]
    scales = [np.array(s, f32) for s in in_scales]
    out = np.array(out_scale, f32)
    shapes = [x.shape for x in xs] + [(1, len(out_scale), 3, 3)]
    got = copy_scale_error(ConcatParams(axis), scales, out, shapes)
    assert got == pytest.approx(_copy_error_measured(xs, scales, out, axis), abs=1e-7)


def test_copy_scale_error_of_requantizing_or_mismatched_scales():
    shapes = [(1, 2, 3, 3), (1, 3, 3, 3), (1, 5, 3, 3)]
    per_tensor = [np.array([0.5], f32), np.array([2.0], f32)]
    assert copy_scale_error(ConcatParams(1), per_tensor, np.array([9.0], f32), shapes) == 0
    wrong_count = [np.array([0.5], f32), np.array([1.0, 2.0], f32)]   # 2 scales, 3 channels
    assert copy_scale_error(ConcatParams(1), wrong_count, np.ones(5, f32), shapes) == np.inf
    dead = [np.array([0.0, 0.5], f32), np.array([1.0, 2.0, 3.0], f32)]   # a channel of zeros
    assert copy_scale_error(ConcatParams(1), dead, np.array([7, 0.5, 1, 2, 3], f32),
                            shapes) == 0
