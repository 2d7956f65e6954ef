"""`tnnquant quantize` presets and recipe options, and the default-recipe line of
`quantization_cmd`, as a user runs them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tnnquant.formats.io import load_model, save_model
from tnnquant.testing import GraphBuilder

TNNQUANT = [sys.executable, "-m", "tnnquant"]
QCMD = [sys.executable, "-c", "import sys; from tnnquant.cli import quantization_cmd_main as m; "
                              "sys.exit(m())"]


@pytest.fixture
def model(tmp_path) -> tuple[Path, Path, Path]:
    b = GraphBuilder(0)
    x = b.input("data", (1, 3, 12, 12))
    c = b.conv(x, 8, 3, pad=1, name="conv1")
    r = b.layer("ReLU", c, name="relu")
    c2 = b.conv(r, 8, 1, name="conv2")
    a = b.layer("Add", [c2, r], "-1", name="add")
    c3 = b.conv(a, 4, 3, pad=1, name="conv3")
    proto, weights = tmp_path / "m.tnnproto", tmp_path / "m.tnnmodel"
    save_model(b.build(c3), proto, weights)
    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        np.save(calib / f"{i}.npy", rng.normal(size=(3, 12, 12)).astype(np.float32))
    return proto, weights, calib


def run(cmd, args, cwd):
    return subprocess.run(cmd + [str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_preset_tnn_is_quantization_cmd_and_default_differs(model, tmp_path):
    proto, weights, calib = model
    common = ["-p", proto, "-m", weights, "-i", calib, "--no-report"]
    assert run(QCMD, common + ["-o", "tnn"], tmp_path).returncode == 0
    proc = run(TNNQUANT, ["quantize"] + common + ["--preset", "tnn", "-o", "preset"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = run(TNNQUANT, ["quantize"] + common + ["-o", "default"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "scale search" in proc.stdout
    files = {n: (tmp_path / f"{n}.quantized.tnnmodel").read_bytes()
             for n in ("tnn", "preset", "default")}
    assert files["tnn"] == files["preset"]
    assert files["default"] != files["tnn"]
    q = load_model(tmp_path / "default.quantized.tnnproto",
                   tmp_path / "default.quantized.tnnmodel")
    assert {lay.name for lay in q.layers if lay.quantized} >= {"conv1", "conv2", "add", "conv3"}


def test_switching_a_technique_off_and_target_cos(model, tmp_path):
    proto, weights, calib = model
    common = ["quantize", "-p", proto, "-m", weights, "-i", calib, "--no-report"]
    proc = run(TNNQUANT, common + ["--no", "scale-search", "--no", "bias-correction"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "scale search" not in proc.stdout
    proc = run(TNNQUANT, common + ["--target-cos", "1.0"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "mixed precision" in proc.stdout and "Reformat" in proc.stdout
    proc = run(TNNQUANT, common + ["--no", "nope"], tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr


def test_quantization_cmd_summary_says_what_the_default_recipe_reaches(model, tmp_path):
    proto, weights, calib = model
    proc = run(QCMD, ["-p", proto, "-m", weights, "-i", calib], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines()
             if line.startswith("tnnquant quantize (default recipe)")]
    assert len(lines) == 1 and "cosine" in lines[0]


def test_histogram_memory_is_the_presets_unless_given():
    """TNN's recipe keeps 32 MB of histograms (quantization_cmd's memory is measured against
    TNN's tool), tnnquant's 256 MB (its later passes need far more anyway); --hist-memory wins."""
    from tnnquant.cli import build_parser, quant_config_from
    parser = build_parser()
    base = ["quantize", "-p", "m.tnnproto", "-m", "m.tnnmodel", "-i", "calib"]
    assert quant_config_from(parser.parse_args(base)).hist_memory_mb == 256
    assert quant_config_from(parser.parse_args(base + ["--preset", "tnn"])).hist_memory_mb == 32
    for preset in ("default", "tnn"):
        args = parser.parse_args(base + ["--preset", preset, "--hist-memory", "7"])
        assert quant_config_from(args).hist_memory_mb == 7


def test_with_switches_a_technique_beyond_the_default_on():
    from tnnquant.cli import build_parser, quant_config_from
    parser = build_parser()
    base = ["quantize", "-p", "m.tnnproto", "-m", "m.tnnmodel", "-i", "calib"]
    assert not quant_config_from(parser.parse_args(base)).offset_float_blobs
    config = quant_config_from(parser.parse_args(base + ["--with", "float-blob-offsets"]))
    assert config.offset_float_blobs and config.scale_search
    with pytest.raises(SystemExit):
        parser.parse_args(base + ["--with", "nope"])
