"""Output-aware choice of blob scales: per blob, the candidate scale whose quantization error,
measured at the output of the layers that read the blob, is smallest on the calibration data.

Why: TNN folds a per-channel input scale into the weights of a (non-depthwise) convolution
before quantizing them per output channel (spec int8 §8.1). Channels with a small range then
get folded weights far below the row's maximum and lose their precision, while a per-tensor
scale quantizes those same channels' activations coarsely. Which loss is smaller depends on the
data and the weights, so it is measured. Candidates for a per-channel blob with per-channel
scales ``s`` and per-tensor scale ``t`` (both from the calibration method):

* ``channel``: ``s``;  ``tensor``: ``t``;
* ``floor 1/k``: ``max(s, t/k)`` for k in ``FLOORS`` — per-channel, with small channels' scales
  raised so that their folded weights keep precision.

The error of a candidate is, summed over the blob's consumers, the relative squared error
``Σ(y_q - y)² / Σ y²`` of each quantized Convolution / InnerProduct output (input fake-quantized
with the candidate, weights folded with it and quantized with the recipe's weight method,
fused activation applied), or of the blob itself for any other consumer.

Blobs whose scale is tied to others stay as calibrated: every blob of an Add (TNN takes the
per-channel decision from input 0, spec int8 §12.5), of a Concat (per-channel Concat is a raw
byte copy, §12.6), of a merging ReLU / max pool (§9) and of an InnerProduct (per-tensor, §4).
"""
from __future__ import annotations

import numpy as np

from ..calib.collect import BlobPlan
from ..calib.methods import ACT_METHODS
from ..calib.observers import BlobStats, merged_stats
from ..exec.executor import Executor
from ..ir.graph import BlobScale, Graph, Layer
from ..layers.add import Add
from ..layers.concat import Concat
from ..layers.convolution import Convolution
from ..layers.inner_product import InnerProduct
from .context import PassContext
from .fake_quant import fake_quantize, float_resource
from .merge_scales import _merges
from .quantize_layers import _quantize_weights

# floors t/k: powers of 4 between per-tensor (k = 1) and per-channel (k = ∞), a coarse
# geometric grid (the error is smooth in log k); 3 extra candidates bound the search time
FLOORS = (4, 16, 64)
WEIGHTED = (Convolution, InnerProduct)


def per_tensor_candidates(plans: dict[str, BlobPlan], stats: dict[str, BlobStats]
                          ) -> dict[str, dict[str, BlobScale]]:
    """blob -> {"tensor": per-tensor scale by the blob's method} for the per-channel blobs
    among ``stats`` (computed from their merged statistics)."""
    out = {}
    for name, s in stats.items():
        plan = plans[name]
        if plan.per_tensor or plan.slots == 1:
            continue
        method = ACT_METHODS.get(plan.method)
        merged = merged_stats(s)
        if not all(merged.has(k) for k in method.needs):
            continue
        scale, zero_point = method(merged)
        if scale[0] > 0:
            out[name] = {"tensor": BlobScale(scale, zero_point)}
    return out


def tied_blobs(graph: Graph) -> set[str]:
    """Blobs whose scale is tied to other blobs' or must be per-tensor (module docstring)."""
    tied: set[str] = set()
    for layer in graph.layers:
        if layer.kind in (Add, Concat, InnerProduct) or _merges(layer):
            tied.update(layer.inputs)
            tied.update(layer.outputs)
    return tied


def candidates_for(graph: Graph, ctx: PassContext) -> dict[str, dict[str, BlobScale]]:
    """blob -> label -> candidate scale, for the blobs whose scale is searched."""
    tied = tied_blobs(graph)
    out = {}
    for name, extra in ctx.candidates.items():
        own = graph.blob_scales.get(name)
        if name in tied or own is None or not own.per_channel or "tensor" not in extra:
            continue
        t = extra["tensor"].scale[0]
        options = {"channel": own}
        for k in FLOORS:
            options[f"floor 1/{k}"] = BlobScale(np.maximum(own.scale, np.float32(t / k)))
        options["tensor"] = extra["tensor"]
        out[name] = options
    return out


class _Errors:
    """Per blob and candidate: accumulated squared error and reference power per consumer."""

    def __init__(self, graph: Graph, options: dict[str, dict[str, BlobScale]],
                 ctx: PassContext) -> None:
        self.graph = graph
        self.options = options
        self.ctx = ctx
        consumers = graph.consumers()
        self.readers = {b: [c for c in consumers.get(b, [])] for b in options}
        self.weights: dict[tuple[str, str], object] = {}    # (layer, label) -> float resource
        self.err = {b: np.zeros((len(self.readers[b]) + 1, len(o))) for b, o in options.items()}
        self.power = {b: np.zeros(len(self.readers[b]) + 1) for b in options}

    def _resource(self, layer: Layer, label: str, blob_scale: BlobScale):
        key = (layer.name, label)
        if key not in self.weights:
            trial = self.graph.copy()
            trial.blob_scales[layer.inputs[0]] = blob_scale
            qres = _quantize_weights(trial, layer, self.ctx.weight_options)
            self.weights[key] = float_resource(layer, qres, blob_scale.scale)
        return self.weights[key]

    def hook(self, name: str, x: np.ndarray, layer: Layer | None) -> None:
        options = self.options.get(name)
        if options is None:
            return
        fq = {label: fake_quantize(x, s) for label, s in options.items()}
        own = False
        for i, reader in enumerate(self.readers[name]):
            if reader.quantized and reader.kind in WEIGHTED and reader.inputs[0] == name \
                    and len(reader.inputs) == 1:
                res = self.graph.resources[reader.name]
                y = np.asarray(reader.kind.forward(reader.params, res, x), np.float64)
                self.power[name][i] += np.square(y).sum()
                for k, (label, s) in enumerate(options.items()):
                    y_q = reader.kind.forward(reader.params, self._resource(reader, label, s),
                                              fq[label])
                    self.err[name][i, k] += np.square(y_q - y).sum()
            else:
                own = True
        if own or not self.readers[name]:
            self.power[name][-1] += np.square(x.astype(np.float64)).sum()
            for k, label in enumerate(options):
                self.err[name][-1, k] += np.square(fq[label] - x).sum()

    def best(self) -> dict[str, str]:
        out = {}
        for name, options in self.options.items():
            power = np.maximum(self.power[name], np.finfo(np.float64).tiny)[:, None]
            total = (self.err[name] / power).sum(0)
            out[name] = list(options)[int(np.argmin(total))]
        return out


def search_blob_scales(graph: Graph, ctx: PassContext) -> Graph:
    """Return a copy whose searchable blobs hold their best candidate scale (module
    docstring); needs the flagged float graph (weights not yet quantized)."""
    options = candidates_for(graph, ctx)
    if not options:
        return graph
    errors = _Errors(graph, options, ctx)
    executor = Executor(graph, fp32=ctx.config.fp32)
    done = 0
    for batch in ctx.batches():
        executor.run(batch, hooks=[errors.hook])
        done += len(next(iter(batch.values())))
        ctx.tick("scale search", done)
    graph = graph.copy()
    chosen = errors.best()
    for name, label in chosen.items():
        graph.blob_scales[name] = options[name][label]
    counts: dict[str, int] = {}
    for label in chosen.values():
        counts[label] = counts.get(label, 0) + 1
    ctx.notes.append("scale search: " + ", ".join(f"{n} {label}" for label, n in
                                                  sorted(counts.items(), key=lambda i: -i[1])))
    return graph
