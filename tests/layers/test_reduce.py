"""fp32 kernels of ReduceSum/ReduceMean/ReduceMax against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_ops import run_onnx_op

from tnnquant.errors import TnnQuantError
from tnnquant.testing import run_layer



@pytest.mark.parametrize("tnn, onnx_type", [("ReduceSum", "ReduceSum"), ("Reduce_Sum", "ReduceSum"),
                                            ("ReduceMean", "ReduceMean"),
                                            ("ReduceMax", "ReduceMax")])
@pytest.mark.parametrize("params", ["1 1", "0 1", "0 2 3", "1 -1 -2", "0 0 1 2 3", "1 0 2",
                                    "1", "0"])
def test_reduce(rng, tnn, onnx_type, params):
    x = rng.standard_normal((2, 3, 4, 5), dtype=np.float32)
    keep_dims, *axes = (int(w) for w in params.split())
    # a line without axes reduces every dim, as ONNX does without an axes input
    axes_input = [np.array(axes, np.int64)] if axes else []
    ref = run_onnx_op(onnx_type, x, *axes_input, keepdims=keep_dims, opset=18)
    y = run_layer(tnn, params, x)
    assert y.dtype == np.float32 and y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_reduce_axis_out_of_range(rng):
    with pytest.raises(TnnQuantError, match="axis 4 is out of range for a 4-d input"):
        run_layer("ReduceSum", "1 4", rng.standard_normal((1, 2, 3, 4), dtype=np.float32))
