"""Text renderings of a :class:`~tnnquant.report.compare.Report`: a compact table for
``tnnquant compare`` and a short summary for the end of ``quantize``."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from .compare import OutputReport, Report

SUMMARY_WORST = 3


def _num(value: float | None, fmt: str) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return format(value, fmt)


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def _added(value: float) -> str:
    return f"{100 * value:+.2f}%"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Columns padded to their widest cell; the first ``left`` columns left-aligned, the others
    (numbers) right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    lines = []
    for row in [headers, *rows]:
        cells = [str(c).ljust(w) if i < left else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return lines


def _output_rows(outputs: Sequence[OutputReport], labelled: bool) -> tuple[list[str], list]:
    headers = ["output", "cosine", "SQNR dB", "max abs err"]
    classifiers = any(o.classifier for o in outputs)
    if classifiers:
        headers += ["top-1 agree", "top-5 agree", "sample cos"]
    if labelled:
        headers += ["float top-1", "int8 top-1", "float top-5", "int8 top-5"]
    rows = []
    for o in outputs:
        row = [o.name, _num(o.cosine, ".4f"), _num(o.sqnr_db, ".2f"),
               _num(o.max_abs_error, ".4g")]
        c = o.classifier
        if classifiers:
            row += ([_pct(c.top1_agreement), _pct(c.top5_agreement), _num(c.mean_cosine, ".4f")]
                    if c else ["-"] * 3)
        if labelled:
            row += ([_pct(c.float_top1), _pct(c.int8_top1), _pct(c.float_top5),
                     _pct(c.int8_top5)] if c else ["-"] * 4)
        rows.append(row)
    return headers, rows


def render(report: Report) -> str:
    """The report as a few compact tables: outputs, then the worst layers."""
    names = ""
    if report.int8_model and report.float_model:
        names = f": {Path(report.int8_model).name} vs {Path(report.float_model).name}"
    lines = [f"int8 vs float on {report.samples} sample{'s' * (report.samples != 1)}{names}", ""]
    lines += _table(*_output_rows(report.outputs, report.labelled))
    n_int8 = sum(b.int8 for b in report.blobs)
    lowest = min(report.blobs, key=lambda b: b.cosine)
    lines += ["", f"blobs compared: {len(report.blobs)} ({n_int8} int8; skipped "
                  f"{len(report.float_only_blobs)} only in the float run, "
                  f"{len(report.int8_only_blobs)} only in the int8 run)",
              f"lowest cosine: {lowest.cosine:.4f} ({lowest.blob})"]
    worst = report.worst_layers()
    if worst:
        lines += ["", f"{len(worst)} worst layers, by the noise they add (% of the signal "
                      f"power: output noise minus worst input noise)"]
        rows = [[str(i), b.layer, b.layer_type, _added(b.added_noise),
                 _num(b.input_sqnr_db, ".2f"), _num(b.sqnr_db, ".2f"), _num(b.cosine, ".4f"),
                 _num(b.max_abs_error, ".4g"), _pct(b.saturated, 2)]
                for i, b in enumerate(worst, 1)]
        lines += _table(["#", "layer", "type", "noise +", "SQNR in", "SQNR dB", "cosine",
                         "max abs err", "saturated"], rows, left=3)
    return "\n".join(lines)


def summarize(report: Report) -> str:
    """A short summary (a line per output, one for the worst layers), for the end of
    ``quantize``."""
    lines = []
    for o in report.outputs:
        text = f"{o.name}: cosine {o.cosine:.4f}, SQNR {_num(o.sqnr_db, '.2f')} dB"
        c = o.classifier
        if c:
            text += (f", top-1 agreement {_pct(c.top1_agreement)}, "
                     f"sample cosine {c.mean_cosine:.4f}")
            if c.float_top1 is not None:
                text += f", top-1 float {_pct(c.float_top1)} / int8 {_pct(c.int8_top1)}"
        lines.append(text)
    worst = report.worst_layers()[:SUMMARY_WORST]
    if worst:
        lines.append("worst layers: " + ", ".join(
            f"{b.layer} ({_added(b.added_noise)} noise)" for b in worst))
    head = f"int8 vs float on {report.samples} sample{'s' * (report.samples != 1)}"
    return "\n".join([head] + ["  " + line for line in lines])
