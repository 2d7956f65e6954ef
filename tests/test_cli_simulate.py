"""`tnnquant simulate` as a user runs it (a subprocess): TNN's own quantized models give TNN's
X86 int8 outputs, printed and saved like `tnnquant run` does."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import need_shared


REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: object) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "tnnquant", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


def test_simulate_saves_tnn_outputs(tmp_path):
    root = need_shared("models", "mtcnn_onet")
    result = run_cli("simulate", "-p", root / "quant/b2w1.quantized.tnnproto",
                     "-m", root / "quant/b2w1.quantized.tnnmodel",
                     "-i", root / "inputs/imagenet_05_853.npy", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("dense_5  1x4  min ") and lines[1].startswith("  top: [")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dense_5.npy", "dense_6.npy",
                                                          "softmax_2.npy"]
    assert f"wrote {tmp_path / 'dense_6.npy'}" in lines
    for name in ("dense_5", "dense_6"):   # int8 outputs, dequantized: bit-identical to TNN
        got = np.load(tmp_path / f"{name}.npy")
        assert got.dtype == np.float32
        np.testing.assert_array_equal(
            got, np.load(root / f"int8/b2w1/imagenet_05_853/{name}.npy").reshape(got.shape))


def test_simulate_with_image_preprocessing_and_errors(tmp_path):
    root = need_shared("models", "mobilenetv2")
    data = need_shared("data", "imagenet20")
    image = sorted(p for p in data.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[0]
    model = ("-p", root / "quant/b0w0.quantized.tnnproto",
             "-m", root / "quant/b0w0.quantized.tnnmodel")
    result = run_cli("simulate", *model, "-i", image, "-n", "123.675,116.28,103.53",
                     "-s", "0.0171247538,0.0175070028,0.0174291939")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("logits  1x1000  min ")
    bad = run_cli("simulate", "-p", root / "mobilenetv2.tnnproto",
                  "-m", root / "mobilenetv2.tnnmodel", "-i", image)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.splitlines() == [f"error: {root / 'mobilenetv2.tnnproto'} has no "
                                       f"quantized layer: use 'tnnquant run'"]
