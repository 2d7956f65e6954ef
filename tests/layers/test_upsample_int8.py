"""Int8 Upsample (spec int8 §12.9): dequantize, fp32 upsample, quantize by division."""
from __future__ import annotations

import numpy as np
import pytest
from int8_refs import float2int8

from tnnquant.ir.graph import BlobScale
from tnnquant.testing import run_int8_layer, run_layer

f32 = np.float32


@pytest.mark.parametrize("params", ["1 2 2 0", "2 2 2 0", "2 2 2 1"])
def test_upsample_requantizes_through_fp32(params):
    x = np.random.default_rng(0).integers(-128, 128, (1, 2, 3, 4)).astype(np.int8)
    s_in, s_out = f32(0.05), f32(0.07)
    got = run_int8_layer("Upsample", params, x, scales=[BlobScale([s_in], [9])],
                         out_scales=[BlobScale([s_out], [-9])])    # zero points ignored
    y = run_layer("Upsample", params, x.astype(f32) * s_in)
    np.testing.assert_array_equal(got, np.vectorize(lambda v: float2int8(v / s_out))(y))
