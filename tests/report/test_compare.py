"""The accuracy report on a small in-memory model quantized by tnnquant and run by the int8
simulator: blob matching, the worst layers (a deliberately broken blob scale is named), labels,
JSON, the CLI's one-line errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tnnquant
from tnnquant import save_model
from tnnquant.calib.inputs import Sample
from tnnquant.errors import ConfigError, InputError
from tnnquant.ir.graph import BlobScale
from tnnquant.quantize import quantize
from tnnquant.report import (Report, compare, compare_folder, match_labels, read_labels, render,
                             summarize)
from tnnquant.report.metrics import top_k
from tnnquant.testing import GraphBuilder

REPO = Path(__file__).resolve().parents[2]
CLASSES = 10


def float_model():
    """conv-relu, conv-relu, 1x1 conv + skip add (fused into the conv by TNN's runtime),
    conv-relu, global average pool, fully connected classifier."""
    b = GraphBuilder(seed=3)
    x = b.input("data", (1, 3, 16, 16))
    r1 = b.layer("ReLU", b.conv(x, 8, 3, pad=1, name="c1"), name="r1")
    r2 = b.layer("ReLU", b.conv(r1, 8, 3, pad=1, name="c2"), name="r2")
    s = b.layer("Add", [b.conv(r2, 8, 1, name="c3"), r2], "-1", name="add")
    r4 = b.layer("ReLU", b.conv(s, 16, 3, pad=1, stride=2, name="c4"), name="r4")
    p = b.layer("Pooling", r4, "1 0 0 1 1 0 0 -1 -1 -1 0", name="gap")
    return b.build(b.inner_product(p, CLASSES, 16, name="fc"))


def batches(n_batches=3, size=4, seed=10):
    r = np.random.default_rng(seed)
    return [{"data": r.standard_normal((size, 3, 16, 16)).astype(np.float32)}
            for _ in range(n_batches)]


@pytest.fixture(scope="module")
def models():
    graph = float_model()
    calib = [b["data"] for b in batches(seed=1)]
    return graph, quantize(graph, calib).graph


@pytest.fixture(scope="module")
def report(models):
    return compare(*models, batches())


def broken(qgraph, blob, factor=100.0):
    q = qgraph.copy()
    s = q.blob_scales[blob]
    q.blob_scales[blob] = BlobScale(s.scale * factor, s.zero_point)
    return q


def test_blobs_are_matched_by_name_after_fusion(report):
    by_blob = {b.blob: b for b in report.blobs}
    # conv+ReLU are fused in both graphs: the conv outputs are the ReLU blobs
    assert {"r1", "r2", "add", "r4", "gap", "fc"} <= set(by_blob)
    assert by_blob["r1"].layer == "c1" and by_blob["r1"].layer_type == "QuantizedConvolution"
    # TNN's runtime fuses the 1x1 conv with the Add: its own output exists in the float run only
    assert "c3" in report.float_only_blobs
    assert by_blob["add"].layer == "c3"
    assert by_blob["r1"].int8 and by_blob["r1"].saturated is not None
    assert not by_blob["gap"].int8 and by_blob["gap"].saturated is None   # float pooling
    assert by_blob["r4"].shape == [16, 8, 8]
    assert report.samples == 12
    for b in report.blobs:
        assert 0.9 < b.cosine <= 1.0 + 1e-9, b
        assert b.sqnr_db > 5, b


def test_output_and_classifier_metrics(report, models):
    (out,) = report.outputs
    assert out.name == "fc"
    fc = next(b for b in report.blobs if b.blob == "fc")
    assert (out.cosine, out.sqnr_db, out.max_abs_error) == (fc.cosine, fc.sqnr_db,
                                                            fc.max_abs_error)
    c = out.classifier
    assert c.samples == 12 and 0 <= c.top1_agreement <= c.top5_agreement <= 1
    assert 0.9 < c.mean_cosine <= 1
    assert c.float_top1 is None and not report.labelled


def test_worst_layers_ranked_by_added_noise(report):
    worst = report.worst_layers()
    assert len(worst) == len({b.layer for b in worst}) >= 4
    added = [b.added_noise for b in worst]
    assert added == sorted(added, reverse=True)
    for b in worst:   # the noise added is the output's minus the worst input's, capped at 1
        r_out = min(10 ** (-b.sqnr_db / 10), 1)
        r_in = 0.0 if b.input_sqnr_db is None else min(10 ** (-b.input_sqnr_db / 10), 1)
        assert b.added_noise == pytest.approx(r_out - r_in, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("blob, layer", [("r2", "c2"), ("r4", "c4")])
def test_broken_blob_scale_names_its_layer_first(models, blob, layer):
    graph, qgraph = models
    report = compare(graph, broken(qgraph, blob), batches())
    assert report.worst_layers()[0].layer == layer
    assert layer in summarize(report)


def test_labels_give_accuracy(models):
    graph, qgraph = models
    data = batches()
    reference = np.concatenate([tnnquant.api.run(graph, b["data"])["fc"] for b in data])
    labels = top_k(reference, 1)[:, 0]
    labels[:3] = (labels[:3] + 1) % CLASSES      # three wrong labels for the float model
    report = compare(graph, qgraph, data, labels)
    c = report.outputs[0].classifier
    assert report.labelled
    assert c.float_top1 == pytest.approx(9 / 12)
    assert c.float_top5 >= c.float_top1 and c.int8_top5 >= c.int8_top1
    assert c.int8_top1 is not None
    assert "float top-1" in render(report) and "75.0%" in render(report)


def test_label_errors(models):
    graph, qgraph = models
    with pytest.raises(InputError, match="11 labels for at least 12 samples"):
        compare(graph, qgraph, batches(), np.zeros(11, int))
    with pytest.raises(InputError, match="13 labels for 12 samples"):
        compare(graph, qgraph, batches(), np.zeros(13, int))
    with pytest.raises(InputError, match="label 10 is outside the 10 classes"):
        compare(graph, qgraph, batches(), np.full(12, 10))
    with pytest.raises(InputError, match="negative"):
        compare(graph, qgraph, batches(), np.full(12, -1))


def test_model_mismatches_are_config_errors(models):
    graph, qgraph = models
    with pytest.raises(ConfigError, match="float model is a quantized model"):
        compare(qgraph, qgraph, batches())
    with pytest.raises(ConfigError, match="no quantized layer"):
        compare(graph, graph, batches())


def test_json_round_trip(models, report, tmp_path):
    text = report.to_json()
    # strict JSON: no Infinity/NaN literals (exact blobs have an infinite SQNR)
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON literal {c}"))
    assert Report.from_json(text) == report
    graph, qgraph = models
    exact = compare(graph, qgraph, batches(1, 1))
    exact.blobs[0].sqnr_db = float("inf")
    exact.blobs[0].blob = "inf"   # a name is never read back as a number
    assert '"sqnr_db": "inf"' in exact.to_json()
    assert Report.from_json(exact.to_json()) == exact
    labelled = compare(graph, qgraph, batches(1, 3), labels=[1, 2, 1])
    assert labelled.outputs[0].classifier.per_class[0].samples == 2
    assert Report.from_json(labelled.to_json()) == labelled


def test_render_and_summary(report):
    text = render(report)
    lines = text.splitlines()
    assert lines[0].startswith("int8 vs float on 12 samples")
    assert any(line.startswith("fc ") for line in lines)
    assert "worst layers" in text and report.worst_layers()[0].layer in text
    summary = summarize(report)
    assert summary.splitlines()[0] == "int8 vs float on 12 samples"
    assert "top-1 agreement" in summary and len(summary.splitlines()) == 3


def test_progress_reports_samples(models):
    seen = []
    compare(*models, batches(), progress=lambda done, total: seen.append((done, total)),
            total=12)
    assert seen == [(4, 12), (8, 12), (12, 12)]


def test_memory_does_not_grow_with_the_number_of_batches(models):
    def peak(n_batches: int) -> int:
        def generated():   # batches made on the fly, so only the evaluation is measured
            for i in range(n_batches):
                yield batches(1, 4, seed=i)[0]
        tracemalloc.start()
        compare(*models, generated(), labels=np.zeros(4 * n_batches, int))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    few, many = peak(2), peak(20)
    assert many < few * 1.2 + 64_000, (few, many)


# --- labels files and evaluation folders -------------------------------------------------------

def write_labels(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_read_labels(tmp_path):
    path = write_labels(tmp_path / "l.txt", "a.png 3\n\nsub/b c.jpg  12\n")
    assert read_labels(path) == {"a.png": 3, "b c.jpg": 12}
    for text, message in [("a.png three\n", ":1: expected 'FILENAME CLASS_INDEX'"),
                          ("a.png 1\nb.png\n", ":2: expected"),
                          ("a.png -1\n", ":1: expected"),
                          ("a.png 1\na.png 2\n", ":2: 'a.png' is labelled twice"),
                          ("\n", "holds no label")]:
        with pytest.raises(InputError, match=message):
            read_labels(write_labels(tmp_path / "bad.txt", text))
    with pytest.raises(InputError, match="cannot read"):
        read_labels(tmp_path / "missing.txt")


def test_match_labels_by_file_name(tmp_path):
    def sample(name, *files, count=1):
        return Sample(name, {f"in{i}": tmp_path / f for i, f in enumerate(files)}, count)

    samples = [sample("a.png", "a.png"), sample("b", "img/b.png", "mask/b.npy")]
    kept, labels = match_labels(samples, {"a.png": 1, "b.png": 2})
    assert [s.name for s in kept] == ["a.png", "b"] and labels == [1, 2]
    for name in ("c.png", "t.txt"):   # a .txt tensor is a sample like any other: it needs one
        with pytest.raises(InputError, match=f"no label for sample '{name}'"):
            match_labels([sample(name, name)], {"a.png": 1})
    with pytest.raises(InputError, match="holds 4 tensors"):
        match_labels([sample("a.npy", "a.npy", count=4)], {"a.npy": 1})


@pytest.fixture(scope="module")
def eval_folder(tmp_path_factory, models):
    """Eight 16x16 PNG images, their labels, the float and int8 models on disk."""
    root = tmp_path_factory.mktemp("eval")
    folder = root / "images"
    folder.mkdir()
    r = np.random.default_rng(5)
    for i in range(8):
        Image.fromarray(r.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
            folder / f"img{i}.png")
    write_labels(folder / "labels.txt", "".join(f"img{i}.png {i}\n" for i in range(8)))
    graph, qgraph = models
    save_model(graph, root / "f.tnnproto", root / "f.tnnmodel")
    save_model(qgraph, root / "q.tnnproto", root / "q.tnnmodel")
    return root


def test_compare_folder_with_labels(eval_folder):
    root = eval_folder
    graph = tnnquant.load_model(root / "f.tnnproto", root / "f.tnnmodel")
    qgraph = tnnquant.load_model(root / "q.tnnproto", root / "q.tnnmodel")
    warnings = []
    report = compare_folder(graph, qgraph, root / "images", labels_file=root / "images/labels.txt",
                            batch_size=3, warn=warnings.append)
    assert report.samples == 8 and report.labelled
    assert warnings == [f"{root / 'images'}: skipped 1 entry that is not a sample: labels.txt "
                        f"(text whose first word is not a number: labels or class names)"]
    assert report.float_model == str(root / "f.tnnproto")


def run_cli(*args: object) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "tnnquant", "compare", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


def model_args(root: Path) -> list[object]:
    return ["-p", root / "f.tnnproto", "-m", root / "f.tnnmodel",
            "--int8-proto", root / "q.tnnproto", "--int8-model", root / "q.tnnmodel"]


def test_cli_table_and_json(eval_folder, tmp_path):
    root = eval_folder
    out = tmp_path / "report.json"
    result = run_cli(*model_args(root), "-i", root / "images", "--labels",
                     root / "images/labels.txt", "--json", out, "--batch", "5")
    assert result.returncode == 0, result.stderr
    # stderr is not a TTY here: no progress bar, only the folder warning
    assert result.stderr == (f"warning: {root / 'images'}: skipped 1 entry that is not a "
                             f"sample: labels.txt (text whose first word is not a number: "
                             f"labels or class names)\n")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("int8 vs float on 8 samples: q.tnnproto vs f.tnnproto")
    assert lines[-1] == f"wrote {out}"
    report = Report.from_json(out.read_text())
    assert report.samples == 8 and report.outputs[0].classifier.int8_top1 is not None
    assert render(report) in result.stdout


def assert_one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 1 and one error line, last (after the folder's warning, if any)."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith("error: "), result.stderr
    assert all(line.startswith("warning: ") for line in lines[:-1]), result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]


def test_cli_errors_are_one_line(eval_folder, tmp_path):
    root = eval_folder
    args = model_args(root)
    images = root / "images"
    bad = write_labels(tmp_path / "bad.txt", "img0.png 0\nimg1.png one\n")
    assert_one_error_line(run_cli(*args, "-i", images, "--labels", bad),
                          f"{bad}:2: expected 'FILENAME CLASS_INDEX'")
    partial = write_labels(tmp_path / "partial.txt", "img0.png 0\n")
    assert_one_error_line(run_cli(*args, "-i", images, "--labels", partial),
                          "no label for sample 'img1.png'")
    assert_one_error_line(run_cli(*args, "-i", tmp_path / "nowhere"), "no such folder")
    assert_one_error_line(run_cli(*args, "-i", images, "--labels", tmp_path / "none.txt"),
                          "cannot read the labels file")
    labels = ["--labels", images / "labels.txt"]
    assert_one_error_line(run_cli(*args, "-i", images, *labels, "--batch", "0"), "batch size")
    assert_one_error_line(run_cli(*args, "-i", images, *labels, "--json",
                                  tmp_path / "no" / "r.json"), "no such folder")
    # without --labels, the labels file is still no sample (calib.inputs.not_a_sample)
    unlabelled = run_cli(*args, "-i", images)
    assert unlabelled.returncode == 0 and "labels.txt" in unlabelled.stderr, unlabelled.stderr
    assert_one_error_line(run_cli("-p", root / "f.tnnproto", "-m", root / "f.tnnmodel",
                                  "-i", images), "--int8-proto")
