"""`tnnquant convert` and `-p MODEL.onnx` as a user runs them: files written (atomically), one
error line and no output on bad input, and onnx imported only by commands that read ONNX."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx_models import make_model, node, ort_run, save
from test_cli_info import assert_one_error_line

import tnnquant
from tnnquant.formats.io import load_model

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TINY_ONNX = EXAMPLES / "tiny" / "tiny.onnx"


def tnnquant_cli(args, cwd):
    return subprocess.run([sys.executable, "-m", "tnnquant", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_convert_writes_the_pair(tmp_path):
    result = tnnquant_cli(["convert", TINY_ONNX, "-o", tmp_path / "tiny"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout
    graph = load_model(tmp_path / "tiny.tnnproto", tmp_path / "tiny.tnnmodel")
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    np.testing.assert_allclose(tnnquant.api.run(graph, x)["prob"],
                               ort_run(TINY_ONNX, {"data": x})["prob"], atol=1e-6)


def test_convert_default_name_beside_the_model_and_half(tmp_path):
    model = tmp_path / "net.onnx"
    model.write_bytes(TINY_ONNX.read_bytes())
    result = tnnquant_cli(["convert", model, "--half"], tmp_path)
    assert result.returncode == 0, result.stderr
    graph = load_model(tmp_path / "net.tnnproto", tmp_path / "net.tnnmodel")
    assert {b.data_type.name for _, b in graph.iter_weights()} == {"HALF"}


def test_convert_input_shape(tmp_path):
    model = save(make_model([node("Relu", ["x"])], {"x": ("N", 3, "H", "W")}), tmp_path)
    result = tnnquant_cli(["convert", model], tmp_path)
    assert_one_error_line(result, "dynamic input dims", "x [1, 3, H, W]")
    assert not list(tmp_path.glob("*.tnn*"))
    result = tnnquant_cli(["convert", model, "--input-shape", "x:2,3,8,8"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert load_model(tmp_path / "model.tnnproto", tmp_path / "model.tnnmodel").inputs[0].dims \
        == (2, 3, 8, 8)


@pytest.mark.parametrize("args, fragments", [
    (["convert", "missing.onnx"], ["missing.onnx", "cannot read"]),
    (["convert", "bad.onnx"], ["bad.onnx", "not an ONNX model"]),
    (["convert", "unsupported.onnx"], ["unsupported.onnx", "'erf_y' (Erf, opset 13)"]),
    (["convert", "bad.onnx", "--input-shape", "x"], ["--input-shape x"]),
    (["quantize", "-p", "m.tnnproto", "-i", "."], ["needs its .tnnmodel"]),
    (["quantize", "-p", "unsupported.onnx", "-m", "x.tnnmodel", "-i", "."], ["alone"]),
])
def test_errors_are_one_line_and_write_nothing(tmp_path, args, fragments):
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage" * 3)
    save(make_model([node("Erf", ["x"])], {"x": (1, 3)}), tmp_path, "unsupported.onnx")
    (tmp_path / "m.tnnproto").write_text('"1 1 1 4206624772 ,"\n')
    before = set(tmp_path.iterdir())
    assert_one_error_line(tnnquant_cli(args, tmp_path), *fragments)
    assert set(tmp_path.iterdir()) == before


def test_quantize_an_onnx_model_in_one_step(tmp_path):
    result = tnnquant_cli(["quantize", "-p", TINY_ONNX, "-i", EXAMPLES / "tiny" / "calib",
                           "-n", "127.5,127.5,127.5", "-s", "0.0078431,0.0078431,0.0078431",
                           "-o", tmp_path / "tiny", "--no-report", "-q"], tmp_path)
    assert result.returncode == 0, result.stderr
    quantized = load_model(tmp_path / "tiny.quantized.tnnproto",
                           tmp_path / "tiny.quantized.tnnmodel")
    assert quantized.is_quantized


def test_run_and_info_take_an_onnx_model(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 3, 64, 64), np.float32))
    result = tnnquant_cli(["run", "-p", TINY_ONNX, "-i", x], tmp_path)
    assert result.returncode == 0 and "prob" in result.stdout, result.stderr
    result = tnnquant_cli(["info", TINY_ONNX], tmp_path)
    assert result.returncode == 0 and "Convolution" in result.stdout, result.stderr


def test_python_api_load_model_of_an_onnx_file():
    graph = tnnquant.load_model(TINY_ONNX)
    assert [layer.type for layer in graph.layers][:2] == ["Convolution", "ReLU"]
    assert graph.inputs[0].dims == (1, 3, 64, 64)


def test_onnx_is_imported_only_when_needed():
    code = ("import sys, tnnquant, tnnquant.cli, tnnquant.quantize; "
            "assert 'onnx' not in sys.modules, 'onnx imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_shipped_example_is_what_its_script_makes():
    sys.path.insert(0, str(EXAMPLES))
    try:
        from make_tiny_onnx import tiny_onnx
    finally:
        sys.path.remove(str(EXAMPLES))
    assert tiny_onnx().SerializeToString() == TINY_ONNX.read_bytes()
