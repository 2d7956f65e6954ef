"""Fixtures of the HTML report tests (imported by test_html*.py; a conftest.py here would
shadow the tests' own): a small classifier quantized by tnnquant with KL (one layer kept in
float), an evaluation folder of labelled PNG photos, and its report. Built once per session
however many modules import them."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tnnquant import save_model
from tnnquant.config import QuantConfig
from tnnquant.quantize import quantize
from tnnquant.testing import GraphBuilder

HTML_CLASSES = 6
HTML_SIZE = 24          # H = W: 576 >= 100, so KL calibrates the 24x24 and 12x12 blobs
KEPT_FLOAT = "c2"


def html_float_model():
    """conv-relu, conv-relu (kept float), residual add, strided conv-relu, global average
    pool, fully connected classifier."""
    b = GraphBuilder(seed=11)
    x = b.input("data", (1, 3, HTML_SIZE, HTML_SIZE))
    r1 = b.layer("ReLU", b.conv(x, 8, 3, pad=1, name="c1"), name="r1")
    r2 = b.layer("ReLU", b.conv(r1, 8, 3, pad=1, name=KEPT_FLOAT), name="r2")
    s = b.layer("Add", [r2, r1], "-1", name="add")
    r3 = b.layer("ReLU", b.conv(s, 12, 3, pad=1, stride=2, name="c3"), name="r3")
    p = b.layer("Pooling", r3, "1 0 0 1 1 0 0 -1 -1 -1 0", name="gap")
    return b.build(b.inner_product(p, HTML_CLASSES, 12, name="fc"))


@pytest.fixture(scope="session")
def html_case(tmp_path_factory) -> Path:
    """A folder with f.tnnproto/.tnnmodel, q.tnnproto/.tnnmodel (KL, ``c2`` kept float),
    calib/ and eval/ photos, eval/labels.txt and classes.txt."""
    return _build_case(tmp_path_factory.getbasetemp() / "html-case")


@functools.cache
def _build_case(root: Path) -> Path:
    root.mkdir()
    r = np.random.default_rng(21)
    for folder, count in (("calib", 6), ("eval", 10)):
        (root / folder).mkdir()
        for i in range(count):
            # smooth photos: a random colour gradient plus noise
            ramp = np.linspace(0, 1, HTML_SIZE)[None, :, None] * r.uniform(0, 255, 3)
            pixels = np.clip(ramp + r.normal(60, 40, (HTML_SIZE, HTML_SIZE, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / folder / f"img{i}.png")
    (root / "eval" / "labels.txt").write_text(
        "".join(f"img{i}.png {i % 4}\n" for i in range(10)))
    (root / "classes.txt").write_text("".join(f"class <{k}> & co\n"
                                              for k in range(HTML_CLASSES)))
    graph = html_float_model()
    config = QuantConfig(blob_method="kl", exclude=(KEPT_FLOAT,))
    result = quantize(graph, str(root / "calib"), config, warn=lambda message: None)
    save_model(graph, root / "f.tnnproto", root / "f.tnnmodel")
    result.save(root / "q.tnnproto", root / "q.tnnmodel")
    return root


@pytest.fixture(scope="session")
def html_report(html_case):
    """(report, details, html) of the evaluation folder with labels and class names."""
    pytest.importorskip("matplotlib", reason="the HTML report needs matplotlib "
                                             "(pip install 'tnnquant[test]')")
    return _build_report(html_case)


@functools.cache
def _build_report(root: Path):
    import tnnquant
    from tnnquant.report import compare_with_details, read_class_names, render_html
    graph = tnnquant.load_model(root / "f.tnnproto", root / "f.tnnmodel")
    qgraph = tnnquant.load_model(root / "q.tnnproto", root / "q.tnnmodel")
    report, details = compare_with_details(
        graph, qgraph, root / "eval", labels_file=root / "eval" / "labels.txt", batch_size=3,
        warn=lambda message: None, class_names=read_class_names(root / "classes.txt"))
    return report, details, render_html(report, details)
