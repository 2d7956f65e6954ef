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
  raised so that their folded weights keep precision;
* ``... xm``: the per-channel part multiplied by a margin m in ``MARGINS`` (``max(m·s, t/k)``),
  room for channel values the calibration samples did not reach.

The error of a candidate is, summed over the blob's consumers, the relative squared error
``Σ(y_q - y)² / Σ y²`` of each quantized Convolution / InnerProduct output (input fake-quantized
with the candidate, weights folded with it and quantized with the recipe's weight method,
fused activation applied), of any other one-input consumer's float output (HardSwish,
Sigmoid, pooling: the blob's errors weighed as that layer weighs them), or of the blob itself
for a consumer with several inputs (Add, Concat, Mul).

The error is cross-validated: scales fitted on a few calibration samples generalize badly per
channel (on MobileNetV2's 7x7 maps, a channel's maximum over 20 new photos exceeds its maximum
over the 14 calibration samples 2x for 10% of the channels, and channels silent on all 14 get
scale 0; per-channel scales then win on the calibration data, 35 dB against 24 dB per-tensor at
the next layer's output, and lose on new photos, 12.5 dB against 24 dB). So the samples are
split in ``FOLDS`` folds; each fold is scored with candidates built (by min-max, per the
candidate's rule) from the other folds' ranges only, and the rule with the smallest total
held-out error is then applied to the scales calibrated on all samples.

Blobs whose scales are tied are decided together, one rule for the group, the errors of its
members summed: the inputs and output of an Add (TNN takes the per-channel decision from input
0 and applies it to all, spec int8 §12.5) and of a ReLU / max pool whose scales will be merged
(§9). A group holding a Concat blob (a per-channel Concat is a raw byte copy, §12.6) or a
per-tensor-only blob (InnerProduct's, §4) can only be per-tensor.
"""
from __future__ import annotations

import numpy as np

from ..calib.collect import BlobPlan
from ..calib.methods import ACT_METHODS
from ..calib.observers import BlobStats, merged_stats, sample_folds
from ..exec.executor import Executor
from ..ir.graph import BlobScale, Graph, Layer
from ..layers.add import Add
from ..layers.concat import Concat
from ..layers.convolution import Convolution
from ..layers.inner_product import InnerProduct
from ..parallel import PARALLEL_MIN_ELEMS, PARALLEL_MIN_LAYER_INPUT, map_blocks
from .context import PassContext
from .fake_quant import fake_quantize, float_resource
from .merge_scales import merged_layers
from .quantize_layers import layer_weights
from .zero_points import shifted, sites

QMAX = 127   # a blob's min-max scale maps its max |x| to code 127 (spec int8 §6.1)

# floors t/k: powers of 4 between per-tensor (k = 1) and per-channel (k = ∞), a coarse
# geometric grid (the error is smooth in log k); 3 extra candidates bound the search time
FLOORS = (4, 16, 64)
# per-channel maxima of a few samples underestimate those of new data (extreme values grow
# with the sample count); a margin of 2 doubles the headroom at the cost of one bit of the
# channel's resolution, and the held-out error decides whether that pays
MARGINS = (1, 2)
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


def blob_groups(graph: Graph) -> tuple[list[set[str]], set[str]]:
    """(groups of blobs sharing one rule, blobs that can only be per-tensor) (module
    docstring). Every blob with a scale is in exactly one group."""
    parent = {b: b for b in graph.blob_scales}

    def root(b: str) -> str:
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        return b

    def join(blobs: list[str]) -> None:
        blobs = [b for b in blobs if b in parent]
        for other in blobs[1:]:
            parent[root(other)] = root(blobs[0])

    merged = merged_layers(graph)
    tensor_only: set[str] = set()
    for layer in graph.layers:
        if layer.kind is Add:
            join(layer.inputs + layer.outputs)
        elif layer.kind in (Concat, InnerProduct):
            tensor_only.update(layer.inputs + layer.outputs)
        elif layer.name in merged:
            join(layer.inputs[:1] + layer.outputs[:1])
    groups: dict[str, set[str]] = {}
    for b in parent:
        groups.setdefault(root(b), set()).add(b)
    return list(groups.values()), tensor_only


def candidates_for(graph: Graph, ctx: PassContext, shift: "_Shift"
                   ) -> tuple[dict[str, dict[str, BlobScale]], list[list[str]]]:
    """(blob -> label -> candidate scale, groups of searched blobs sharing one label)."""
    groups, tensor_only = blob_groups(graph)
    out: dict[str, dict[str, BlobScale]] = {}
    searched: list[list[str]] = []
    for group in groups:
        members = sorted(b for b in group if b in ctx.candidates
                         and graph.blob_scales[b].per_channel)
        if not members:
            continue
        only_tensor = bool(group & tensor_only) or len(members) < len(
            [b for b in group if graph.blob_scales[b].per_channel or b in tensor_only])
        labels = ["tensor"] if only_tensor else RULES
        for name in members:
            t = float(ctx.candidates[name]["tensor"].scale[0])
            out[name] = {label: shift(name, _rule(label, graph.blob_scales[name].scale, t))
                         for label in labels}
        searched.append(members)
    return out, searched


class _Shift:
    """The blobs whose zero point the recipe will fold into biases (passes/zero_points.py):
    their candidates are scored as the blob will hold them, shifted."""

    def __init__(self, graph: Graph, ctx: PassContext) -> None:
        self.producers = sites(graph, ctx)

    def __call__(self, name: str, blob_scale: BlobScale) -> BlobScale:
        site = self.producers.get(name)
        return blob_scale if site is None else shifted(blob_scale, site)


FOLDS = 2   # held-out folds (samples alternate); 2 keeps half the data for fitting


def _label(floor: int | None, margin: int) -> str:
    base = "channel" if floor is None else f"floor 1/{floor}"
    return base if margin == 1 else f"{base} x{margin}"


RULES = ["tensor"] + [_label(k, m) for m in MARGINS for k in (None,) + FLOORS]


def _rule(label: str, per_channel: np.ndarray, per_tensor: float) -> BlobScale:
    """A candidate rule (``tensor``, ``channel``, ``floor 1/k``, each per-channel one with an
    optional `` xm`` margin) applied to per-channel scales and a per-tensor scale."""
    if label == "tensor":
        return BlobScale(np.array([per_tensor], np.float32))
    base, _, margin = label.partition(" x")
    scaled = (per_channel * np.float32(margin or 1)).astype(np.float32)
    if base == "channel":
        return BlobScale(scaled)
    k = int(base.split("/")[1])
    return BlobScale(np.maximum(scaled, np.float32(per_tensor / k)))


def _weights_key(layer: Layer, fold: int, label: str, shifted: bool) -> tuple:
    """Candidates whose quantized weights act identically share them: a margin scales the
    folded weights and their scale alike (the codes do not change, spec int8 §8.1) unless the
    blob is ``shifted`` (its ReLU6 cap then scales some channels less); folding a per-tensor
    scale or a depthwise input scale changes no code at all."""
    if label == "tensor" or (layer.kind is Convolution and layer.params.group > 1
                             and layer.params.group == layer.params.output_channel):
        return layer.name, "plain"
    return layer.name, fold, label if shifted else label.partition(" x")[0]


def _first_equal(options: dict[str, BlobScale]) -> dict[str, str]:
    """Each candidate's label -> the first label whose scales are the same (itself if
    none): equal scales fake-quantize the blob and fold the weights identically."""
    first: dict[str, str] = {}
    for label, scale in options.items():
        first[label] = next((other for other in first if first[other] == other
                             and np.array_equal(options[other].scale, scale.scale)), label)
    return first


def _squared_error(a: np.ndarray, b: np.ndarray) -> np.floating:
    """``Σ (a - b)²`` in the difference's dtype, squared in place: one temporary, not two
    (candidates run side by side, on outputs of up to ~100 MB)."""
    d = a - b
    return np.square(d, out=d).sum()


class _Ranges:
    """Per sample, per channel max |x| of the searched blobs."""

    def __init__(self, names: set[str], shift: _Shift) -> None:
        self.names = names
        self.shift = shift
        self.absmax: dict[str, list[np.ndarray]] = {n: [] for n in names}

    def hook(self, name: str, x: np.ndarray, layer: Layer | None) -> None:
        if name in self.names:
            self.absmax[name].append(np.abs(x.reshape(x.shape[0], x.shape[1], -1)).max(2))

    def held_out_scales(self, name: str, labels: list[str]) -> list[dict[str, BlobScale]]:
        """Per fold, the candidates fitted (min-max) on the other folds' samples."""
        m = np.concatenate(self.absmax[name])
        fold = sample_folds(0, len(m), FOLDS)
        out = []
        for f in range(FOLDS):
            other = m[fold != f] if (fold != f).any() else m
            per_channel = (other.max(0) / QMAX).astype(np.float32)
            out.append({label: self.shift(name, _rule(label, per_channel,
                                                       float(per_channel.max())))
                        for label in labels})
        return out


class _Errors:
    """Per blob, consumer and candidate: held-out squared error and reference power."""

    def __init__(self, graph: Graph, labels: dict[str, list[str]], ranges: _Ranges,
                 ctx: PassContext) -> None:
        self.graph = graph
        self.labels = labels
        self.ctx = ctx
        consumers = graph.consumers()
        self.readers = {b: list(consumers.get(b, [])) for b in labels}
        self.shifted = set(ranges.shift.producers)
        self.folds = {b: ranges.held_out_scales(b, labels[b]) for b in labels}
        # a fold's candidates often coincide (a floor no channel falls below: 28-39% of them
        # on PP-LCNet and MobileNetV2); each distinct one is scored once, its errors shared
        self.first = {b: [_first_equal(options) for options in self.folds[b]] for b in labels}
        self.weights: dict[tuple, object] = {}   # float stand-ins, shared where equal
        self.err = {b: np.zeros((len(self.readers[b]) + 1, len(o))) for b, o in labels.items()}
        self.power = {b: np.zeros(len(self.readers[b]) + 1) for b in labels}
        self.seen = 0

    def _resources(self, layer: Layer, fold: int, options: dict[str, BlobScale],
                   labels: list[str]) -> list:
        """The float stand-in of the quantized weights of each candidate in ``labels``.
        Candidates sharing a key share the one made from the first candidate of ``options``
        with that key (equal up to float rounding), whatever thread makes it and whether or
        not that first candidate is scored itself."""
        shifted = layer.inputs[0] in self.shifted
        keys = {label: _weights_key(layer, fold, label, shifted) for label in options}
        needed = {keys[label] for label in labels}
        missing: dict[tuple, BlobScale] = {}
        for label, scale in options.items():
            key = keys[label]
            if key in needed and key not in self.weights and key not in missing:
                missing[key] = scale

        res = self.graph.resources[layer.name]

        def make(blob_scale: BlobScale):
            qres = layer_weights(layer, res, blob_scale.scale, self.ctx.weight_options)
            return float_resource(layer, qres, blob_scale.scale)

        # the weight methods try many clippings per weight (-w mse: 33)
        size = res.weights.size
        self.weights.update(zip(missing, map_blocks(make, list(missing.values()),
                                                    size * 32 >= PARALLEL_MIN_ELEMS)))
        return [self.weights[keys[label]] for label in labels]

    def hook(self, name: str, x: np.ndarray, layer: Layer | None) -> None:
        if name not in self.labels:
            return
        fold_of = sample_folds(self.seen, len(x), FOLDS)
        for f in range(FOLDS):
            part = x[fold_of == f]
            if len(part):
                self._score(name, part, f)

    def _score(self, name: str, x: np.ndarray, fold: int) -> None:
        # the candidates are independent: for a large blob each one's fake-quantization, layer
        # runs and error sums go to a thread (numpy and the BLAS release the GIL), and a
        # candidate's fake-quantized blob lives only while its own errors are summed (all of
        # them at once took ~9 copies of the blob); the sums are added in candidate order
        every = self.folds[name][fold]
        first = self.first[name][fold]
        options = {label: scale for label, scale in every.items() if first[label] == label}
        labels = list(options)
        runs = []   # per scored output: (its row in err, run(layer input) -> output)
        own = False
        for i, reader in enumerate(self.readers[name]):
            if reader.quantized and reader.kind in WEIGHTED and reader.inputs[0] == name \
                    and len(reader.inputs) == 1:
                stand_ins = dict(zip(labels, self._resources(reader, fold, every, labels)))
                res = self.graph.resources[reader.name]

                def run(label: str | None, xq: np.ndarray, reader=reader, res=res,
                        stand_ins=stand_ins) -> np.ndarray:
                    return reader.kind.forward(reader.params,
                                               res if label is None else stand_ins[label], xq)
            elif reader.inputs == [name] and len(reader.outputs) == 1:
                # any other one-input layer (HardSwish, Sigmoid, pooling, ...): its float
                # output on the fake-quantized blob, which weighs the blob's errors as the
                # layer does (HardSwish all but erases the negative side, for instance)
                res = self.graph.resources.get(reader.name)

                def run(label: str | None, xq: np.ndarray, reader=reader,
                        res=res) -> np.ndarray:
                    return reader.kind.forward(reader.params, res, xq)
            else:
                own = True
                continue
            runs.append((i, run))
        references = []
        for i, run in runs:
            y = np.asarray(run(None, x), np.float64)
            self.power[name][i] += np.square(y).sum()
            references.append(y)
        if own or not self.readers[name]:   # the blob's own error
            runs.append((-1, lambda label, xq: xq))
            self.power[name][-1] += np.square(x.astype(np.float64)).sum()
            references.append(x)

        def errors_of(label: str) -> list[np.floating]:
            xq = fake_quantize(x, options[label])
            return [_squared_error(run(label, xq), y) for (_, run), y in zip(runs, references)]

        parallel = x.size >= PARALLEL_MIN_LAYER_INPUT
        scored = dict(zip(labels, map_blocks(errors_of, labels, parallel)))
        for k, label in enumerate(first):
            for (i, _), error in zip(runs, scored[first[label]]):
                self.err[name][i, k] += error

    def best(self, groups: list[list[str]]) -> dict[str, str]:
        """The label with the smallest held-out error summed over each group's members."""
        out = {}
        for group in groups:
            labels = self.labels[group[0]]
            total = np.zeros(len(labels))
            for name in group:
                power = np.maximum(self.power[name], np.finfo(np.float64).tiny)[:, None]
                total += (self.err[name] / power).sum(0)
            for name in group:
                out[name] = labels[int(np.argmin(total))]
        return out


def search_blob_scales(graph: Graph, ctx: PassContext) -> Graph:
    """Return a copy whose searchable blobs hold their best candidate scale (module
    docstring); needs the flagged float graph (weights not yet quantized)."""
    shift = _Shift(graph, ctx)
    options, groups = candidates_for(graph, ctx, shift)
    if not options:
        return graph
    executor = Executor(graph, fp32=ctx.config.fp32)
    ranges = _Ranges(set(options), shift)
    # runs of bounded memory: the candidates' errors cost a few copies of each blob (YOLOv8n,
    # a scale-search-only recipe: peak memory ~715 MB with batches of 8, ~585 MB one by one)
    for run in ctx.runs()():
        executor.run(run, hooks=[ranges.hook], observe=ranges.names)
    errors = _Errors(graph, {b: list(o) for b, o in options.items()}, ranges, ctx)
    done = 0
    for run in ctx.runs()():
        executor.run(run, hooks=[errors.hook], observe=ranges.names)
        done += len(next(iter(run.values())))
        errors.seen = done
        ctx.tick("scale search", done)
    graph = graph.copy()
    chosen = errors.best(groups)
    for name, label in chosen.items():
        graph.blob_scales[name] = options[name][label]
    counts: dict[str, int] = {}
    for label in chosen.values():
        counts[label] = counts.get(label, 0) + 1
    ctx.notes.append("scale search: " + ", ".join(f"{n} {label}" for label, n in
                                                  sorted(counts.items(), key=lambda i: -i[1])))
    return graph
