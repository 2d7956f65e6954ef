"""`quantization_cmd` / `tnnquant quantize` as a user runs them: output files, and every bad
input giving one line on stderr, exit code 1, no traceback and no output file."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tnnquant.formats.io import load_model, save_model
from tnnquant.testing import GraphBuilder

CMD = [sys.executable, "-c", "import sys; from tnnquant.cli import quantization_cmd_main as m; "
                             "sys.exit(m())"]
OUTPUTS = ("model_quantized.tnnproto", "model_quantized.tnnmodel")


@pytest.fixture
def model(tmp_path) -> tuple[Path, Path, Path]:
    """A small float model and a calibration folder of three .npy samples."""
    b = GraphBuilder(0)
    x = b.input("data", (1, 3, 12, 12))
    c = b.conv(x, 4, 3, pad=1, name="conv1")
    r = b.layer("ReLU", c, name="relu")
    c2 = b.conv(r, 4, 3, pad=1, name="conv2")
    proto, weights = tmp_path / "m.tnnproto", tmp_path / "m.tnnmodel"
    save_model(b.build(c2), proto, weights)
    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        np.save(calib / f"{i}.npy", rng.normal(size=(3, 12, 12)).astype(np.float32))
    return proto, weights, calib


def run(args, cwd):
    return subprocess.run(CMD + [str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_writes_seed_names_in_cwd_and_dotted_names_with_o(model, tmp_path):
    proto, weights, calib = model
    out = tmp_path / "out"
    out.mkdir()
    proc = run(["-p", proto, "-m", weights, "-i", calib], out)
    assert proc.returncode == 0, proc.stderr
    assert "quantized 2 of 2 layers" in proc.stdout
    q = load_model(out / OUTPUTS[0], out / OUTPUTS[1])
    assert [layer.proto_type for layer in q.layers] == ["QuantizedConvolution"] * 2
    proc = run(["-p", proto, "-m", weights, "-i", calib, "-o", tmp_path / "named", "-b", "2",
                "-w", "1", "-t", "1"], out)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "named.quantized.tnnproto").exists()
    assert (tmp_path / "named.quantized.tnnmodel").exists()


def test_tnnquant_quantize_takes_method_names(model, tmp_path):
    proto, weights, calib = model
    proc = subprocess.run([sys.executable, "-m", "tnnquant", "quantize", "-p", str(proto), "-m",
                           str(weights), "--input_path", str(calib), "--blob_method", "kl",
                           "--weight_method", "admm", "-o", str(tmp_path / "k")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "k.quantized.tnnmodel").exists()


def bad_txt(folder: Path, text: str) -> None:
    (folder / "a.txt").write_text(text)


def _case_inputs(tmp_path: Path, case: str) -> Path:
    folder = tmp_path / f"in_{case}"
    folder.mkdir()
    n = 3 * 12 * 12
    if case == "txt_count":
        bad_txt(folder, "\n".join(["0.5"] * (n - 1)) + "\n")
    elif case == "txt_nonnumber":
        bad_txt(folder, "\n".join(["0.5"] * 10 + ["abc"] + ["0.5"] * (n - 11)) + "\n")
    elif case == "txt_nan":
        bad_txt(folder, "\n".join(["0.5"] * 4 + ["nan"] + ["0.5"] * (n - 5)) + "\n")
    elif case == "txt_inf":
        bad_txt(folder, "\n".join(["inf"] + ["0.5"] * (n - 1)) + "\n")
    elif case == "npy_shape":
        np.save(folder / "a.npy", np.zeros((3, 10, 12), np.float32))
    elif case == "npy_nan":
        a = np.zeros((3, 12, 12), np.float32)
        a[1, 2, 3] = np.nan
        np.save(folder / "a.npy", a)
    elif case == "image_corrupt":
        (folder / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    elif case == "only_other_files":
        (folder / "readme.md").write_text("hello")
    elif case == "image_ok":
        Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(folder / "a.png")
    return folder


BAD_INPUTS = {
    "txt_count": ("a.txt", "432"),
    "txt_nonnumber": ("a.txt:11",),
    "txt_nan": ("a.txt:5",),
    "txt_inf": ("a.txt:1",),
    "npy_shape": ("a.npy",),
    "npy_nan": ("a.npy",),
    "image_corrupt": ("a.png",),
    "only_other_files": ("in_only_other_files",),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_calibration_input(model, tmp_path, case):
    proto, weights, _ = model
    folder = _case_inputs(tmp_path, case)
    proc = run(["-p", proto, "-m", weights, "-i", folder], tmp_path)
    assert_one_line_error(proc, *BAD_INPUTS[case])
    assert not any((tmp_path / name).exists() for name in OUTPUTS)


BAD_OPTIONS = {
    "b1": (["-b", "1"], "ADMM is a weight method"),
    "b7": (["-b", "7"], "-b 7"),
    "bname": (["-b", "kll"], "-b kll"),
    "w2": (["-w", "2"], "-w 2"),
    "t5": (["-t", "5"], "-t/--merge_type"),
    "r2": (["-r", "2"], "--reverse_channel"),
    "mean_syntax": (["-n", "1,a,3"], "-n"),
    "scale_syntax": (["-s", "0.5;0.5"], "-s"),
    "missing_dir": (["-i", "/nonexistent/calib"], "/nonexistent/calib"),
    "missing_proto": (["-p", "/nonexistent/m.tnnproto"], "/nonexistent/m.tnnproto"),
    "exclude": (["--exclude", "nope"], "nope"),
    "batch0": (["--batch", "0"], "batch"),
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_bad_options(model, tmp_path, case):
    proto, weights, calib = model
    extra, needle = BAD_OPTIONS[case]
    args = {"-p": proto, "-m": weights, "-i": calib}
    for flag in ("-p", "-i"):
        if flag in extra:
            args[flag] = extra[extra.index(flag) + 1]
            extra = [e for j, e in enumerate(extra) if j not in (extra.index(flag),
                                                                 extra.index(flag) + 1)]
    flat = [item for kv in args.items() for item in kv] + extra
    proc = run(flat, tmp_path)
    assert_one_line_error(proc, needle)
    assert not any((tmp_path / name).exists() for name in OUTPUTS)


def test_too_few_means_for_image_input(model, tmp_path):
    proto, weights, _ = model
    folder = _case_inputs(tmp_path, "image_ok")
    proc = run(["-p", proto, "-m", weights, "-i", folder, "-n", "1,2"], tmp_path)
    assert_one_line_error(proc, "-n")
    assert not any((tmp_path / name).exists() for name in OUTPUTS)


def test_unwritable_output_leaves_nothing(model, tmp_path):
    proto, weights, calib = model
    proc = run(["-p", proto, "-m", weights, "-i", calib, "-o", tmp_path / "no" / "such" / "x"],
               tmp_path)
    assert_one_line_error(proc, "cannot write")
    assert not list((tmp_path).glob("*.quantized.*"))


def test_missing_output_folder_fails_before_calibration(model, tmp_path):
    """The output folder is checked first: the error names it, not a calibration file that
    only calibration would have read (a corrupt image here)."""
    proto, weights, calib = model
    (calib / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    target = tmp_path / "no" / "x"
    proc = run(["-p", proto, "-m", weights, "-i", calib, "-o", target], tmp_path)
    assert_one_line_error(proc, f"{target}.quantized.tnnproto", "no such folder")
    assert "broken.png" not in proc.stderr


def labelled_eval_folder(folder: Path, rng) -> Path:
    """An evaluation folder as datasets ship them: samples, labels.txt and classes.txt."""
    folder.mkdir()
    for i in range(2):
        np.save(folder / f"img{i}.npy", rng.normal(size=(3, 12, 12)).astype(np.float32))
    (folder / "labels.txt").write_text("img0.npy 1\nimg1.npy 0\n")
    (folder / "classes.txt").write_text("tench\ngoldfish\n")
    return folder


def test_eval_folder_with_label_files(model, tmp_path):
    """labels.txt / classes.txt are not samples (calib.inputs.not_a_sample): skipped, said once,
    the summary is printed, exit 0."""
    proto, weights, calib = model
    folder = labelled_eval_folder(tmp_path / "eval", np.random.default_rng(1))
    proc = run(["-p", proto, "-m", weights, "-i", calib, "--eval", folder, "-o", "q"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "accuracy of the int8 model" in proc.stdout and "on 2 samples" in proc.stdout
    skips = [line for line in proc.stderr.splitlines() if "skipped" in line]
    assert skips == [f"warning: {folder}: skipped 2 entries that are not samples: classes.txt, "
                     f"labels.txt (text whose first word is not a number: labels or class "
                     f"names)"]


def test_calibration_folder_read_twice_warns_once(model, tmp_path):
    """Without --eval the calibration folder is also the evaluation folder: one warning."""
    proto, weights, calib = model
    (calib / "notes.md").write_text("calibration photos of the lab, 2024")
    proc = run(["-p", proto, "-m", weights, "-i", calib, "-o", "q"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("notes.md") == 1, proc.stderr


def test_bad_eval_folder_fails_before_writing(model, tmp_path):
    proto, weights, calib = model
    (tmp_path / "empty").mkdir()
    for folder, needle in ((tmp_path / "missing", "no such folder"),
                           (tmp_path / "empty", "no sample files")):
        proc = run(["-p", proto, "-m", weights, "-i", calib, "--eval", folder, "-o", "q"],
                   tmp_path)
        assert_one_line_error(proc, str(folder), needle)
        assert not list(tmp_path.glob("q.quantized.*"))


def test_eval_problem_after_writing_is_a_warning(model, tmp_path):
    """A sample that only fails when read (a corrupt image) cannot be seen before the model is
    written: the model is kept, the summary is skipped with a warning, exit 0."""
    proto, weights, calib = model
    folder = tmp_path / "eval"
    folder.mkdir()
    np.save(folder / "a.npy", np.zeros((3, 12, 12), np.float32))
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    proc = run(["-p", proto, "-m", weights, "-i", calib, "--eval", folder, "-o", "q"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "q.quantized.tnnproto").exists() and (tmp_path / "q.quantized.tnnmodel").exists()
    warning = [line for line in proc.stderr.splitlines() if "no accuracy summary" in line]
    assert len(warning) == 1 and "b.png" in warning[0] and "cannot decode" in warning[0]
    assert warning[0].endswith("the model files are written")


def test_nonfinite_weights_are_one_warning_not_numpy_noise(model, tmp_path):
    """inf/NaN weights (a damaged export): tnnquant says which layer, numpy's floating-point
    warnings (file paths, line numbers) stay out of the user's terminal."""
    proto, weights, calib = model
    graph = load_model(proto, weights)
    res = graph.resources["conv1"]
    values = res.filter.data.copy()
    values.reshape(-1)[:3] = [np.inf, -np.inf, np.nan]
    res.filter = dataclasses.replace(res.filter, data=values)
    save_model(graph, tmp_path / "bad.tnnproto", tmp_path / "bad.tnnmodel")
    for args in ([], ["-b", "2", "-w", "1"]):
        proc = run(["-p", tmp_path / "bad.tnnproto", "-m", tmp_path / "bad.tnnmodel", "-i", calib,
                    "-o", "q", *args], tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "Warning" not in proc.stderr and ".py:" not in proc.stderr, proc.stderr
        assert proc.stderr.count("layer 'conv1' holds 3 weight value(s) that are inf or NaN") == 1
