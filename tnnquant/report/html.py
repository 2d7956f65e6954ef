"""The accuracy report as one self-contained HTML page: summary, worst layers, SQNR and added
noise along the network, the network graph coloured by added noise, the worst blobs'
distributions against their clipping, int8-vs-float output scatter, per-class agreement.

Nothing is fetched when the page is viewed: the CSS and the few lines of script are inline,
the charts are inline SVG (:mod:`tnnquant.report.plots`, which needs matplotlib) and the
network graph is drawn here (:mod:`tnnquant.report.netgraph`).
"""
from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Sequence

from ..calib.methods import MIN_FEATURE_AREA
from .compare import RANKING, BlobReport, Report
from .details import Details
from .netgraph import NOT_COMPARED, RAMP, NoiseScale, network_svg
from .render import _added, _num, _pct

MAX_CLASS_ROWS = 40

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 color:#1d1d1f;margin:0;background:#f4f5f7}
main{max-width:1160px;margin:0 auto;padding:18px 24px 40px;background:#fff}
h1{font-size:22px;margin:4px 0 2px}h2{font-size:17px;margin:30px 0 6px;
 border-bottom:1px solid #ddd;padding-bottom:3px}
.sub{color:#555;margin:0 0 12px}.note{color:#555;font-size:13px;margin:4px 0 8px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{padding:3px 8px;border-bottom:1px solid #e4e4e4;text-align:right;white-space:nowrap}
th{background:#f0f1f3;font-weight:600;white-space:normal;vertical-align:bottom}td.l,th.l{text-align:left}
td.name{text-align:left;white-space:normal;word-break:break-all;max-width:420px}
tbody tr:hover{background:#fff6d5}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;flex:1 1 180px;min-width:0}
.card span{display:block;overflow-wrap:anywhere}
.card b{display:block;font-size:21px}.card span{color:#555;font-size:12px}
code{font-size:12px;background:#f3f3f3;padding:1px 4px;border-radius:3px}
svg.chart{width:100%;height:auto;display:block}
.hover path{pointer-events:all}.hover:hover path{fill:#888 !important;opacity:.12 !important}
.scroll{overflow-x:auto}.scatter{display:flex;flex-wrap:wrap;gap:8px}
.scatter svg.chart{width:520px}
.netgraph .edges path{fill:none;stroke:#9a9a9a;stroke-width:1.1}
.netgraph .edges path.wrap{stroke-dasharray:4 3;stroke:#c4c4c4}
.netgraph .node rect{stroke:#555;stroke-width:1}
.netgraph .node.float rect{stroke-dasharray:3 2;stroke-width:1.6;stroke:#1f5fa8}
.netgraph .node text{font-size:9px;text-anchor:middle;pointer-events:none}
.netgraph .node.reformat rect{opacity:.75}
.netgraph circle.badge{fill:#800026}.netgraph text.badge{fill:#fff;font-size:9px;
 font-weight:700;text-anchor:middle}
.netgraph .node:hover rect,.netgraph .node.hl rect{stroke:#000;stroke-width:2.5}
.legend{display:flex;flex-wrap:wrap;gap:18px;align-items:center;font-size:12px;margin:6px 0}
.ramp{display:inline-block;width:180px;height:12px;vertical-align:middle;border:1px solid #999}
.ticks{display:flex;justify-content:space-between;width:182px;font-size:11px;color:#444}
.key{display:inline-block;width:22px;height:12px;vertical-align:middle;border:1px solid #555;
 border-radius:3px;margin-right:4px}
.bar{display:inline-block;height:9px;background:#6baed6;vertical-align:middle;margin-left:6px}
.bad{color:#b00020;font-weight:600}
"""

# highlight a layer's node in the graph while the pointer is on its row of a table
SCRIPT = """
document.querySelectorAll('tr[data-layer]').forEach(function (row) {
  var name = row.getAttribute('data-layer');
  var nodes = Array.prototype.filter.call(document.querySelectorAll('.netgraph .node'),
    function (n) { return n.getAttribute('data-name') === name; });
  row.addEventListener('mouseenter', function () {
    nodes.forEach(function (n) { n.classList.add('hl'); }); });
  row.addEventListener('mouseleave', function () {
    nodes.forEach(function (n) { n.classList.remove('hl'); }); });
});
"""


def _e(value: object) -> str:
    return escape(str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1,
           row_layers: Sequence[str | None] | None = None, cls: str = "") -> str:
    """A table of already-escaped cells; the first ``left`` columns left-aligned."""
    head = "".join(f'<th class="l">{h}</th>' if i < left else f"<th>{h}</th>"
                   for i, h in enumerate(headers))
    body = []
    for k, row in enumerate(rows):
        layer = row_layers[k] if row_layers else None
        attr = f' data-layer="{_e(layer)}"' if layer else ""
        cells = "".join(f'<td class="{"name" if i < left else ""}">{c}</td>'
                        for i, c in enumerate(row))
        body.append(f"<tr{attr}>{cells}</tr>")
    return (f'<table class="{cls}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _cards(report: Report) -> str:
    cards = []
    for o in report.outputs:
        c = o.classifier
        if c:
            cards.append((_pct(c.top1_agreement), f"top-1 agreement: int8 predicts the float "
                          f"model's class ({_e(o.name)})"))
            cards.append((_num(c.mean_cosine, ".4f"), f"mean per-sample score cosine "
                          f"({_e(o.name)})"))
            if c.float_top1 is not None:
                cards.append((f"{_pct(c.float_top1)} → {_pct(c.int8_top1)}",
                              f"top-1 accuracy, float → int8 ({_e(o.name)})"))
        else:
            cards.append((_num(o.cosine, ".4f"), f"cosine, int8 vs float ({_e(o.name)})"))
    worst = report.worst_layers()
    if worst:
        cards.append((_added(worst[0].added_noise),
                      f"noise added by the worst layer, {_e(worst[0].layer)}"))
    return '<div class="cards">' + "".join(
        f"<div class=card><b>{value}</b><span>{label}</span></div>" for value, label in cards
    ) + "</div>"


def _outputs_table(report: Report) -> str:
    headers = ["output", "cosine", "SQNR (dB)", "max abs error"]
    classifiers = any(o.classifier for o in report.outputs)
    if classifiers:
        headers += ["top-1 agreement", "top-5 agreement", "mean sample cosine"]
    if report.labelled:
        headers += ["float top-1", "int8 top-1", "float top-5", "int8 top-5"]
    rows = []
    for o in report.outputs:
        row = [_e(o.name), _num(o.cosine, ".4f"), _num(o.sqnr_db, ".2f"),
               _num(o.max_abs_error, ".4g")]
        c = o.classifier
        if classifiers:
            row += ([_pct(c.top1_agreement), _pct(c.top5_agreement), _num(c.mean_cosine, ".4f")]
                    if c else ["-"] * 3)
        if report.labelled:
            row += ([_pct(c.float_top1), _pct(c.int8_top1), _pct(c.float_top5),
                     _pct(c.int8_top5)] if c else ["-"] * 4)
        rows.append(row)
    return _table(headers, rows, cls="outputs")


def _worst_table(report: Report) -> str:
    worst = report.worst_layers()
    rows = [[str(i), _e(b.layer), _e(b.layer_type), _added(b.added_noise),
             _num(b.input_sqnr_db, ".2f"), _num(b.sqnr_db, ".2f"), _num(b.cosine, ".4f"),
             _num(b.max_abs_error, ".4g"), _pct(b.saturated, 2)] for i, b in enumerate(worst, 1)]
    return _table(["#", "layer", "type", "noise added", "SQNR in (dB)", "SQNR out (dB)",
                   "cosine", "max abs error", "saturated"], rows, left=3,
                  row_layers=[b.layer for b in worst], cls="worst")


def _tooltip(b: BlobReport) -> str:
    lines = [f"{b.layer or 'network input'} ({b.layer_type or 'input'})", f"blob {b.blob}",
             f"SQNR {_num(b.sqnr_db, '.2f')} dB (worst input {_num(b.input_sqnr_db, '.2f')} dB)",
             f"noise added {_added(b.added_noise)} of the signal power",
             f"cosine {_num(b.cosine, '.4f')}, max abs error {_num(b.max_abs_error, '.4g')}"]
    if b.saturated is not None:
        lines.append(f"saturated {_pct(b.saturated, 2)} ({'int8' if b.int8 else 'float'} blob)")
    return "\n".join(lines)


def _noise_legend(scale: NoiseScale) -> str:
    ramp = ", ".join(RAMP)
    ticks = "".join(f"<span>{100 * t:g}%</span>" for t in scale.ticks())
    return (f'<div class="legend"><div>noise added (% of signal power, log scale)<br>'
            f'<span class="ramp" style="background:linear-gradient(to right,{ramp})"></span>'
            f'<div class="ticks">{ticks}</div></div>'
            f'<div><span class="key" style="background:{NOT_COMPARED}"></span>not compared '
            f'(no blob in the float run, e.g. Reformat)</div>'
            f'<div><span class="key" style="border:1.6px dashed #1f5fa8"></span>layer runs in '
            f'float</div><div><b>R</b> Reformat: TNN converts int8 ↔ float</div>'
            f'<div><span class="key" style="background:#800026;border-radius:7px;width:14px">'
            f'</span>rank among the worst layers</div><div>1×1, 3×3: convolution kernel; '
            f'dw: grouped (depthwise)</div></div>')


def _network(report: Report, details: Details, scale: NoiseScale) -> str:
    by_layer: dict[str, BlobReport] = {}
    for b in report.blobs:
        key = b.layer if b.layer is not None else b.blob
        if key not in by_layer or b.added_noise > by_layer[key].added_noise:
            by_layer[key] = b
    noise = {name: b.added_noise for name, b in by_layer.items()}
    tooltips = {}
    for layer in details.layers:
        b = by_layer.get(layer.name)
        text = [layer.detail] if layer.detail else []
        text.append("runs in int8" if layer.int8 else "runs in float")
        if b is not None:
            text.append(_tooltip(b).split("\n", 1)[1])
        tooltips[layer.name] = "\n".join(text)
    for name in details.network_inputs:
        if name in by_layer:
            tooltips[name] = _tooltip(by_layer[name]).split("\n", 1)[1]
    ranks = {b.layer: i for i, b in enumerate(report.worst_layers(), 1)}
    return network_svg(details.layers, details.network_inputs, noise, tooltips, ranks)


def _clipping_section(report: Report, details: Details) -> str:
    from .plots import clipping_chart
    by_blob = {b.blob: b for b in report.blobs}
    ranks = {name: i for i, name in enumerate(report.worst, 1)}
    if not details.clipping:
        return ('<p class="note">None of the worst layers writes an int8 blob: there is no '
                "int8 range to show.</p>")
    parts = []
    for k, view in enumerate(details.clipping):
        blob = by_blob[view.blob]
        parts.append(clipping_chart(view, blob, ranks[view.blob], f"clip{k}"))
        note = _fallback_note(blob)
        if note:
            parts.append(f'<p class="note">{note}</p>')
    return "".join(parts)


def _fallback_note(blob: BlobReport) -> str:
    dims = blob.shape
    area = (dims[1] if len(dims) > 1 else 1) * (dims[2] if len(dims) > 2 else 1)
    if area >= MIN_FEATURE_AREA:
        return ""
    return (f"Blob {_e(blob.blob)} is {'×'.join(map(str, dims))}: with H·W = {area} &lt; "
            f"{MIN_FEATURE_AREA}, TNN's calibration uses MinMax here whatever <code>-b</code> "
            f"asks; the other methods' picks show what they would do without that rule.")


def _classes_section(report: Report, details: Details) -> str:
    parts = []
    for o in report.outputs:
        c = o.classifier
        if not c or not c.per_class:
            continue
        classes = sorted(c.per_class, key=lambda a: (a.agreement / a.samples,
                                                     a.int8_top1 / a.samples, a.label))
        disagree = sum(a.samples - a.agreement for a in c.per_class)
        shown = classes[:MAX_CLASS_ROWS]

        def frac(k: int, n: int) -> str:
            cls = ' class="bad"' if k < n else ""
            return (f'<span{cls}>{k}/{n}</span><span class="bar" '
                    f'style="width:{40 * k / n:.0f}px"></span>')
        rows = [[str(a.label), _e(details.class_names.get(a.label, "")), str(a.samples),
                 frac(a.float_top1, a.samples), frac(a.int8_top1, a.samples),
                 frac(a.agreement, a.samples)] for a in shown]
        more = (f" The {len(shown)} classes with the lowest agreement of {len(classes)} are "
                f"shown." if len(classes) > len(shown) else "")
        parts.append(
            f'<p class="note">Output <b>{_e(o.name)}</b>: int8 and float predict different '
            f"classes on {disagree} of {c.samples} labelled samples, across "
            f"{sum(a.agreement < a.samples for a in c.per_class)} of {len(classes)} classes. "
            f"Per true class: how often each model is right (top-1) and how often the int8 "
            f"model predicts what the float model predicts.{more}</p>")
        parts.append(_table(["class", "name", "samples", "float top-1", "int8 top-1",
                             "int8 = float"], rows, left=2, cls="classes"))
    return "".join(parts)


def render_html(report: Report, details: Details, title: str | None = None,
                context: Sequence[str] = ()) -> str:
    """The report as a self-contained HTML page (needs matplotlib for the charts); ``context``
    lines (e.g. how the model was calibrated) go under the title."""
    from .plots import layer_chart, sample_chart, scatter_chart
    names = ""
    if report.int8_model and report.float_model:
        names = f"{Path(report.int8_model).name} vs {Path(report.float_model).name}"
    title = title or f"int8 vs float{': ' + names if names else ''}"
    scale = NoiseScale.for_values([b.added_noise for b in report.blobs])
    n_int8 = sum(b.int8 for b in report.blobs)
    n_float_layers = sum(not layer.int8 for layer in details.layers)
    sample_text = f"{report.samples} sample{'s' * (report.samples != 1)}"
    folder = f" of <code>{_e(details.folder)}</code>" if details.folder else ""
    outputs = {o.name: o for o in report.outputs}
    scatters = []
    for k, v in enumerate(details.outputs):
        if v.name in outputs:
            scatters.append(scatter_chart(v, outputs[v.name], report.samples, f"scatter{k}"))
        if v.sample_cosine is not None:
            scatters.append(sample_chart(v, details.sample_names, details.class_names,
                                         f"samples{k}"))
    sections = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">tnnquant accuracy report: the int8 model run as TNN\'s x86/ARM int8 '
        f"runtime computes (simulated bit-exactly) against the float model, on {sample_text}"
        f"{folder}.</p>",
        *(f'<p class="sub">{_e(line)}</p>' for line in context),
        _cards(report),
        '<section id="summary"><h2>Outputs</h2>', _outputs_table(report),
        f'<p class="note">{len(report.blobs)} blobs compared ({n_int8} int8); '
        f"{len(report.float_only_blobs)} exist only in the float run (fused away by TNN's "
        f"runtime), {len(report.int8_only_blobs)} only in the int8 run (Reformats). "
        f"{n_float_layers} of {len(details.layers)} layers of the int8 model run in float.</p>"
        "</section>",
        '<section id="worst"><h2>Worst layers</h2>',
        f'<p class="note">Ranked by the {_e(RANKING)}. Keeping a layer in float removes its '
        f"own quantization (<code>tnnquant quantize ... --exclude LAYER</code>); the "
        f"noise its inputs bring stays.</p>", _worst_table(report), "</section>",
        '<section id="layers"><h2>Along the network</h2>',
        layer_chart(report.blobs, report.worst, scale, [_tooltip(b) for b in report.blobs]),
        '<p class="note">Grey bars below 0: the layer\'s output carries relatively less noise '
        "than its input (an average, a clipping activation); cut at the axis.</p></section>",
        '<section id="network"><h2>The network, coloured by added noise</h2>',
        '<p class="note">Layers as TNN\'s int8 runtime runs them (after its fusions), inputs on '
        "the left; hover a layer for its name and numbers, or a row of the worst-layer table "
        "to find it.</p>",
        _noise_legend(scale), f'<div class="scroll">{_network(report, details, scale)}</div>',
        "</section>",
        '<section id="clipping"><h2>The worst blobs against their int8 range</h2>',
        f'<p class="note">Distribution of |value| of the float blob on the {sample_text}, for '
        "the channel with the most noise, against the range the int8 model gives it "
        "(<i>int8 model</i>: the value mapped to 127) and what MinMax and each registered "
        "clipping method would pick from these samples. Right of the threshold values clip; "
        "left of it, the int8 step is threshold/127.</p>",
        _clipping_section(report, details), "</section>",
        '<section id="outputs"><h2>Outputs, int8 against float</h2>',
        f'<div class="scatter">{"".join(scatters)}</div></section>',
    ]
    if report.labelled:
        sections += ['<section id="classes"><h2>Per-class agreement</h2>',
                     _classes_section(report, details), "</section>"]
    sections.append(
        '<section id="notes"><h2>How to read this</h2><p class="note">'
        "<b>SQNR</b>: 10·log10(Σ float² / Σ (float − int8)²) in dB over all samples; +6 dB "
        "halves the noise amplitude. <b>Cosine</b>: of the flattened tensors. "
        "<b>Saturated</b>: int8 values at ±127 or beyond. <b>Noise added</b>: noise power as a "
        "share of the signal power (1/SQNR) of the layer's output minus that of its worst "
        "input, so a layer is not blamed for the noise it inherits. Top-1 agreement: the int8 "
        "model's best class is the float model's.</p></section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>"
            + "\n".join(sections) + f"</main><script>{SCRIPT}</script></body></html>\n")
