"""The HTML report's content: its sections, numbers equal to the Report (and so the JSON), a
self-contained page, the plotted data against direct computations (the histograms and the
registered methods' thresholds, per-channel noise, output samples, per-class counts), and the
command lines (--html on compare and quantize, one-line errors, no matplotlib)."""
from __future__ import annotations

import math
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import tnnquant
from tnnquant import cli
from tnnquant.calib.inputs import Preprocess, iter_batches, list_samples
from tnnquant.calib.methods import ACT_METHODS
from tnnquant.calib.methods.base import ActMethod, finish, threshold_scale
from tnnquant.calib.observers import BlobStats, HistogramObserver, RangeObserver
from tnnquant.exec.executor import Executor
from tnnquant.passes.fuse_activation import fuse_conv_activation
from tnnquant.report import Report, compare_with_details, render_html
from tnnquant.report.compare import int8_executor
from tnnquant.report.metrics import as_logits, top_k
from tnnquant.report.render import _added, _num, _pct

from html_case import html_case, html_report  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[2]


class Tables(HTMLParser):
    """Every table of a page as {class: [[cell text, ...], ...]} (header row first)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.current: list[list[str]] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.current = self.tables.setdefault(dict(attrs).get("class", ""), [])
        elif tag == "tr" and self.current is not None:
            self.current.append([])
        elif tag in ("td", "th") and self.current is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.current[-1].append("".join(self.cell).strip())
            self.cell = None
        elif tag == "table":
            self.current = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def tables(html: str) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(html)
    return parser.tables


def load(root: Path):
    return (tnnquant.load_model(root / "f.tnnproto", root / "f.tnnmodel"),
            tnnquant.load_model(root / "q.tnnproto", root / "q.tnnmodel"))


def eval_batches(root: Path, graph):
    samples = [s for s in list_samples(root / "eval", graph.inputs, lambda m: None)
               if s.name != "labels.txt"]
    return list(iter_batches(samples, graph.inputs, Preprocess(), 3))


# --- the page ----------------------------------------------------------------------------------

def test_sections_in_order(html_report):
    _, _, html = html_report
    ids = re.findall(r'<section id="([a-z]+)">', html)
    assert ids == ["summary", "worst", "layers", "network", "clipping", "outputs", "classes",
                   "notes"]
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")


def test_page_is_self_contained(html_report):
    _, _, html = html_report
    assert not re.search(r"https?:", html, re.I)   # not even an XML namespace URL
    assert not re.search(r"<(link|iframe|object|embed)\b", html, re.I)
    assert not re.search(r"<script[^>]*\bsrc=", html, re.I)
    assert not re.search(r"@import|url\((?!#)", html)   # CSS: only in-page references
    refs = re.findall(r'(?:href|src)="([^"]*)"', html)
    assert refs and all(r.startswith(("#", "data:image/png;base64,")) for r in refs), \
        {r[:40] for r in refs}
    # matplotlib's per-figure ids are made unique on the page
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))


def test_numbers_are_the_reports(html_report):
    report, _, html = html_report
    report = Report.from_json(report.to_json())   # the JSON holds the same numbers
    t = tables(html)
    header, *rows = t["outputs"]
    assert len(rows) == len(report.outputs)
    o, c = report.outputs[0], report.outputs[0].classifier
    cells = dict(zip(header, rows[0]))
    assert cells["output"] == o.name
    assert cells["cosine"] == _num(o.cosine, ".4f")
    assert cells["SQNR (dB)"] == _num(o.sqnr_db, ".2f")
    assert cells["max abs error"] == _num(o.max_abs_error, ".4g")
    assert cells["top-1 agreement"] == _pct(c.top1_agreement)
    assert cells["mean sample cosine"] == _num(c.mean_cosine, ".4f")
    assert cells["float top-1"] == _pct(c.float_top1) and cells["int8 top-5"] == _pct(c.int8_top5)

    header, *rows = t["worst"]
    assert [r[1] for r in rows] == [b.layer for b in report.worst_layers()]
    for row, b in zip(rows, report.worst_layers()):
        cells = dict(zip(header, row))
        assert cells["noise added"] == _added(b.added_noise)
        assert cells["SQNR out (dB)"] == _num(b.sqnr_db, ".2f")
        assert cells["saturated"] == _pct(b.saturated, 2)


def test_per_class_counts(html_report, html_case):
    """Per-class top-1 counts against a direct count from both models' scores."""
    report, details, html = html_report
    graph, qgraph = load(html_case)
    batches = eval_batches(html_case, graph)
    ref = np.concatenate([as_logits(Executor(graph).run(b)["fc"]) for b in batches])
    test = np.concatenate([as_logits(int8_executor(qgraph).run(b)["fc"]) for b in batches])
    labels = np.array([i % 4 for i in range(10)])
    f1, q1 = top_k(ref, 1)[:, 0], top_k(test, 1)[:, 0]
    per_class = report.outputs[0].classifier.per_class
    assert [a.label for a in per_class] == [0, 1, 2, 3]
    for a in per_class:
        mine = labels == a.label
        assert (a.samples, a.float_top1, a.int8_top1, a.agreement) == (
            mine.sum(), (f1[mine] == a.label).sum(), (q1[mine] == a.label).sum(),
            (f1[mine] == q1[mine]).sum())
    header, *rows = tables(html)["classes"]
    assert sorted(int(r[0]) for r in rows) == [0, 1, 2, 3]
    assert {r[1] for r in rows} == {f"class <{k}> & co" for k in range(4)}   # escaped, read back
    by_label = {int(r[0]): r for r in rows}
    for a in per_class:
        assert by_label[a.label][2:] == [str(a.samples), f"{a.float_top1}/{a.samples}",
                                         f"{a.int8_top1}/{a.samples}", f"{a.agreement}/{a.samples}"]
    # per-sample results agree with the direct computation too
    out = details.outputs[0]
    assert np.array_equal(out.float_top1, f1) and np.array_equal(out.int8_top1, q1)


def test_network_graph_marks_float_layers_and_ranks(html_report):
    report, details, html = html_report
    svg = html[html.index('<svg class="netgraph"'):]
    svg = svg[:svg.index("</svg>")]
    nodes = re.findall(r'<g class="node( float)?( reformat)?" data-name="([^"]*)">', svg)
    names = [n for _, _, n in nodes]
    assert names == details.network_inputs + [layer.name for layer in details.layers]
    assert {n for f, _, n in nodes if f} == {layer.name for layer in details.layers
                                             if not layer.int8} >= {"c2"}
    badges = re.findall(r'<text class="badge"[^>]*>(\d+)</text>', svg)
    assert sorted(map(int, badges)) == list(range(1, len(report.worst) + 1))
    assert svg.count("<title>") >= len(nodes)


def test_layer_chart_has_a_tooltip_per_blob(html_report):
    report, _, html = html_report
    titles = re.findall(r'<g id="layers-hover([tb])(\d+)" class="hover"><title>([^<]*)',
                        html)
    assert len(titles) == 2 * len(report.blobs)
    for panel, i, text in titles:
        b = report.blobs[int(i)]
        assert f"blob {b.blob}" in text and _added(b.added_noise) in text


# --- the data behind the plots ------------------------------------------------------------------

def float_blob(root: Path, blob: str) -> np.ndarray:
    graph, _ = load(root)
    executor = Executor(fuse_conv_activation(graph))
    return np.concatenate([executor.run(b, keep=[blob])[blob]
                           for b in eval_batches(root, graph)])


def test_histogram_and_thresholds_against_direct_computation(html_report, html_case):
    """The histogram, the chosen range and every method's pick against observers fed the
    whole blob at once and the registered methods called directly."""
    _, details, html = html_report
    _, qgraph = load(html_case)
    assert len(details.clipping) >= 2
    for view in details.clipping:
        x = float_blob(html_case, view.blob)
        slots = view.stats.range.min.size
        assert slots == qgraph.blob_scales[view.blob].scale.size
        observer = RangeObserver(slots)
        observer.update(x)
        ranges = observer.result()
        hist = HistogramObserver(ranges)
        hist.update(x)
        stats = BlobStats(ranges, hist.result())
        assert np.array_equal(view.stats.histogram.counts, stats.histogram.counts)
        per_slot = np.abs(x).max(axis=(0, 2, 3)) if slots > 1 else np.abs(x).max(keepdims=True)
        assert np.allclose(view.stats.range.absmax, per_slot)
        assert set(view.picks) == {"minmax", "kl"} | {n for n, m in ACT_METHODS.items()
                                                      if "histogram" in m.needs}
        for name, clip in view.picks.items():
            scale, zero_point = ACT_METHODS.get(name)(stats)
            assert np.array_equal(clip.scale, scale) and np.array_equal(clip.zero_point,
                                                                        zero_point)
            assert np.all(clip.top <= per_slot * (1 + 1e-6))   # nobody clips above the max
        # MinMax maps the max to 2047.5/2048 of the range, independently of the code under test
        assert np.allclose(view.picks["minmax"].top, per_slot * 2047.5 / 2048, rtol=1e-6)
        assert np.allclose(view.chosen.top, 127 * qgraph.blob_scales[view.blob].scale)
        c = view.channel
        assert f"kl would pick: {view.picks['kl'].top[c]:.4g}" in html
        assert f"int8 model (step {view.chosen.top[c] / 127:.3g}): {view.chosen.top[c]:.4g}" in html


def test_noisiest_channel_against_direct_computation(html_report, html_case):
    _, details, _ = html_report
    graph, qgraph = load(html_case)
    executor = int8_executor(qgraph)
    for view in details.clipping:
        slots = view.stats.range.min.size
        float_x = float_blob(html_case, view.blob).astype(np.float64)
        int8_x = np.concatenate([executor.run(b, keep=[view.blob])[view.blob]   # dequantized
                                 for b in eval_batches(html_case, graph)])
        d = (float_x - int8_x).reshape(len(float_x), slots, -1)
        noise = (d ** 2).sum(axis=(0, 2))
        assert view.channel == int(np.argmax(noise))
        assert math.isclose(view.channel_noise_share, noise.max() / noise.sum(), rel_tol=1e-9)


def test_output_samples_are_strided_values(html_case):
    pytest.importorskip("matplotlib")
    graph, qgraph = load(html_case)
    _, details = compare_with_details(graph, qgraph, html_case / "eval",
                                      labels_file=html_case / "eval/labels.txt", batch_size=4,
                                      warn=lambda m: None, output_points=25)
    out = details.outputs[0]
    ref = np.concatenate([Executor(graph).run(b)["fc"] for b in eval_batches(html_case, graph)])
    stride = math.ceil(ref.size / 25)
    assert out.stride == stride
    assert np.allclose(out.float_values, ref.reshape(-1)[::stride], rtol=1e-5, atol=1e-5)
    assert out.int8_values.shape == out.float_values.shape


def test_a_newly_registered_method_appears_without_code_changes(html_case, monkeypatch):
    pytest.importorskip("matplotlib")

    def half_range(stats: BlobStats):   # a stand-in clipping search: half of the histogram
        h = stats.histogram
        return finish(threshold_scale(1023, h.interval), 0, h.valid)
    monkeypatch.setitem(ACT_METHODS._items, "half_range",
                        ActMethod("half_range", 99, frozenset({"range", "histogram"}),
                                  half_range))
    graph, qgraph = load(html_case)
    report, details = compare_with_details(graph, qgraph, html_case / "eval",
                                           labels_file=html_case / "eval/labels.txt",
                                           batch_size=5, warn=lambda m: None, clipped_blobs=1)
    view = details.clipping[0]
    # every registered histogram method shows up (mse, percentile too)
    assert set(view.picks) == {"minmax", "kl", "mse", "percentile", "half_range"}
    assert np.allclose(view.picks["half_range"].top, view.picks["minmax"].top * 1023.5 / 2047.5)
    assert "half_range would pick" in render_html(report, details)


# --- command lines -------------------------------------------------------------------------------

def model_args(root: Path) -> list[str]:
    return ["-p", str(root / "f.tnnproto"), "-m", str(root / "f.tnnmodel"),
            "--int8-proto", str(root / "q.tnnproto"), "--int8-model", str(root / "q.tnnmodel")]


def test_compare_html_and_json(html_case, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    page, data = tmp_path / "r.html", tmp_path / "r.json"
    code = cli.main(["compare", *model_args(html_case), "-i", str(html_case / "eval"),
                     "--labels", str(html_case / "eval/labels.txt"), "--class-names",
                     str(html_case / "classes.txt"), "--json", str(data), "--html", str(page)])
    out = capsys.readouterr().out
    assert code == 0 and out.endswith(f"wrote {data}\nwrote {page}\n")
    report = Report.from_json(data.read_text())
    html = page.read_text()
    assert tables(html)["outputs"][1][1] == _num(report.outputs[0].cosine, ".4f")
    assert "class &lt;0&gt; &amp; co" in html
    assert set(tmp_path.iterdir()) == {page, data}   # no temporary file left behind


def test_quantize_html_with_labels(html_case, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    page = tmp_path / "q.html"
    code = cli.main(["quantize", "-p", str(html_case / "f.tnnproto"), "-m",
                     str(html_case / "f.tnnmodel"), "-i", str(html_case / "calib"), "-b", "2",
                     "--exclude", "c2", "--eval", str(html_case / "eval"), "--labels",
                     str(html_case / "eval/labels.txt"), "-o", str(tmp_path / "m"),
                     "--html", str(page)])
    out = capsys.readouterr().out
    assert code == 0 and "top-1 float" in out and out.endswith(f"wrote {page}\n")
    html = page.read_text()
    assert '<section id="classes">' in html and "blob scales by kl" in html


def test_quantize_html_on_the_example_model(tmp_path):
    """The README's --html command, from a fresh process."""
    pytest.importorskip("matplotlib")
    tiny = REPO / "examples" / "tiny"
    result = subprocess.run(
        [sys.executable, "-m", "tnnquant", "quantize", "-p", str(tiny / "tiny.tnnproto"),
         "-m", str(tiny / "tiny.tnnmodel"), "-i", str(tiny / "calib"), "-b", "kl",
         "-n", "127.5,127.5,127.5", "-s", "0.0078431,0.0078431,0.0078431", "-o", "tiny",
         "--html", "tiny.html"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "wrote tiny.html"
    html = (tmp_path / "tiny.html").read_text()
    assert "Calibrated on 10 samples" in html and "blob scales by kl" in html
    assert "<title>int8 vs float: tiny.quantized.tnnproto vs tiny.tnnproto</title>" in html


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0]


def test_without_matplotlib_html_fails_first_and_the_rest_works(html_case, tmp_path, capsys,
                                                               monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib -> ImportError
    page = tmp_path / "r.html"
    # before anything else: the models named here do not even exist
    code = cli.main(["compare", "-p", "none.tnnproto", "-m", "none.tnnmodel", "--int8-proto",
                     "q", "--int8-model", "q", "-i", "nowhere", "--html", str(page)])
    assert_one_line_error(code, capsys.readouterr().err, "--html needs matplotlib",
                          "pip install 'tnnquant[report]'")
    code = cli.main(["quantize", "-p", "none.tnnproto", "-m", "none.tnnmodel", "-i", "nowhere",
                     "--html", str(page)])
    assert_one_line_error(code, capsys.readouterr().err, "--html needs matplotlib")
    assert not page.exists()
    # the text report and the JSON need no matplotlib
    data = tmp_path / "r.json"
    code = cli.main(["compare", *model_args(html_case), "-i", str(html_case / "eval"),
                     "--labels", str(html_case / "eval/labels.txt"), "--json", str(data)])
    assert code == 0 and "worst layers" in capsys.readouterr().out
    assert Report.from_json(data.read_text()).samples == 10


def test_report_module_imports_without_matplotlib():
    code = ("import sys; sys.modules['matplotlib'] = None; import tnnquant.report, "
            "tnnquant.report.html, tnnquant.cli; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.stdout == "ok\n", result.stderr


def test_html_option_errors(html_case, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    args = [*model_args(html_case), "-i", str(html_case / "eval")]
    code = cli.main(["compare", *args, "--html", str(tmp_path / "no" / "r.html")])
    assert_one_line_error(code, capsys.readouterr().err, "--html", "no such folder")
    code = cli.main(["compare", *args, "--class-names", str(html_case / "classes.txt")])
    assert_one_line_error(code, capsys.readouterr().err, "--class-names", "--html")
    code = cli.main(["compare", *args, "--html", str(tmp_path / "r.html"), "--class-names",
                     str(tmp_path / "missing.txt")])
    assert_one_line_error(code, capsys.readouterr().err, "missing.txt",
                          "cannot read the class names file")
    code = cli.main(["quantize", "-p", "f", "-m", "f", "-i", "x", "--no-report", "--html",
                     str(tmp_path / "r.html")])
    assert_one_line_error(code, capsys.readouterr().err, "--html needs the accuracy report")
    assert list(tmp_path.iterdir()) == []


def test_hostile_names_are_escaped_and_plotted(tmp_path):
    """Layer, blob and file names with markup and matplotlib's mathtext '$' signs."""
    pytest.importorskip("matplotlib")
    from PIL import Image

    from tnnquant.quantize import quantize
    from tnnquant.testing import GraphBuilder
    b = GraphBuilder(seed=2)
    x = b.input("data", (1, 3, 12, 12))
    r = b.layer("ReLU", b.conv(x, 4, 3, pad=1, name='c$\\frac{<1>}$ & "q"'), name="r$1")
    p = b.layer("Pooling", r, "1 0 0 1 1 0 0 -1 -1 -1 0", name="</script>")
    graph = b.build(b.inner_product(p, 3, 4, name="fc$"))
    folder = tmp_path / "eval"
    folder.mkdir()
    pixels = np.random.default_rng(1).integers(0, 256, (4, 12, 12, 3), dtype=np.uint8)
    for i, name in enumerate(["a$b$.png", "<i>.png", "c&d.png", "e.png"]):
        Image.fromarray(pixels[i]).save(folder / name)
    qgraph = quantize(graph, str(folder)).graph
    report, details = compare_with_details(graph, qgraph, folder, warn=lambda m: None)
    html = render_html(report, details)
    assert html.count("</script>") == 1   # the page's own script only
    assert "&lt;/script&gt;" in html and 'c$\\frac{&lt;1&gt;}$ &amp; &quot;q&quot;' in html
    assert "a$b$.png" in html and "&lt;i&gt;.png" in html
