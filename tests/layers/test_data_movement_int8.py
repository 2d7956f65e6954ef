"""Layers whose int8 path only moves codes (spec int8 §12.9): the codes come out exactly where
the fp32 kernel puts the values, still int8."""
from __future__ import annotations

import numpy as np
import pytest

from tnnquant.testing import run_int8_layer, run_layer

CASES = [
    ("Reshape", "0 2 2 -1 0 0", 1), ("Reshape", "0 3 3 0 -1 4 1", 1),
    ("Flatten", "1", 1), ("Permute", "4 0 2 3 1", 1), ("SplitV", "1 2 2 4", 2),
    ("StridedSlice", "4 0 1 0 1 4 0 4 0 0 4 1 1 2 1", 1),
    ("StridedSliceV2", "2 1 0 2 5 4 2 1 3 2 1 2", 1),
    ("Pad", "0 0 1 1 2 0 0 1 0 0", 1), ("PadV2", "4 0 0 1 0 0 1 2 0 2 0", 1),
    ("PadV2", "4 0 0 1 1 0 0 1 1 1 0", 1), ("ShuffleChannel", "3", 1),
]


@pytest.mark.parametrize("type_str, params, n_out", CASES)
def test_codes_move_like_values(type_str, params, n_out):
    x = np.random.default_rng(0).integers(-128, 128, (2, 6, 5, 4)).astype(np.int8)
    got = run_int8_layer(type_str, params, x, scales=[[0.1]], out_scales=[[0.1]] * n_out)
    want = run_layer(type_str, params, x.astype(np.float32), n_out=n_out)
    got, want = (got, want) if n_out > 1 else ((got,), (want,))
    for g, w in zip(got, want):
        assert g.dtype == np.int8
        np.testing.assert_array_equal(g, w)


def test_nonzero_constant_padding_is_refused():
    with pytest.raises(ValueError, match="value 1.5"):
        run_int8_layer("PadV2", "4 0 0 1 1 0 0 1 1 0 1.5", np.zeros((1, 1, 2, 2), np.int8),
                       scales=[[0.1]], out_scales=[[0.1]])
