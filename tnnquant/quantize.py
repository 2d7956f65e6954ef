"""``tnnquant.quantize``: calibrate a float TNN model and produce the int8 model TNN's tool
would write (spec int8 §1.2), plus what TNN does not say: warnings and a summary."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .calib.collect import BlobPlan, Progress, StatsCollector, blob_scales
from .calib.inputs import IMAGE_EXTENSIONS, Sample, iter_batches, list_samples
from .config import QuantConfig
from .errors import ConfigError, InputError
from .formats.io import save_model
from .ir.graph import Graph
from .passes.fuse_activation import fuse_conv_activation
from .passes.merge_scales import merge_relu_pool_scales
from .passes.packer import modelpacker_layout
from .passes.quantize_layers import LayerQuantOptions, flag_quantized_layers, quantize_weights
from .weights import WEIGHT_METHODS

Warn = Callable[[str], None]


@dataclass
class QuantizeResult:
    """The quantized graph and what happened on the way."""

    graph: Graph                 # int8 model, laid out as TNN's tool writes it
    float_graph: Graph           # the fused float graph that was calibrated
    samples: int
    plans: dict[str, BlobPlan]   # calibrated blobs and their effective methods
    seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def quantized_layers(self) -> int:
        return sum(layer.quantized for layer in self.graph.layers)

    def save(self, proto_path: str | Path, model_path: str | Path) -> None:
        save_model(self.graph, proto_path, model_path)


def _batches(graph: Graph, inputs, config: QuantConfig, warn: Warn
             ) -> tuple[int, Callable[[], Iterator[dict[str, np.ndarray]]], list[Sample] | None]:
    """(sample count, re-iterable batch source, samples when read from a folder)."""
    if isinstance(inputs, (str, Path)):
        samples = list_samples(inputs, graph.inputs, warn)
        return (sum(s.count for s in samples),
                lambda: iter_batches(samples, graph.inputs, config.preprocess, config.batch_size),
                samples)
    arrays: Sequence = list(inputs)
    if not arrays:
        raise InputError("no calibration samples given")
    name = graph.inputs[0].name
    feeds = [a if isinstance(a, dict) else {name: a} for a in arrays]
    return sum(len(next(iter(f.values()))) for f in feeds), lambda: iter(feeds), None


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
    count, batches, samples = _batches(graph, inputs, config, note)

    fused = fuse_conv_activation(graph)
    collector = StatsCollector(fused, config.blob_method, config.per_tensor_blobs)
    stats = collector.run(batches, progress)
    fused.blob_scales = blob_scales(collector.plans, stats)

    options = LayerQuantOptions(WEIGHT_METHODS.get(config.weight_method),
                                config.per_tensor_weights)
    flagged = flag_quantized_layers(fused, frozenset(config.exclude))
    if config.fold_merged_scales:   # fold weights with the scales the runtime will use
        quantized = quantize_weights(merge_relu_pool_scales(flagged), options)
    else:                           # TNN: fold first, merge after (spec int8 §9)
        quantized = merge_relu_pool_scales(quantize_weights(flagged, options))
    quantized = modelpacker_layout(quantized, sorted(graph.referenced_blobs()),
                                   collector.shapes)

    for message in _warnings(quantized, collector.plans, stats, config, samples):
        note(message)
    return QuantizeResult(quantized, fused, count, collector.plans,
                          time.perf_counter() - start, warnings)


def _warnings(graph: Graph, plans: dict[str, BlobPlan], stats, config: QuantConfig,
              samples: list[Sample] | None) -> Iterator[str]:
    """Where TNN's runtime will misbehave with this model."""
    if config.asymmetric:
        yield ("asymmetric quantization (-b 3 / -w 3) runs correctly only on TNN's NAIVE CPU "
               "device: the ARM and x86 int8 kernels ignore zero points (spec int8 §13)")
    for name, plan in plans.items():
        r = stats[name].range
        if not r.valid.any():
            yield (f"blob '{name}' is all zero on the calibration set: its scale is 0 "
                   f"(TNN's tool aborts on such a per-tensor blob)")
        elif np.array_equal(r.min, r.max):
            yield f"blob '{name}' is constant on the calibration set"
    images = samples and any(f.suffix.lower() in IMAGE_EXTENSIONS
                             for s in samples for f in s.files.values())
    if images and not config.preprocess.scale and not config.preprocess.mean:
        yield ("images were calibrated as raw 0-255 pixels (no -n/-s): if the application "
               "feeds normalized inputs, they quantize to almost all zeros (TNN issue #187)")
    producers = graph.producers()
    consumers = graph.consumers()
    islands = [layer.name for layer in graph.layers
               if not layer.quantized
               and any(producers.get(b) is not None and producers[b].quantized
                       for b in layer.inputs)
               and any(c.quantized for b in layer.outputs for c in consumers.get(b, []))]
    if islands:
        shown = ", ".join(islands[:5]) + (" ..." if len(islands) > 5 else "")
        yield (f"{len(islands)} layer(s) run in float between int8 layers, each costing two "
               f"int8<->fp32 conversions at run time: {shown}")
