"""The fp32 executor's onnxruntime backend against its numpy kernels: whole real models (every
blob), the fallback to numpy, fixed-batch graphs, the in-graph channel extremes, and a
quantization run that never imports the onnx package."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import MODEL_NAMES, need_shared

from tnnquant.calib.collect import calibrated_blobs
from tnnquant.calib.observers import extremes
from tnnquant.exec.executor import Executor
from tnnquant.exec.ort_backend import OrtBackend
from tnnquant.formats.io import load_model
from tnnquant.passes.fuse_activation import fuse_conv_activation
from tnnquant.testing import GraphBuilder


def every_blob(executor: Executor, feeds) -> dict[str, np.ndarray]:
    seen = {}
    executor.run(feeds, hooks=[lambda name, x, layer: seen.__setitem__(name, x)])
    return seen


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_real_models_export_and_match_the_numpy_kernels(model, fused):
    folder = need_shared("models", model)
    graph = load_model(folder / f"{model}.tnnproto", folder / f"{model}.tnnmodel")
    graph = fuse_conv_activation(graph) if fused else graph
    x = np.concatenate([np.load(p) for p in sorted((folder / "inputs").glob("*.npy"))])
    feeds = {graph.inputs[0].name: x}
    fast, ref = Executor(graph), Executor(graph, fp32="numpy")
    got, want = every_blob(fast, feeds), every_blob(ref, feeds)
    assert fast.backend == "onnxruntime"
    assert list(got) == list(want)
    for name, value in want.items():
        assert got[name].shape == value.shape, name
        scale = max(float(np.abs(value).max()), 1e-6)
        np.testing.assert_allclose(got[name], value, rtol=0, atol=2e-5 * scale, err_msg=name)


def small_net(builder: GraphBuilder) -> str:
    x = builder.input("data", (1, 3, 12, 12))
    y = builder.conv(x, 8, 3, pad=1, activation=2)
    y = builder.conv(y, 8, 3, stride=2, group=8, pad_type=0)
    return builder.layer("Pooling", y, "1 0 0 1 1 0 0 -1 -1 -1 0 0 0 0")   # global average


def test_a_layer_without_export_runs_everything_on_numpy():
    b = GraphBuilder()
    y = small_net(b)
    out = b.layer("LRN", y, "0.0001 0.75 1.0 4")     # an even size: no ONNX export
    graph = b.build(out)
    x = np.random.default_rng(1).standard_normal((2, 3, 12, 12), dtype=np.float32)
    fast = Executor(graph)
    assert fast.backend == "numpy"
    assert "LRN" in fast.numpy_reason and "no ONNX export" in fast.numpy_reason
    np.testing.assert_array_equal(fast.run({"data": x})[out],
                                  Executor(graph, fp32="numpy").run({"data": x})[out])


@pytest.mark.parametrize("method", ["run", "extremes"])
def test_onnxruntime_failing_at_run_time_falls_back_to_numpy_and_says_why(monkeypatch, method):
    b = GraphBuilder()
    out = small_net(b)
    graph = b.build(out)
    x = np.random.default_rng(3).standard_normal((1, 3, 12, 12), dtype=np.float32)
    fast = Executor(graph)
    assert fast.backend == "onnxruntime" and fast.numpy_reason is None

    def fail(*args, **kwargs):
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : boom\nStack trace")

    monkeypatch.setattr(OrtBackend, method, fail)
    reference = Executor(graph, fp32="numpy")
    if method == "run":
        np.testing.assert_array_equal(fast.run({"data": x})[out],
                                      reference.run({"data": x})[out])
    else:
        lo, hi, _ = fast.extremes({"data": x}, [out])[out]
        want_lo, want_hi, _ = reference.extremes({"data": x}, [out])[out]
        np.testing.assert_array_equal(lo, want_lo)
        np.testing.assert_array_equal(hi, want_hi)
    assert fast.backend == "numpy"
    assert fast.numpy_reason == ("onnxruntime failed: [ONNXRuntimeError] : 6 : "
                                 "RUNTIME_EXCEPTION : boom")   # its first line


def test_a_graph_whose_shapes_fold_the_batch_gets_a_model_per_batch_size():
    """Reshape "1 -1" puts the whole batch in dim 1: the export is made for each batch size."""
    b = GraphBuilder()
    y = small_net(b)
    out = b.layer("Reshape", y, "0 2 2 1 -1 0")
    graph = b.build(out)
    fast, ref = Executor(graph), Executor(graph, fp32="numpy")
    assert fast.backend == "onnxruntime" and not fast._ort.symbolic
    for n in (1, 3):
        x = np.random.default_rng(n).standard_normal((n, 3, 12, 12), dtype=np.float32)
        got, want = fast.run({"data": x})[out], ref.run({"data": x})[out]
        assert got.shape == want.shape == (1, n * 8)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_extremes_equal_the_observers_and_redo_nan_blobs_exactly():
    b = GraphBuilder()
    x = b.input("data", (1, 3, 12, 12))
    ratio = b.layer("Div", [x, x], "-1", channels=3)   # 0 / 0 = NaN where the input is 0
    out = b.layer("ReLU", b.conv(ratio, 4, 3, pad=1))
    graph = b.build(out)
    data = np.random.default_rng(2).standard_normal((2, 3, 12, 12), dtype=np.float32)
    data[0, 1, :4] = 0
    fast = Executor(graph)
    blobs = [n for layer in graph.layers for n in layer.outputs] + ["data"]
    found = fast.extremes({"data": data}, blobs)
    assert fast.backend == "onnxruntime"
    reference = every_blob(Executor(graph, fp32="numpy"), {"data": data})
    assert set(found) == set(blobs) and np.isnan(reference[ratio]).any()
    for name in (ratio, "data"):   # NaN never picked: the numbers' extremes, exactly
        lo, hi, shape = found[name]
        want_lo, want_hi = extremes(reference[name])
        assert shape == reference[name].shape
        np.testing.assert_array_equal(lo, want_lo, err_msg=name)
        np.testing.assert_array_equal(hi, want_hi, err_msg=name)
    for name in blobs:
        lo, hi, _ = found[name]
        want_lo, want_hi = extremes(reference[name])
        np.testing.assert_allclose(lo, want_lo, rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(hi, want_hi, rtol=1e-5, atol=1e-6, err_msg=name)


def test_quantization_never_imports_the_onnx_package(tmp_path):
    """Building the model needs no `onnx` (whose import alone costs ~0.6 s)."""
    script = (
        "import sys, numpy as np\n"
        "from tnnquant.quantize import quantize\n"
        "from tnnquant.testing import GraphBuilder\n"
        "b = GraphBuilder()\n"
        "x = b.input('data', (1, 3, 8, 8))\n"
        "y = b.conv(x, 4, 3, pad=1, activation=1)\n"
        "graph = b.build(y)\n"
        "data = [np.random.default_rng(i).standard_normal((3, 8, 8)).astype(np.float32)\n"
        "        for i in range(3)]\n"
        "quantize(graph, data)\n"
        "assert 'onnx' not in sys.modules, 'onnx was imported'\n"
        "assert 'onnxruntime' in sys.modules\n")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)


def test_calibrated_blobs_of_the_real_models_are_observed_as_numpy_sees_them():
    folder = need_shared("models", "yolov8n")
    graph = fuse_conv_activation(load_model(folder / "yolov8n.tnnproto",
                                            folder / "yolov8n.tnnmodel"))
    x = np.load(sorted((folder / "calib").glob("*.npy"))[0])
    blobs = list(calibrated_blobs(graph))
    found = Executor(graph).extremes({graph.inputs[0].name: x}, blobs)
    reference = every_blob(Executor(graph, fp32="numpy"), {graph.inputs[0].name: x})
    for name in blobs:
        lo, hi, _ = found[name]
        want_lo, want_hi = extremes(reference[name])
        scale = max(float(np.abs(reference[name]).max()), 1e-6)
        np.testing.assert_allclose(lo, want_lo, rtol=0, atol=2e-5 * scale, err_msg=name)
        np.testing.assert_allclose(hi, want_hi, rtol=0, atol=2e-5 * scale, err_msg=name)
