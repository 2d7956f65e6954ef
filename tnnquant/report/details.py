"""The data behind the HTML report's plots, gathered around one comparison.

:func:`compare_with_details` runs :func:`~tnnquant.report.compare.compare` with a pair hook
that keeps, per int8 blob, the float range and the noise and signal power of every
quantization slot (channel, or the whole tensor), and a strided sample of every output; then,
for the worst int8 blobs, fills calibration's histograms (:mod:`tnnquant.report.clipping`) on
the same samples in one more float pass. Memory does not grow with the number of samples
beyond the capped output samples (and per sample: a score cosine and two classes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from ..calib.inputs import Preprocess, iter_batches
from ..calib.observers import BlobStats, RangeObserver
from ..exec.executor import int8_blobs, runs_int8
from ..ir.graph import Graph, Layer
from ..passes.fuse_activation import fuse_conv_activation
from ..passes.runtime import runtime_graph
from .clipping import Clip, blob_statistics, method_clips, shown_methods
from .compare import Progress, Report, compare, evaluation_samples
from .metrics import is_classifier_shape, sample_cosines, top_k

CLIPPED_BLOBS = 4            # worst int8 blobs whose distributions are shown
OUTPUT_POINTS = 20_000       # values kept per output for the scatter plot


@dataclass
class NetLayer:
    """A layer of the int8 model as TNN's runtime runs it (after its fusions and Reformats)."""

    name: str
    type: str                 # as in the proto: QuantizedConvolution, Pooling, Reformat...
    inputs: list[str]
    outputs: list[str]
    int8: bool                # runs an int8 kernel
    detail: str = ""          # kernel size, groups... for the tooltip
    label: str = ""           # a few characters drawn in the node (default: from the type)


@dataclass
class OutputValues:
    """A strided sample of one output's values, float and int8 side by side; for a classifier,
    every sample's score cosine and top-1 classes."""

    name: str
    float_values: np.ndarray   # float32 (n,)
    int8_values: np.ndarray    # float32 (n,), dequantized
    stride: int                # every stride-th value of the output was kept
    sample_cosine: np.ndarray | None = None   # (samples,) for classifiers
    float_top1: np.ndarray | None = None      # (samples,) class indices
    int8_top1: np.ndarray | None = None


@dataclass
class BlobClipping:
    """One worst blob: its float statistics on the samples, the int8 model's range and what the
    methods would pick; ``channel`` is the slot drawn (the one with the most noise)."""

    blob: str
    layer: str | None
    stats: BlobStats
    chosen: Clip
    picks: dict[str, Clip]
    channel: int
    channel_noise_share: float     # the drawn slot's share of the blob's noise power
    channel_sqnr_db: float


@dataclass
class Details:
    """What the plots need beyond the :class:`Report`."""

    layers: list[NetLayer]                      # execution order of the int8 run
    network_inputs: list[str]
    outputs: list[OutputValues]
    clipping: list[BlobClipping]
    sample_names: list[str] = field(default_factory=list)   # in evaluation order
    folder: str | None = None
    class_names: dict[int, str] = field(default_factory=dict)


class SlotNoise:
    """Pair hook: per int8 blob, noise and signal power per quantization slot and the float
    range (calibration's, so the worst blobs' histograms need no range pass), and strided
    output samples."""

    def __init__(self, slots: Mapping[str, int], outputs: Sequence[str],
                 output_stride: Callable[[int], int]) -> None:
        self.slots = dict(slots)
        self.ranges = {name: RangeObserver(n) for name, n in self.slots.items()}
        self.noise: dict[str, np.ndarray] = {}
        self.signal: dict[str, np.ndarray] = {}
        self.outputs = {name: ([], []) for name in outputs}
        self.scores: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        self.output_stride = output_stride
        self.strides: dict[str, int] = {}
        self.seen: dict[str, int] = {}

    def __call__(self, name: str, ref: np.ndarray, test: np.ndarray,
                 layer: Layer | None) -> None:
        if name in self.slots:
            self.ranges[name].update(ref)
            n = self.slots[name]
            x = np.asarray(ref, np.float64).reshape(len(ref), n if n > 1 else 1, -1)
            d = x - np.asarray(test, np.float64).reshape(x.shape)
            self.noise[name] = self.noise.get(name, 0) + np.einsum("ncl,ncl->c", d, d)
            self.signal[name] = self.signal.get(name, 0) + np.einsum("ncl,ncl->c", x, x)
        if name in self.outputs:
            stride = self.strides.setdefault(name, self.output_stride(ref[0].size))
            kept_float, kept_int8 = self.outputs[name]
            start = -self.seen.get(name, 0) % stride   # the stride runs on across batches
            self.seen[name] = self.seen.get(name, 0) + ref.size
            kept_float.append(np.asarray(ref, np.float32).reshape(-1)[start::stride])
            kept_int8.append(np.asarray(test, np.float32).reshape(-1)[start::stride])
            if is_classifier_shape(ref.shape):
                self.scores.setdefault(name, []).append(
                    (sample_cosines(ref, test), top_k(ref, 1)[:, 0], top_k(test, 1)[:, 0]))

    def output_values(self) -> list[OutputValues]:
        out = []
        for name, (f, q) in self.outputs.items():
            if not f:
                continue
            scores = [np.concatenate(a) for a in zip(*self.scores[name])] \
                if name in self.scores else [None] * 3
            out.append(OutputValues(name, np.concatenate(f), np.concatenate(q),
                                    self.strides[name], *scores))
        return out


def net_layers(graph: Graph) -> list[NetLayer]:
    """The layers of a (runtime) graph in execution order, for the network drawing."""
    return [NetLayer(layer.name, layer.proto_type, list(layer.inputs), list(layer.outputs),
                     runs_int8(layer), *_describe(layer)) for layer in graph.topo_order()]


def _describe(layer: Layer) -> tuple[str, str]:
    """(tooltip detail, short label) of a layer: kernel size, groups, stride."""
    p = layer.params
    kernel = (f"{p.kernel_h}x{p.kernel_w}" if hasattr(p, "kernel_h") and hasattr(p, "kernel_w")
              else "")
    group = getattr(p, "group", 1)
    stride = getattr(p, "stride_h", 1)
    detail = ", ".join(filter(None, [kernel, f"group {group}" if group > 1 else "",
                                     f"stride {stride}" if stride > 1 else ""]))
    label = ""
    if kernel and layer.type in ("Convolution", "Deconvolution"):
        label = ("dw" if group > 1 else "") + kernel.replace("x", "×")
    return detail, label


def compare_with_details(float_graph: Graph, int8_graph: Graph, folder: str | Path,
                         preprocess: Preprocess = Preprocess(),
                         labels_file: str | Path | None = None, batch_size: int = 4,
                         progress: Progress | None = None,
                         warn: Callable[[str], None] | None = None, device: str = "x86",
                         class_names: Mapping[int, str] | None = None,
                         clipped_blobs: int = CLIPPED_BLOBS,
                         output_points: int = OUTPUT_POINTS) -> tuple[Report, Details]:
    """:func:`~tnnquant.report.compare.compare_folder`, plus the data of the HTML report's
    plots: ``clipped_blobs`` worst int8 blobs get their statistics gathered on the same
    samples (one more float pass), every output keeps about ``output_points`` values."""
    samples, labels = evaluation_samples(float_graph, folder, labels_file, warn)
    total = sum(s.count for s in samples)
    runtime = runtime_graph(int8_graph)
    slots = {name: int8_graph.blob_scales[name].scale.size
             for name in int8_blobs(runtime) if name in int8_graph.blob_scales}
    hook = SlotNoise(slots, float_graph.outputs,
                     lambda size: max(1, math.ceil(size * total / output_points)))

    def batches():
        return iter_batches(samples, float_graph.inputs, preprocess, batch_size)
    report = compare(float_graph, int8_graph, batches(), labels, progress, total, device,
                     pair_hooks=[hook])
    worst = [b for b in report.worst_layers() if b.int8 and b.blob in hook.noise]
    worst = worst[:clipped_blobs]
    needs = frozenset().union(*(m.needs for m in shown_methods().values()))
    stats = blob_statistics(fuse_conv_activation(float_graph), batches,
                            {b.blob: slots[b.blob] for b in worst}, needs,
                            {b.blob: hook.ranges[b.blob].result() for b in worst})
    picks = method_clips([stats[b.blob] for b in worst])
    clipping = [_clipping(b.blob, b.layer, stats[b.blob], Clip.of(int8_graph.blob_scales[b.blob]),
                          pick, hook.noise[b.blob], hook.signal[b.blob])
                for b, pick in zip(worst, picks)]
    names = [s.name if s.count == 1 else f"{s.name}[{i}]" for s in samples
             for i in range(s.count)]
    details = Details(net_layers(runtime), [s.name for s in int8_graph.inputs],
                      hook.output_values(), clipping, names, str(folder),
                      dict(class_names or {}))
    return report, details


def _clipping(blob: str, layer: str | None, stats: BlobStats, chosen: Clip,
              picks: dict[str, Clip], noise: np.ndarray, signal: np.ndarray) -> BlobClipping:
    channel = int(np.argmax(noise))
    share = float(noise[channel] / noise.sum()) if noise.sum() else 0.0
    with np.errstate(divide="ignore"):
        sqnr = float(10 * np.log10(signal[channel] / noise[channel])) if noise[channel] else math.inf
    return BlobClipping(blob, layer, stats, chosen, picks, channel, share, sqnr)
