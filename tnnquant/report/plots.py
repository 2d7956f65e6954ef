"""The HTML report's charts, drawn with matplotlib (the optional ``report`` extra) and embedded
as inline SVG: crisp at any zoom, text selectable, a tooltip (``<title>``) on every layer.

Only :func:`require_matplotlib` may be called without matplotlib installed.
"""
from __future__ import annotations

import io
import math
import re
from html import escape
from typing import Mapping, Sequence

import numpy as np

from ..calib.observers import HIST_BINS
from ..errors import ConfigError
from ..calib.methods.base import QMAX
from .clipping import REFERENCE_METHOD, Clip
from .compare import BlobReport, OutputReport
from .details import BlobClipping, OutputValues
from .netgraph import NoiseScale

INSTALL_HINT = "pip install 'tnnquant[report]'"
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold",
         "axes.titlelocation": "left", "axes.spines.top": False, "axes.spines.right": False,
         "legend.fontsize": 8, "legend.frameon": False, "svg.fonttype": "none",
         "svg.hashsalt": "tnnquant", "font.family": "sans-serif",
         "text.parse_math": False}   # names from model files may hold '$': no mathtext
CHOSEN_COLOR = "#111111"
METHOD_COLORS = ("#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")
INT8_COLOR, FLOAT_COLOR = "#1f5fa8", "#999999"
RATIO_CAP = 2.0   # per-channel threshold / max |v| is drawn up to this
NEGATIVE_SHARE = 0.25   # negative added noise is drawn down to this share of the largest
DISPLAY_BINS = 128      # the 2048 calibration bins summed in groups for the eye
LOG_SPAN = 20           # bar heights spanning more than this ratio get a log axis


def require_matplotlib() -> None:
    """Raise a one-line ConfigError when matplotlib is missing (call before long work)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError(f"--html needs matplotlib, which is not installed: "
                          f"{INSTALL_HINT}") from None


def _figure(width: float, height: float, **subplots):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(**subplots)


def to_svg(fig, prefix: str, tooltips: Mapping[str, str] | None = None) -> str:
    """``fig`` as an inline ``<svg>`` element: no XML prolog, DOCTYPE or namespace URLs (the
    page is parsed as HTML), ids prefixed with ``prefix`` so that several charts can share a
    page, a ``<title>`` in each group whose gid ``tooltips`` names."""
    import matplotlib
    buf = io.StringIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buf, format="svg", dpi=120,
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg, count=2)
    svg = re.sub(r'(<metadata>.*?</metadata>)', "", svg, flags=re.S)
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{prefix}-{m.group(1)})", svg)
    svg = re.sub(r'xlink:href="#([^"]+)"', lambda m: f'xlink:href="#{prefix}-{m.group(1)}"', svg)
    for gid, text in (tooltips or {}).items():
        svg = svg.replace(f'<g id="{prefix}-{gid}">',
                          f'<g id="{prefix}-{gid}" class="hover"><title>{escape(text)}</title>', 1)
    return svg.replace("<svg ", '<svg class="chart" ', 1)


def _finite(values: Sequence[float | None]) -> np.ndarray:
    return np.array([v if v is not None and math.isfinite(v) else np.nan for v in values])


def layer_chart(blobs: Sequence[BlobReport], worst: Sequence[str], scale: NoiseScale,
                tooltips: Sequence[str]) -> str:
    """SQNR of every blob along the execution order (top) and the noise each layer adds
    (bottom, bars coloured like the network graph), the worst layers numbered."""
    import matplotlib
    with matplotlib.rc_context(STYLE):
        fig, (top, bottom) = _figure(11, 5.4, nrows=2, sharex=True,
                                     gridspec_kw={"height_ratios": [1, 1]})
        x = np.arange(len(blobs))
        sqnr = _finite([b.sqnr_db for b in blobs])
        int8 = np.array([b.int8 for b in blobs])
        top.plot(x, sqnr, color="#bbbbbb", lw=1, zorder=1)
        top.scatter(x[int8], sqnr[int8], s=16, color=INT8_COLOR, zorder=3,
                    label="int8 blob (quantized by the model)")
        top.scatter(x[~int8], sqnr[~int8], s=16, facecolor="white", edgecolor=INT8_COLOR,
                    zorder=3, label="float blob (a float layer's output)")
        top.set_ylabel("SQNR (dB)\nhigher is better")
        top.set_title("Signal-to-quantization-noise ratio of every blob, int8 run vs float run")
        top.grid(axis="y", alpha=0.3)
        top.legend(loc="upper right", ncols=2)
        added = np.array([100 * b.added_noise for b in blobs])
        peak = max(added.max(initial=0), 0.1)
        floor = -NEGATIVE_SHARE * peak   # a layer that lowers the relative noise (an average,
        #                                  a clipping ReLU) only needs to show that it does
        bottom.bar(x, np.maximum(added, floor), width=0.8,
                   color=[scale.color(b.added_noise) if b.added_noise > 0 else "#d9d9d9"
                          for b in blobs], edgecolor="#555555", linewidth=0.4)
        bottom.axhline(0, color="#555555", lw=0.6)
        for rank, name in enumerate(worst, 1):
            i = next(k for k, b in enumerate(blobs) if b.blob == name)
            bottom.annotate(str(rank), (i, max(added[i], 0)), xytext=(0, 2),
                            textcoords="offset points", ha="center", va="bottom",
                            fontsize=8, fontweight="bold", color="#800026")
        bottom.set_ylabel("added noise\n(% of signal power)")
        bottom.set_title("Noise each layer adds: its output's noise minus its worst input's "
                         "(numbers: the worst layers)")
        bottom.set_xlabel("blob, in execution order (hover for the layer)")
        bottom.grid(axis="y", alpha=0.3)
        bottom.set_xlim(-0.7, len(blobs) - 0.3)
        bottom.set_ylim(floor * 1.05, peak * 1.15)
        gids = {}
        for i, text in enumerate(tooltips):
            for name, ax in (("t", top), ("b", bottom)):
                span = ax.axvspan(i - 0.5, i + 0.5, alpha=0, zorder=0)
                span.set_gid(f"hover{name}{i}")
                gids[f"hover{name}{i}"] = text
        return to_svg(fig, "layers", gids)


def _clip_lines(ax, clip: Clip, channel: int, label: str, color: str, style: str,
                width: float) -> float:
    k = min(channel, clip.top.size - 1)
    top = float(clip.top[k])
    ax.axvline(top, color=color, ls=style, lw=width, label=f"{label}: {top:.4g}")
    if not clip.symmetric:
        bottom = -float(clip.bottom[k])
        ax.axvline(bottom, color=color, ls=":", lw=width,
                   label=f"{label}, negative end: -{bottom:.4g}")
        top = max(top, bottom)
    return top


def _log_counts(ax) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _display_histogram(counts: np.ndarray, interval: float, right: float
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The 2048 bins up to ``right`` summed into about DISPLAY_BINS bars (counts, edges)."""
    used = min(HIST_BINS, max(1, int(np.ceil(right * interval))))
    group = max(1, -(-used // DISPLAY_BINS))
    n = -(-used // group) * group
    padded = np.zeros(max(n, HIST_BINS), counts.dtype)
    padded[:HIST_BINS] = counts
    return padded[:n].reshape(-1, group).sum(axis=1), np.arange(0, n + 1, group) / interval


def clipping_chart(view: BlobClipping, blob: BlobReport, rank: int, prefix: str) -> str:
    """The worst blob's |value| histogram on the evaluation samples for its noisiest channel,
    with the int8 model's range and each method's pick; beside it, every channel's threshold
    relative to that channel's max |value|."""
    import matplotlib
    stats, c = view.stats, view.channel
    slots = stats.range.min.size
    with matplotlib.rc_context(STYLE):
        if slots > 1:
            fig, (hist_ax, ratio_ax) = _figure(11, 3.6, ncols=2,
                                               gridspec_kw={"width_ratios": [1.9, 1]})
        else:
            fig, hist_ax = _figure(11, 3.6)
        counts = stats.histogram.counts[c]
        interval = float(stats.histogram.interval[c])
        absmax = float(stats.range.absmax[c])
        chosen = view.chosen.top[min(c, view.chosen.top.size - 1)]
        chosen_top = _clip_lines(hist_ax, view.chosen, c,
                                 f"int8 model (step {chosen / QMAX:.3g})", CHOSEN_COLOR, "-", 2)
        right = max(absmax, chosen_top)
        for (name, clip), color in zip(view.picks.items(), METHOD_COLORS):
            right = max(right, _clip_lines(hist_ax, clip, c, f"{name} would pick", color,
                                           "--", 1.4))
        if interval > 0:
            heights, edges = _display_histogram(counts, interval, absmax)
            hist_ax.stairs(heights, edges, fill=True, color="#9ecae1", edgecolor="#4a90c4",
                           lw=0.6, label="|value| on the samples")
            if heights.max(initial=0) > LOG_SPAN * max(heights[heights > 0].min(initial=1), 1):
                _log_counts(hist_ax)   # a tail of a few values sets the range: show it
        if absmax > chosen_top:
            hist_ax.axvspan(chosen_top, absmax, color="#e31a1c", alpha=0.08,
                            label="clipped by the int8 model")
        hist_ax.set_xlim(0, right * 1.03 or 1)
        hist_ax.set_ylabel("values per bar" + (" (log scale)"
                                               if hist_ax.get_yscale() == "log" else ""))
        hist_ax.set_xlabel("|value| of the float blob")
        where = (f"channel {c} of {slots}, the noisiest ({100 * view.channel_noise_share:.1f}% "
                 f"of the blob's noise; its SQNR {view.channel_sqnr_db:.1f} dB)"
                 if slots > 1 else "whole tensor (one scale)")
        hist_ax.set_title(f"#{rank} {blob.layer}\n{where}", fontsize=9)
        hist_ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        if slots > 1:
            _ratio_panel(ratio_ax, view, c)
        return to_svg(fig, prefix)


def _ratio_panel(ax, view: BlobClipping, channel: int) -> None:
    absmax = view.stats.range.absmax.astype(np.float64)
    x = np.arange(absmax.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        def ratio(clip: Clip) -> np.ndarray:
            return np.clip(clip.top / absmax, 0, RATIO_CAP)
        for (name, clip), color in zip(view.picks.items(), METHOD_COLORS):
            if name != REFERENCE_METHOD:   # MinMax is the line at 1
                ax.scatter(x, ratio(clip), s=5, color=color, alpha=0.7, lw=0, label=name)
        ax.scatter(x, ratio(view.chosen), s=6, color=CHOSEN_COLOR, lw=0, label="int8 model")
    ax.axhline(1, color="#1f77b4", lw=1, ls="--", label="max |value| (MinMax)")
    ax.axvline(channel, color="#e31a1c", lw=0.8, alpha=0.6)
    ax.set_ylim(0, RATIO_CAP * 1.02)
    ax.set_xlabel(f"channel (red line: channel {channel}, drawn left)")
    ax.set_ylabel("threshold ÷ channel's max |value|")
    ax.set_title("All channels: threshold ÷ max |value|\n(below 1 clips; above 1 is unused)",
                 fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), markerscale=2.5, ncols=3,
              fontsize=7)


def sample_chart(values: OutputValues, names: Sequence[str], class_names: Mapping[int, str],
                 prefix: str, most: int = 30) -> str:
    """Per-sample score cosine of a classifier output, lowest first; red where the int8
    model's top-1 class differs from the float model's."""
    import matplotlib
    order = np.argsort(values.sample_cosine, kind="stable")[:most]
    with matplotlib.rc_context(STYLE):
        fig, ax = _figure(5.4, max(2.2, 0.6 + 0.17 * len(order)))
        cos = values.sample_cosine[order]
        agree = values.float_top1[order] == values.int8_top1[order]
        y = np.arange(len(order))[::-1]
        ax.barh(y, cos, color=np.where(agree, "#9ecae1", "#e31a1c"), height=0.75)

        def label(i: int) -> str:
            f, q = int(values.float_top1[i]), int(values.int8_top1[i])
            text = names[i] if i < len(names) else f"sample {i}"
            if f != q:
                text += f"  ({class_names.get(f, f)} → {class_names.get(q, q)})"
            return text
        ax.set_yticks(y, [label(i) for i in order], fontsize=7)
        lo = float(cos.min(initial=1))
        ax.set_xlim(max(0.0, lo - 0.05), 1.0)
        ax.set_xlabel("cosine of the int8 and float scores (1 = identical)")
        shown = "" if len(order) == len(values.sample_cosine) else \
            f", the {len(order)} lowest of {len(values.sample_cosine)}"
        ax.set_title(f"{values.name}: every sample{shown}\nred: top-1 differs "
                     f"(float → int8 class)", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        return to_svg(fig, prefix)


def scatter_chart(values: OutputValues, output: OutputReport, samples: int, prefix: str) -> str:
    """int8 against float values of one output, with the y = x line."""
    import matplotlib
    with matplotlib.rc_context(STYLE):
        fig, ax = _figure(5.4, 4.4)
        f, q = values.float_values, values.int8_values
        ax.scatter(f, q, s=3, alpha=0.35, color=INT8_COLOR, lw=0, rasterized=True)
        lo = float(min(f.min(initial=0), q.min(initial=0)))
        hi = float(max(f.max(initial=0), q.max(initial=0)))
        pad = 0.03 * (hi - lo or 1)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#e31a1c", lw=1,
                label="int8 = float")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_aspect("equal")
        ax.set_xlabel("float model output value")
        ax.set_ylabel("int8 model output value (dequantized)")
        every = "every value" if values.stride == 1 else f"every {values.stride}th value"
        ax.set_title(f"{output.name}\ncosine {output.cosine:.4f}, SQNR {output.sqnr_db:.2f} dB "
                     f"({every}, {samples} samples)", fontsize=9)
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)
        return to_svg(fig, prefix)
