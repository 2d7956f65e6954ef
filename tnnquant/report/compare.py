"""Compare an int8 model with its float model on evaluation batches: the accuracy report.

Both models run on the same batches and every blob is hooked. Blobs are matched by name: the
float graph first gets TNN's conv+activation fusion (spec int8 §2), so a fused conv's output
blob holds the post-activation data in both graphs; blobs that exist in one run only (the
pre-add conv outputs TNN's runtime fuses away, its Reformat blobs) are skipped. int8 blobs are
dequantized with the int8 graph's BlobScale before comparison.

Which layers are the worst: quantization noise powers add up along the network, so each layer
is ranked by the noise it *adds*, ``added_noise = min(r(output), 1) - min(r(input), 1)``, where
``r = Σ (float - int8)² / Σ float²`` is the relative noise power (the inverse of the SQNR,
linear) and the input is the worst of the nearest matched blobs upstream of the layer in the
int8 run. Ranking by the output SQNR or cosine alone blames every layer downstream of a badly
quantized one for its damage (on MobileNetV2 with one blob scale x100, the broken layer ranked
as low as 50th of 54 that way); the cap at 1 (the signal entirely lost) keeps layers that
amplify already-destroyed data from outranking the layer that destroyed it. A ratio (SQNR drop
in dB) localizes broken layers too, but on a healthy model it ranks first the early layers
whose nearly exact inputs lose a few harmless dB.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..calib.inputs import Preprocess, Sample, iter_batches, list_samples
from ..errors import ConfigError, InputError
from ..exec.executor import Executor
from ..ir.graph import Graph, Layer
from ..passes.fuse_activation import fuse_conv_activation
from ..passes.runtime import runtime_graph
from .metrics import (ClassAgreement, ClassifierAccumulator, ClassifierMetrics,
                      ErrorAccumulator, as_logits, is_classifier_shape, relative_noise)

WORST_LAYERS = 10
RANKING = ("noise added by the layer: relative noise power r = 1 / SQNR (linear, capped at 1) "
           "of its output minus that of its worst input")

Progress = Callable[[int, "int | None"], None]   # (samples evaluated, total samples if known)
# (blob, float values, int8 values dequantized, producer in the int8 run), per matched blob
PairHook = Callable[[str, np.ndarray, np.ndarray, "Layer | None"], None]


@dataclass
class BlobReport:
    """Float vs int8 on one blob of the int8 run."""

    blob: str
    layer: str | None          # producer in the int8 run (after TNN's runtime rewrites)
    layer_type: str | None     # None for network inputs
    int8: bool                 # stored as int8 in the int8 run
    shape: list[int]           # dims after the batch axis
    cosine: float
    sqnr_db: float
    max_abs_error: float
    saturated: float | None    # fraction of int8 values with |q| >= 127 (q >= 127 where a
    # folded zero point puts a ReLU's zeros at -128); None for float blobs
    input_sqnr_db: float | None  # worst SQNR among the layer's nearest matched inputs
    added_noise: float         # see the module docstring


@dataclass
class OutputReport:
    """Float vs int8 on one network output."""

    name: str
    cosine: float
    sqnr_db: float
    max_abs_error: float
    classifier: ClassifierMetrics | None = None


@dataclass
class Report:
    """The accuracy report of one int8 model against its float model."""

    samples: int
    outputs: list[OutputReport]
    blobs: list[BlobReport]                   # in execution order of the int8 run
    worst: list[str]                          # blob names of the worst layers, worst first
    ranking: str = RANKING
    float_only_blobs: list[str] = field(default_factory=list)
    int8_only_blobs: list[str] = field(default_factory=list)
    labelled: bool = False
    float_model: str | None = None
    int8_model: str | None = None

    def worst_layers(self) -> list[BlobReport]:
        by_name = {b.blob: b for b in self.blobs}
        return [by_name[name] for name in self.worst]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """Full detail as strict JSON; infinite SQNRs (exact blobs) are written as the strings
        ``"inf"`` / ``"-inf"``, which :meth:`from_json` reads back."""
        return json.dumps(_encode(self.to_dict()), indent=1, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Report":
        data = dict(data)
        data["outputs"] = [_decoded(OutputReport, {**o, "classifier": o["classifier"] and
                                                   _classifier(o["classifier"])})
                           for o in data["outputs"]]
        data["blobs"] = [_decoded(BlobReport, b) for b in data["blobs"]]
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "Report":
        return cls.from_dict(json.loads(text))


_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _classifier(data: Mapping[str, Any]) -> ClassifierMetrics:
    per_class = data.get("per_class")
    return _decoded(ClassifierMetrics, {**data, "per_class": per_class and [
        ClassAgreement(**c) for c in per_class]})


def _encode(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decoded(cls: type, data: Mapping[str, Any]) -> Any:
    """``cls(**data)`` with the non-finite floats of its float fields read back (only those:
    a blob may well be named "inf")."""
    floats = {f.name for f in dataclasses.fields(cls) if str(f.type).startswith("float")}
    return cls(**{k: _NON_FINITE.get(v, v) if k in floats and isinstance(v, str) else v
                  for k, v in data.items()})


# --- the int8 side -----------------------------------------------------------------------------

def int8_executor(graph: Graph, device: str = "x86") -> Executor:
    """The executor that runs a quantized graph as TNN's int8 runtime does on ``device``."""
    return Executor(runtime_graph(graph), mode="int8", device=device)


# --- comparison --------------------------------------------------------------------------------

@dataclass
class _BlobState:
    layer: Layer | None
    int8: bool
    shape: tuple[int, ...]
    errors: ErrorAccumulator = field(default_factory=ErrorAccumulator)


class _Comparison:
    """Streaming state of one comparison: per-blob and per-output accumulators."""

    def __init__(self, float_graph: Graph, int8_graph: Graph, device: str,
                 pair_hooks: Sequence[PairHook] = ()) -> None:
        self.float_graph = float_graph
        self.int8_graph = int8_graph
        self.float_exec = Executor(fuse_conv_activation(float_graph))
        self.int8_exec = int8_executor(int8_graph, device)
        self.blobs: dict[str, _BlobState] = {}         # matched, in int8 execution order
        self.producers: dict[str, Layer | None] = {}   # every blob of the int8 run
        self.float_seen: list[str] = []
        self.classifiers: dict[str, ClassifierAccumulator] = {}
        self.samples = 0
        self.reference: dict[str, np.ndarray] = {}
        self.pair_hooks = list(pair_hooks)

    def run_batch(self, feeds: Mapping[str, np.ndarray], labels: np.ndarray | None) -> None:
        # the float blobs of one batch are held until the int8 run reaches them: memory grows
        # with the batch size, never with the number of batches
        self.reference = {}
        float_out = self.float_exec.run(feeds, hooks=[self._keep_reference])
        if not self.float_seen:
            self.float_seen = list(self.reference)
        int8_out = self.int8_exec.run(feeds, hooks=[self._observe])   # outputs as float32
        self.reference = {}
        for name in self.float_graph.outputs:
            if name not in int8_out:
                continue
            ref = float_out[name]
            test = int8_out[name]
            if is_classifier_shape(ref.shape) and ref.shape == test.shape:
                if labels is not None and labels.max(initial=-1) >= as_logits(ref).shape[1]:
                    bad = int(labels.max())
                    raise InputError(f"label {bad} is outside the {as_logits(ref).shape[1]} "
                                     f"classes of output '{name}'")
                self.classifiers.setdefault(name, ClassifierAccumulator()).update(
                    ref, test, labels)
        self.samples += len(next(iter(feeds.values())))

    def _keep_reference(self, name: str, array: np.ndarray, layer: Layer | None) -> None:
        self.reference[name] = array

    def _observe(self, name: str, array: np.ndarray, layer: Layer | None) -> None:
        self.producers.setdefault(name, layer)
        ref = self.reference.pop(name, None)
        if ref is None or ref.shape != array.shape:
            return
        state = self.blobs.get(name)
        if state is None:
            state = self.blobs[name] = _BlobState(layer, array.dtype == np.int8,
                                                  tuple(array.shape[1:]))
        q = array if state.int8 else None
        test = self.int8_exec.dequantize(name, array)
        folded = state.int8 and self.int8_exec.blob_scale(name).folded_zero_point is not None
        state.errors.update(ref, test, q, bottom=not folded)
        for hook in self.pair_hooks:
            hook(name, ref, test, layer)

    def _input_sqnr(self, blob: str, sqnr: dict[str, float]) -> float | None:
        """Worst SQNR among the nearest matched blobs upstream of ``blob`` (None: none)."""
        worst: float | None = None
        stack, seen = list(self._inputs(blob)), set()
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in sqnr:
                worst = sqnr[name] if worst is None else min(worst, sqnr[name])
            else:
                stack.extend(self._inputs(name))
        return worst

    def _inputs(self, blob: str) -> list[str]:
        layer = self.producers.get(blob)
        return list(layer.inputs) if layer is not None else []

    def report(self, labelled: bool) -> Report:
        results = {name: s.errors.result() for name, s in self.blobs.items()}
        sqnr = {name: r["sqnr_db"] for name, r in results.items()}
        blobs = []
        for name, state in self.blobs.items():
            r = results[name]
            in_sqnr = self._input_sqnr(name, sqnr)
            blobs.append(BlobReport(
                blob=name, layer=state.layer and state.layer.name,
                layer_type=state.layer and state.layer.proto_type, int8=state.int8,
                shape=list(state.shape), cosine=r["cosine"], sqnr_db=r["sqnr_db"],
                max_abs_error=r["max_abs_error"], saturated=r["saturated"],
                input_sqnr_db=in_sqnr, added_noise=_capped_noise(r["sqnr_db"]) - (
                    0.0 if in_sqnr is None else _capped_noise(in_sqnr))))
        outputs = [OutputReport(name, results[name]["cosine"], results[name]["sqnr_db"],
                                results[name]["max_abs_error"],
                                self.classifiers[name].result()
                                if name in self.classifiers else None)
                   for name in self.float_graph.outputs if name in results]
        ranked = sorted((b for b in blobs if b.layer is not None), key=lambda b: -b.added_noise)
        worst, layers = [], set()
        for b in ranked:
            if b.layer not in layers:
                layers.add(b.layer)
                worst.append(b.blob)
        int8_names = set(self.producers)
        return Report(
            samples=self.samples, outputs=outputs, blobs=blobs, worst=worst[:WORST_LAYERS],
            float_only_blobs=[n for n in self.float_seen if n not in int8_names],
            int8_only_blobs=[n for n in self.producers if n not in self.blobs],
            labelled=labelled, float_model=self.float_graph.proto_path,
            int8_model=self.int8_graph.proto_path)


def _capped_noise(sqnr: float) -> float:
    return min(relative_noise(sqnr), 1.0)


def _check_models(float_graph: Graph, int8_graph: Graph) -> None:
    if float_graph.is_quantized:
        raise ConfigError("the float model is a quantized model", path=float_graph.proto_path)
    if not int8_graph.is_quantized:
        raise ConfigError("the int8 model has no quantized layer", path=int8_graph.proto_path)
    float_inputs = {s.name: tuple(s.dims[1:]) for s in float_graph.inputs}
    int8_inputs = {s.name: tuple(s.dims[1:]) for s in int8_graph.inputs}
    if float_inputs != int8_inputs:
        raise ConfigError(f"the models have different inputs: float {float_inputs}, "
                          f"int8 {int8_inputs}")
    if not set(float_graph.outputs) & set(int8_graph.outputs):
        raise ConfigError(f"the models have no output in common: float "
                          f"{', '.join(float_graph.outputs)}; int8 "
                          f"{', '.join(int8_graph.outputs)}")


def compare(float_graph: Graph, int8_graph: Graph,
            batches: Iterable[Mapping[str, np.ndarray]],
            labels: Sequence[int] | np.ndarray | None = None,
            progress: Progress | None = None, total: int | None = None,
            device: str = "x86", pair_hooks: Sequence[PairHook] = ()) -> Report:
    """Run both models on ``batches`` (input name -> NCHW float32 array, as
    :func:`tnnquant.calib.inputs.iter_batches` yields them) and report how far the int8 model
    is from the float model.

    ``labels``: one class index per sample, in batch order; adds top-1/top-5 accuracy of both
    models to every classifier output. ``progress(done, total)`` is called after every batch
    with the samples evaluated so far and ``total``, the expected count if the caller knows it.
    ``device``: whose int8 arithmetic to simulate, ``"x86"`` (also ARM's) or ``"naive"``.
    ``pair_hooks`` see every matched blob of every batch, float and dequantized int8 values
    side by side (the HTML report's plots collect their data this way).
    """
    _check_models(float_graph, int8_graph)
    state = _Comparison(float_graph, int8_graph, device, pair_hooks)
    all_labels = None if labels is None else np.asarray(labels, dtype=np.int64).reshape(-1)
    if all_labels is not None and (all_labels < 0).any():
        raise InputError(f"class index {int(all_labels.min())} is negative")
    for feeds in batches:
        n = len(next(iter(feeds.values())))
        batch_labels = None
        if all_labels is not None:
            batch_labels = all_labels[state.samples:state.samples + n]
            if len(batch_labels) < n:
                raise InputError(f"{len(all_labels)} labels for at least "
                                 f"{state.samples + n} samples")
        state.run_batch(feeds, batch_labels)
        if labels is not None and not state.classifiers:
            raise ConfigError("labels were given but no output is a classifier ((N, K) or "
                              "(N, K, 1, 1) scores)")
        if progress is not None:
            progress(state.samples, total)
    if not state.samples:
        raise InputError("no evaluation samples")
    if all_labels is not None and len(all_labels) != state.samples:
        raise InputError(f"{len(all_labels)} labels for {state.samples} samples")
    if not state.blobs:
        raise ConfigError("the float and int8 models have no blob name in common")
    return state.report(labelled=labels is not None)


def compare_folder(float_graph: Graph, int8_graph: Graph, folder: str | Path,
                   preprocess: Preprocess = Preprocess(), labels_file: str | Path | None = None,
                   batch_size: int = 4, progress: Progress | None = None,
                   warn: Callable[[str], None] | None = None, device: str = "x86",
                   pair_hooks: Sequence[PairHook] = ()) -> Report:
    """:func:`compare` on an evaluation folder, read exactly like a calibration folder
    (:func:`tnnquant.calib.inputs.list_samples`), with optional ``FILENAME CLASS_INDEX``
    labels. ``warn`` receives the folder's warnings (default: logging)."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    samples, labels = evaluation_samples(float_graph, folder, labels_file, warn)
    batches = iter_batches(samples, float_graph.inputs, preprocess, batch_size)
    return compare(float_graph, int8_graph, batches, labels, progress,
                   total=sum(s.count for s in samples), device=device, pair_hooks=pair_hooks)


def evaluation_samples(graph: Graph, folder: str | Path, labels_file: str | Path | None = None,
                       warn: Callable[[str], None] | None = None
                       ) -> tuple[list[Sample], list[int] | None]:
    """The samples of an evaluation folder (read by :func:`tnnquant.calib.inputs.list_samples`'s
    rule: label lists and class names are not samples) and, with a labels file, their class
    indices."""
    samples = list_samples(folder, graph.inputs, warn)
    if labels_file is None:
        return samples, None
    return match_labels(samples, read_labels(labels_file), str(labels_file))


# --- labels ------------------------------------------------------------------------------------

def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read the {what}: {e.strerror or e}", path=str(path)) from None
    except UnicodeDecodeError:
        raise InputError(f"the {what} is not UTF-8 text", path=str(path)) from None


def read_labels(path: str | Path) -> dict[str, int]:
    """Read a labels file: one ``FILENAME CLASS_INDEX`` per line (blank lines skipped)."""
    path = Path(path)
    text = _read_text(path, "labels file")
    labels: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(None, 1)   # file names may hold spaces; the index is last
        if len(parts) != 2 or not parts[1].isdigit():
            raise InputError(f"expected 'FILENAME CLASS_INDEX' (a non-negative integer), got "
                             f"'{line.strip()}'", path=str(path), line=number)
        name = Path(parts[0].strip()).name
        if name in labels:
            raise InputError(f"'{name}' is labelled twice", path=str(path), line=number)
        labels[name] = int(parts[1])
    if not labels:
        raise InputError("the labels file holds no label", path=str(path))
    return labels


def read_class_names(path: str | Path) -> dict[int, str]:
    """Read class names: line N of the file names class N - 1 (blank lines name no class)."""
    path = Path(path)
    text = _read_text(path, "class names file")
    names = {i: line.strip() for i, line in enumerate(text.splitlines()) if line.strip()}
    if not names:
        raise InputError("the class names file is empty", path=str(path))
    return names


def match_labels(samples: Iterable[Sample], labels: Mapping[str, int],
                 source: str | None = None) -> tuple[list[Sample], list[int]]:
    """The evaluation samples and their class indices, matched by file name (samples from
    per-input sub-folders are named without extension, so a label also matches by its name
    without extension). Every sample needs a label (label lists and class names in the folder
    are not samples: :func:`tnnquant.calib.inputs.not_a_sample`). ``source`` names the labels
    file in errors."""
    by_stem: dict[str, int] = {}
    for name, index in labels.items():
        by_stem.setdefault(Path(name).stem, index)
    kept: list[Sample] = []
    indices: list[int] = []
    for sample in samples:
        index = labels.get(sample.name, by_stem.get(sample.name))
        if index is None:
            raise InputError(f"no label for sample '{sample.name}'", path=source)
        if sample.count != 1:
            raise InputError(f"sample '{sample.name}' holds {sample.count} tensors but has one "
                             f"label", path=source)
        kept.append(sample)
        indices.append(index)
    if not kept:
        raise InputError("no evaluation sample has a label", path=source)
    return kept, indices
