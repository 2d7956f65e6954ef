"""Every file the default recipe writes for each shared model loads back and simulates, keeps
every layer TNN's tool quantizes in int8, and avoids the constructs TNN's int8 runtime gets
wrong (skips without ../shared). Accuracy itself is measured by benchmarks/accuracy.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tnnquant.config import QuantConfig
from tnnquant.exec.executor import Executor
from tnnquant.formats.io import load_model, save_model
from tnnquant.layers.convolution import ACT_SIGMOID_MUL
from tnnquant.quantize import quantize

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "models"
MODELS = ("mobilenetv2", "pplcnet", "yolov8n", "mtcnn_onet")
CALIB_SAMPLES = 4   # enough to exercise every step; accuracy is the benchmark's business


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/models not found")
@pytest.mark.parametrize("name", MODELS)
def test_default_recipe_files_load_and_simulate(name, tmp_path):
    folder = SHARED / name
    graph = load_model(folder / f"{name}.tnnproto", folder / f"{name}.tnnmodel")
    dims = tuple(graph.inputs[0].dims)
    calib = [np.load(p).reshape(dims[1:])
             for p in sorted((folder / "calib").glob("*.npy"))[:CALIB_SAMPLES]]
    default = quantize(graph, calib, QuantConfig())
    tnn = quantize(graph, calib, QuantConfig.tnn())
    proto, model = tmp_path / "q.tnnproto", tmp_path / "q.tnnmodel"
    default.save(proto, model)
    loaded = load_model(proto, model)

    def int8_kinds(g):
        return {lay.name for lay in g.layers if lay.quantized and lay.kind.quantizable}
    assert int8_kinds(loaded) == int8_kinds(tnn.graph)
    for lay in loaded.layers:
        if lay.type == "Convolution":
            assert lay.params.activation_type != ACT_SIGMOID_MUL
        assert not (lay.quantized and lay.type == "ReLU6")
        if lay.quantized and lay.type == "Pooling":
            assert lay.params.pool_type == 0
    x = np.load(sorted((folder / "inputs").glob("*.npy"))[0]).reshape((1,) + dims[1:])
    out = Executor(loaded, mode="int8").run({graph.inputs[0].name: x})
    ref = Executor(graph).run({graph.inputs[0].name: x})
    for key, value in ref.items():
        assert np.isfinite(out[key]).all()
        a, b = value.ravel().astype(np.float64), out[key].ravel().astype(np.float64)
        assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.9, key
    # the files round-trip byte for byte
    save_model(loaded, tmp_path / "r.tnnproto", tmp_path / "r.tnnmodel")
    assert (tmp_path / "r.tnnmodel").read_bytes() == model.read_bytes()
