"""Int8 Reformat (spec int8 §11.2; x86 §13, NAIVE §12.2): fp32 -> int8 and back, with the
blob converter's formulas, several blobs per layer."""
from __future__ import annotations

import numpy as np
from int8_refs import float2int8, x86_round

from tnnquant.ir.graph import BlobScale
from tnnquant.layers.reformat import ReformatParams
from tnnquant.testing import run_int8_layer

f32 = np.float32
TO_INT8, TO_FLOAT = ReformatParams(0, 2), ReformatParams(2, 0)


def test_fp32_to_int8_x86_and_naive():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 2, (1, 3, 4, 4)).astype(f32)
    x[0, 0, 0, :2] = [1e6, -1e6]                  # saturation
    scale = np.array([0.02, 0.05, 0.0], f32)     # a zero scale: x86 has no guard
    x86 = run_int8_layer("Reformat", TO_INT8, x, scales=[None], out_scales=[scale])[0]
    naive = run_int8_layer("Reformat", TO_INT8, x, scales=[None], out_scales=[scale],
                           device="naive")[0]
    for (n, c, y, xx), v in np.ndenumerate(x):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            assert x86[n, c, y, xx] == x86_round(v * f32(np.float64(1) / scale[c]))
            assert naive[n, c, y, xx] == (0 if scale[c] == 0 else float2int8(v / scale[c]))
    assert x86[0, 0, 0, 0] == 127 and x86[0, 0, 0, 1] == -128


def test_int8_to_fp32_and_several_blobs():
    a = np.arange(-128, 128, dtype=np.int8).reshape(1, 4, 8, 8)
    b = np.array([[-128, 0, 127]], np.int8)
    sa, sb = np.array([0.1, 0.2, 0.3, 0.4], f32), np.array([0.5], f32)
    fa, fb = run_int8_layer("Reformat", TO_FLOAT, a, b, scales=[sa, sb], out_scales=[None, None])
    np.testing.assert_array_equal(fa, a.astype(f32) * sa.reshape(1, 4, 1, 1))
    np.testing.assert_array_equal(fb, [[-64, 0, 63.5]])
    assert fa.dtype == np.float32
    naive = run_int8_layer("Reformat", TO_FLOAT, b, scales=[BlobScale(sb, [1])],
                           out_scales=[None], device="naive")[0]
    np.testing.assert_array_equal(naive, [[-64.5, -0.5, 63]])
