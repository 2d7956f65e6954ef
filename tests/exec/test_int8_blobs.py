"""Layer by layer against the real TNN: every blob of one X86 int8 run of MobileNetV2 and MTCNN
O-Net (b0w0, input imagenet_00_243), dumped after TNN's runtime fusions together with its layer
(``blobs_b0w0_<input>.npz`` + ``.manifest.txt`` in ../shared/models).

The runtime graph must have TNN's layers, in TNN's order, with TNN's names (Reformats included);
int8 blobs must equal TNN's codes on >= 99.9% of the values and be within one code elsewhere,
and their dequantized values must be TNN's; fp32 blobs must agree to float rounding."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import need_shared

from tnnquant.exec.executor import Executor
from tnnquant.formats.io import load_model

INPUT = "imagenet_00_243"


def manifest(root):
    lines = (root / f"blobs_b0w0_{INPUT}.manifest.txt").read_text().splitlines()
    return [line.split("\t")[:6] for line in lines]


@pytest.mark.parametrize("model", ["mobilenetv2", "mtcnn_onet"])
def test_every_blob_matches_tnn(model, record_property):
    root = need_shared("models", model)
    graph = load_model(root / "quant/b0w0.quantized.tnnproto",
                       root / "quant/b0w0.quantized.tnnmodel")
    ex = Executor(graph, mode="int8")
    entries = manifest(root)
    assert [(lay.proto_type, lay.name) for lay in ex.order] == [(t, n) for _, t, n, *_ in entries]

    blobs = {}
    ex.run({graph.inputs[0].name: np.load(root / "inputs" / f"{INPUT}.npy")},
           hooks=[lambda name, value, layer: blobs.setdefault(name, value)])
    dumps = np.load(root / f"blobs_b0w0_{INPUT}.npz")
    exact = total = 0
    for index, _, layer, blob, dtype, dims in entries:
        got = blobs[blob]
        assert got.shape == tuple(int(d) for d in dims.split(",")), blob
        want = dumps[f"{index}:{blob}:dequant"].reshape(got.shape)
        if dtype == "int8":
            codes = dumps[f"{index}:{blob}:int8"].reshape(got.shape)
            assert got.dtype == np.int8, blob
            diff = np.abs(got.astype(int) - codes)
            assert diff.max() <= 1 and np.mean(diff == 0) >= 0.999, blob
            exact += np.count_nonzero(diff == 0)
            total += diff.size
            np.testing.assert_array_equal(ex.dequantize(blob, codes), want)
        else:
            assert got.dtype == np.float32, blob
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * np.abs(want).max())
    record_property("int8_exact_fraction", exact / total)
    print(f"{model}: {exact}/{total} int8 values equal to TNN's ({exact / total:.6f})")
