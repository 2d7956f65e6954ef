"""``tnnquant.quantize``: calibrate a float TNN model and produce the int8 model TNN's tool
would write (spec int8 §1.2), plus what TNN does not say: warnings and a summary."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from threadpoolctl import threadpool_limits

from .calib.collect import BlobPlan, Progress, StatsCollector, blob_scales
from .calib.inputs import IMAGE_EXTENSIONS, Sample, iter_batches, list_samples, rebatch
from .calib.methods import ACT_METHODS
from .calib.observers import BlobStats, RangeStats, combine_ranges
from .config import QuantConfig
from .errors import ConfigError, InputError
from .formats.io import save_model
from .ir.graph import BlobScale, Graph
from .passes.bias import correct_biases, round_biases
from .passes.concat_scales import inexact_concats, split_concat_scales
from .passes.context import PassContext
from .passes.fallback import FOLDS, fallback_config, keep_better
from .passes.fuse_activation import fuse_conv_activation
from .passes.learned_rounding import learn_rounding
from .passes.merge_scales import merge_relu_pool_scales
from .passes.mixed_precision import keep_float_until_target
from .passes.packer import modelpacker_layout
from .passes.quantize_layers import LayerQuantOptions, flag_quantized_layers, quantize_weights
from .passes.zero_points import fold_zero_points, shift_blob_scales
from .passes.scale_search import per_tensor_candidates, search_blob_scales
from .weights import WEIGHT_METHODS

Warn = Callable[[str], None]
RECIPE_BLAS_THREADS = 1   # BLAS threads while the recipe's passes run (see quantize)


@dataclass
class QuantizeResult:
    """The quantized graph and what happened on the way."""

    graph: Graph                 # int8 model, laid out as TNN's tool writes it
    float_graph: Graph           # the fused float graph that was calibrated
    samples: int
    plans: dict[str, BlobPlan]   # calibrated blobs and their effective methods
    seconds: float
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # what the recipe's steps decided

    @property
    def quantized_layers(self) -> int:
        return sum(layer.quantized for layer in self.graph.layers)

    def save(self, proto_path: str | Path, model_path: str | Path) -> None:
        save_model(self.graph, proto_path, model_path)


Step = Callable[[Graph, PassContext], Graph]


def recipe(config: QuantConfig) -> list[Step]:
    """The quantizer's steps after calibration, in order: each a ``graph -> graph`` function
    of the flagged float graph and the context. TNN's recipe is flag, quantize weights, merge
    ReLU/max-pool scales (spec int8 §7-§9); the others change it step by step."""
    steps: list[Step] = [flag_layers]
    if config.scale_search:
        steps.append(search_blob_scales)
    if config.fold_zero_points or config.offset_float_blobs:
        steps.append(shift_blob_scales)
    if config.split_concat_scales and not config.per_tensor_blobs:
        steps.append(split_concat_scales)
    if config.fold_merged_scales:   # fold weights with the scales the runtime will use
        steps += [merge_scales, quantize_layer_weights]
    else:                           # TNN: fold first, merge after (spec int8 §9)
        steps += [quantize_layer_weights, merge_scales]
    if config.learned_rounding:
        steps.append(learn_rounding)
    if config.round_bias:
        steps.append(round_biases)
    if config.fold_zero_points or config.offset_float_blobs:
        steps.append(fold_zero_points)
    if config.bias_correction:
        steps.append(correct_biases)
    if _checks_fallback(config):
        steps.append(check_fallback)
    if config.target_cos is not None:
        steps.append(keep_float_until_target)
    return steps


def flag_layers(graph: Graph, ctx: PassContext) -> Graph:
    return flag_quantized_layers(graph, frozenset(ctx.config.exclude))


def quantize_layer_weights(graph: Graph, ctx: PassContext) -> Graph:
    return quantize_weights(graph, ctx.weight_options)


def merge_scales(graph: Graph, ctx: PassContext) -> Graph:
    return merge_relu_pool_scales(graph)


def _checks_fallback(config: QuantConfig) -> bool:
    return config.fallback_check and fallback_config(config) is not None


def check_fallback(graph: Graph, ctx: PassContext) -> Graph:
    """The recipe's result, or the same recipe without its data-fitted steps when that one
    does better (passes/fallback.py)."""
    config = fallback_config(ctx.config)

    def build(scales: dict[str, BlobScale], minima: dict[str, np.ndarray], batches) -> Graph:
        # its steps stay silent: the check reports its own progress and decision
        sub_ctx = dataclasses.replace(ctx, config=config, batches=batches, candidates={},
                                      minima=minima, progress=None, notes=[])
        fallback = ctx.float_graph.copy()
        fallback.blob_scales = dict(scales)
        for step in recipe(config):
            fallback = step(fallback, sub_ctx)
        return fallback

    return keep_better(graph, ctx, build)


def _batches(graph: Graph, inputs, config: QuantConfig, warn: Warn
             ) -> tuple[Callable[[int], Iterator[dict[str, np.ndarray]]], list[Sample] | None]:
    """(batch source: batch size -> an iterator over the samples in batches of that size,
    samples when read from a folder)."""
    if isinstance(inputs, (str, Path)):
        samples = list_samples(inputs, graph.inputs, warn)
        return (lambda size: iter_batches(samples, graph.inputs, config.preprocess, size),
                samples)
    feeds = [_as_feed(graph, item) for item in inputs]
    if not feeds:
        raise InputError("no calibration samples given")
    return lambda size: rebatch(feeds, size), None


def _as_feed(graph: Graph, item) -> dict[str, np.ndarray]:
    """An array (or input name -> array dict) as a batch: (C, H, W) gains the batch axis."""
    if not isinstance(item, dict):
        if len(graph.inputs) != 1:
            raise InputError(f"the model has {len(graph.inputs)} inputs: give each sample as "
                             f"an input name -> array dict")
        item = {graph.inputs[0].name: item}
    specs = {s.name: s for s in graph.inputs}
    out = {}
    for name, value in item.items():
        value = np.asarray(value, np.float32)
        out[name] = value[None] if value.ndim == len(specs[name].dims) - 1 else value
    return out


def quantize(graph: Graph, inputs, config: QuantConfig = QuantConfig(),
             progress: Progress | None = None, warn: Warn | None = None) -> QuantizeResult:
    """Calibrate ``graph`` on ``inputs`` (a folder, or a list of NCHW arrays / input-name ->
    array dicts) and return the int8 model.

    ``progress(stage, samples_done)`` is called after every batch of each calibration pass;
    ``warn(message)`` receives the warnings (they are also kept in the result).
    """
    start = time.perf_counter()
    warnings: list[str] = []

    def note(message: str) -> None:
        warnings.append(message)
        if warn:
            warn(message)

    if graph.is_quantized:
        raise ConfigError("the model is already quantized")
    unknown = sorted(set(config.exclude) - {layer.name for layer in graph.layers})
    if unknown:
        raise ConfigError(f"--exclude: no layer named '{unknown[0]}'")
    for message in nonfinite_weights(graph):
        note(message)
    source, samples = _batches(graph, inputs, config, note)

    def batches() -> Iterator[dict[str, np.ndarray]]:
        return source(config.batch_size)

    fused = fuse_conv_activation(graph, swish=not config.swish_in_float)
    collector = StatsCollector(fused, config.blob_method, config.per_tensor_blobs, config.fp32,
                               config.hist_memory_mb << 20,
                               folds=FOLDS if _checks_fallback(config) else 0)
    scales: dict[str, BlobScale] = {}
    candidates: dict[str, dict[str, BlobScale]] = {}
    # onnxruntime runs one sample at a time anyway: larger batches would only hold more
    # inputs in memory (8 of YOLOv8n's take 39 MB, and as much again while concatenated)
    calibration = (lambda: source(1)) if collector.one_sample_at_a_time else batches
    for finished in collector.run(calibration, progress):   # histograms freed group by group
        scales.update(blob_scales(collector.plans, finished, exact=config.fp32 == "naive"))
        if config.scale_search:
            candidates.update(per_tensor_candidates(collector.plans, finished))
        del finished   # before the next group's histograms are allocated
    fused.blob_scales = {name: scales[name] for name in collector.plans}

    held_out = _held_out_ranges(collector)
    ctx = PassContext(config, fused, batches,
                      LayerQuantOptions(WEIGHT_METHODS.get(config.weight_method),
                                        config.per_tensor_weights),
                      candidates, *_minmax_scales(collector.ranges, held_out), progress, note,
                      sample_bytes=collector.sample_bytes(),
                      minima={name: r.min for name, r in collector.ranges.items()},
                      held_out_minima=[{name: r.min for name, r in ranges.items()}
                                       for ranges in held_out],
                      blob_shapes=collector.shapes)
    if collector.numpy_reason:
        ctx.notes.append(f"calibration ran on the numpy kernels, not onnxruntime (slower): "
                         f"{collector.numpy_reason}")
    quantized = fused
    # the recipe's passes multiply small matrices (one layer, one batch): OpenBLAS's second
    # thread gains little there and its waiting spins a core; on a shared 2-core machine the
    # default recipe on MobileNetV2 took 62 CPU s / 95 s wall with it, 27 / 27 without
    with threadpool_limits(limits=RECIPE_BLAS_THREADS, user_api="blas"):
        for step in recipe(config):
            quantized = step(quantized, ctx)
    quantized = modelpacker_layout(quantized, graph.referenced_blobs(), collector.shapes)

    for message in _warnings(quantized, collector.plans, collector.ranges, collector.shapes,
                             config, samples):
        note(message)
    return QuantizeResult(quantized, fused, collector.samples, collector.plans,
                          time.perf_counter() - start, warnings, ctx.notes)


def _minmax_scales(ranges: dict[str, RangeStats], held_out: list[dict[str, RangeStats]]
                   ) -> tuple[dict[str, BlobScale], list[dict[str, BlobScale]]]:
    """MinMax scales of the calibrated blobs on all samples (``ranges``), and per fold on the
    samples outside it (``held_out``, see ``_held_out_ranges``; none without them)."""
    minmax = ACT_METHODS.get("minmax")

    def scales(by_blob: dict[str, RangeStats]) -> dict[str, BlobScale]:
        return {name: BlobScale(*minmax(BlobStats(r))) for name, r in by_blob.items()}

    if not held_out:
        return {}, []
    return scales(ranges), [scales(fold_ranges) for fold_ranges in held_out]


def _held_out_ranges(collector: StatsCollector) -> list[dict[str, RangeStats]]:
    """Per fold, the calibrated blobs' ranges on the samples outside it (none without fold
    ranges or with fewer samples than folds)."""
    if not collector.folds or collector.samples < collector.folds:
        return []
    return [{name: combine_ranges([r for g, r in enumerate(folds) if g != f])
             for name, folds in collector.fold_ranges.items()}
            for f in range(collector.folds)]


def _warnings(graph: Graph, plans: dict[str, BlobPlan], ranges,
              shapes: dict[str, tuple[int, ...]], config: QuantConfig,
              samples: list[Sample] | None) -> Iterator[str]:
    """Where TNN's runtime will misbehave with this model."""
    if config.asymmetric:
        yield ("asymmetric quantization (-b 3 / -w 3) runs correctly only on TNN's NAIVE CPU "
               "device: the ARM and x86 int8 kernels ignore zero points (spec int8 §13)")
    network_inputs = {spec.name for spec in graph.inputs}
    for name in plans:
        r = ranges[name]
        if name in network_inputs and r.valid.any() and not r.valid.all():
            dead = np.flatnonzero(~r.valid)
            yield (f"input '{name}' channel(s) {', '.join(map(str, dead[:8]))} never exceed "
                   f"|x| = 1e-5 on the calibration set: their scale is 0, so TNN feeds them to "
                   f"the int8 network as zeros (TNN issue #187); check -n/-s")
        if not r.valid.any():
            yield (f"blob '{name}' is all zero (|x| <= 1e-5) on the calibration set: its scale "
                   f"is 0, so int8 layers see it as zeros (TNN's tool aborts on such a "
                   f"per-tensor blob; for a network input, check -n/-s: TNN issue #187)")
        elif np.array_equal(r.min, r.max):
            yield f"blob '{name}' is constant on the calibration set"
    images = samples and any(f.suffix.lower() in IMAGE_EXTENSIONS
                             for s in samples for f in s.files.values())
    if images and not config.preprocess.scale and not config.preprocess.mean:
        yield ("images were calibrated as raw 0-255 pixels (no -n/-s): if the application "
               "feeds normalized inputs, they quantize to almost all zeros (TNN issue #187)")
    for layer, error in inexact_concats(graph, shapes):
        yield (f"int8 Concat '{layer.name}' copies its inputs' codes (one is per-channel, spec "
               f"int8 §12.6) into output channels whose scales differ from theirs by up to "
               f"{error:.0%}: TNN's runtime reads those values rescaled")
    islands = float_islands(graph)
    if islands:
        shown = ", ".join(islands[:5]) + (" ..." if len(islands) > 5 else "")
        yield (f"{len(islands)} float layer(s) sit between int8 layers, so TNN converts int8 "
               f"to fp32 and back around them at run time: {shown}")


def nonfinite_weights(graph: Graph) -> Iterator[str]:
    """Layers (and constants) whose float weights hold inf or NaN: a damaged or badly exported
    model, whose int8 weights cannot represent them (an inf sets its row's weight scale to
    inf, every other weight of the row then quantizes to 0)."""
    bad: dict[tuple[bool, str], int] = {}   # (is a constant, owner) -> non-finite values
    for owner, buf in graph.iter_weights():
        if buf.data.dtype.kind == "f":
            key = (graph.constants.get(owner) is buf, owner)
            bad[key] = bad.get(key, 0) + int(np.count_nonzero(~np.isfinite(buf.data)))
    for (constant, name), count in bad.items():
        if count and constant:
            yield f"constant '{name}' holds {count} value(s) that are inf or NaN"
        elif count:
            yield (f"layer '{name}' holds {count} weight value(s) that are inf or NaN (a "
                   f"damaged or badly exported model): its int8 weights cannot represent them")


def float_islands(graph: Graph) -> list[str]:
    """Float layers that receive int8 data and send data to an int8 layer through float
    layers only: TNN runs them between Reformat layers (spec int8 §11.2)."""
    producers = graph.producers()
    consumers = graph.consumers()
    after_int8: set[str] = set()      # float layers fed, through float layers, by int8 ones
    for layer in graph.layers:        # list order is topological
        if not layer.quantized and any(
                producers.get(b) is not None and (producers[b].quantized
                                                  or producers[b].name in after_int8)
                for b in layer.inputs):
            after_int8.add(layer.name)
    before_int8: set[str] = set()     # float layers that feed int8 ones through float layers
    for layer in reversed(graph.layers):
        if not layer.quantized and any(c.quantized or c.name in before_int8
                                       for b in layer.outputs for c in consumers.get(b, [])):
            before_int8.add(layer.name)
    return [layer.name for layer in graph.layers
            if layer.name in after_int8 and layer.name in before_int8]
