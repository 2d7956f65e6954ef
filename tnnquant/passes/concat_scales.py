"""Per-input scales for a Concat whose output leaves int8: each input keeps its own scale.

A quantized Concat with per-tensor scales requantizes every input to the output's one scale
(spec int8 §12.6). Where the inputs have very different ranges, the small ones lose all their
codes: YOLOv8's output concatenates box coordinates (up to the image size, ~300 px) and class
probabilities (0..1) along the channels, and one scale of ~2.5 px per code rounds every class
probability to 0. The int8 model then detects nothing, while the output's cosine to fp32 stays
0.9995: the box coordinates carry almost all of its norm.

TNN's int8 Concat copies the bytes unchanged when any input is per-channel, which is exact when
each output channel's scale is the scale of the input channel it comes from (§12.6, §13). So
here the inputs' scales are written per channel (each input's own per-tensor scale repeated
over its channels) and the output's scale is their concatenation: every input keeps the
precision it had, and the Concat costs a copy instead of a requantization.

Only where nothing is lost: a channel-axis Concat whose output no int8 layer reads (a network
output or float readers, which dequantize it per channel) and whose inputs only it reads,
written by float layers (a Reformat quantizes them per channel) or by int8 convolutions (whose
requantization is per output channel). An int8 Add is excluded: TNN takes its per-channel
decision from its first input's scale count (§12.5).

The same byte copy goes wrong where the output's channel scales are not the inputs': a ReLU or
max pool merged after the Concat gives its output the pool's own scales (§9). Such Concats
(``inexact_concats``) are made to requantize instead, their blobs per-tensor; the scale search
already makes Concat blobs per-tensor, so this acts without it (``--no scale-search``, the
fallback check's recipe).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ..ir.graph import BlobScale, Graph, Layer
from ..layers._util import axis_index
from ..layers.concat import COPY_EXACT_RTOL, Concat, copy_scale_error
from ..layers.convolution import Convolution
from .context import PassContext
from .merge_scales import merge_relu_pool_scales, merged_layers
from .scale_search import blob_groups


def _splittable(layer: Layer, graph: Graph, ctx: PassContext,
                consumers: dict[str, list[Layer]], producers: dict[str, Layer],
                merged: set[str]) -> bool:
    """Whether ``layer`` is a Concat whose inputs can keep their own scales (module
    docstring). A ReLU or max pool reading it is an int8 reader too: scale merging will
    flag it (``merged``)."""
    out, shapes = layer.outputs[0], ctx.blob_shapes
    if (not layer.quantized or out not in graph.blob_scales or out not in shapes
            or axis_index(layer.params.axis, len(shapes[out])) != 1
            or any(r.quantized or r.name in merged for r in consumers.get(out, []))):
        return False
    for blob in layer.inputs:
        source, scale = producers.get(blob), graph.blob_scales.get(blob)
        readers = consumers.get(blob, [])
        written_per_channel = source is not None and (not source.quantized
                                                      or source.kind is Convolution)
        if not (written_per_channel and len(readers) == 1 and readers[0] is layer
                and scale is not None and blob in shapes
                and scale.scale.size in (1, shapes[blob][1]) and np.all(scale.scale > 0)
                and not scale.zero_points.any() and scale.folded_zero_point is None):
            return False
    return True


def inexact_concats(graph: Graph, shapes: dict[str, tuple[int, ...]]
                    ) -> Iterator[tuple[Layer, float]]:
    """The int8 Concats of ``graph`` (its scales as the runtime uses them: merged, §9) that
    copy their inputs' codes into output channels of other scales (§12.6), with
    ``copy_scale_error``; Concats whose blobs lack a scale or a shape are not judged."""
    for layer in graph.layers:
        blobs = [*layer.inputs, *layer.outputs[:1]]
        if not (layer.kind is Concat and layer.quantized
                and all(b in graph.blob_scales and b in shapes for b in blobs)):
            continue
        error = copy_scale_error(layer.params, [graph.blob_scales[b].scale for b in layer.inputs],
                                 graph.blob_scales[layer.outputs[0]].scale,
                                 [shapes[b] for b in blobs])
        if error > COPY_EXACT_RTOL:
            yield layer, error


def _tie_int8_concats(graph: Graph, ctx: PassContext, split: list[Layer]) -> int:
    """Make the int8 Concats that would copy codes into other scales (``inexact_concats``
    after merging: a ReLU or max pool merged after a Concat gives its output the pool's own
    scales) requantize instead: their blobs' groups (``blob_groups``: merged chains and Add
    blobs tied to them) per-tensor, as the scale search makes them, until none is left (a
    blob tied for one Concat may feed another). Each blob's per-tensor scale is the
    calibration method's (``ctx.candidates``) or else its largest channel scale. Exact
    per-channel Concats (the same data calibrated alike) and groups holding a zero point are
    left alone. Returns how many blobs changed."""
    groups, _ = blob_groups(graph)
    group_of = {b: frozenset(group) for group in groups for b in group}
    kept = {b for layer in split for b in (*layer.inputs, *layer.outputs)}
    changed = 0
    while True:
        todo = {group_of[b] for layer, _ in inexact_concats(merge_relu_pool_scales(graph),
                                                             ctx.blob_shapes)
                for b in (*layer.inputs, *layer.outputs[:1]) if b in group_of}
        todo = [group for group in todo if not group & kept
                and any(graph.blob_scales[b].per_channel for b in group)
                and not any(graph.blob_scales[b].zero_points.any()
                            or graph.blob_scales[b].folded_zero_point is not None
                            for b in group)]
        if not todo:
            return changed
        for group in todo:
            for name in group:
                current = graph.blob_scales[name]
                if current.per_channel:
                    candidate = ctx.candidates.get(name, {}).get("tensor")
                    graph.blob_scales[name] = candidate or BlobScale(
                        current.scale.max(keepdims=True))
                    changed += 1


def split_concat_scales(graph: Graph, ctx: PassContext) -> Graph:
    """Return a copy whose qualifying Concats (module docstring) copy their inputs' codes
    with per-input scales, and whose other int8 Concats requantize (``_tie_int8_concats``)."""
    consumers, producers, merged = graph.consumers(), graph.producers(), merged_layers(graph)
    chosen = [layer for layer in graph.layers if layer.kind is Concat and layer.outputs
              and _splittable(layer, graph, ctx, consumers, producers, merged)]
    graph = graph.copy()
    tied = _tie_int8_concats(graph, ctx, chosen)
    if tied:
        ctx.notes.append(f"concat scales: {tied} blob(s) of int8 Concats made per-tensor, so "
                         f"that TNN requantizes instead of copying codes into other scales")
    if not chosen:
        return graph
    for layer in chosen:
        parts = []
        for blob in layer.inputs:
            channels = ctx.blob_shapes[blob][1]
            part = np.broadcast_to(graph.blob_scales[blob].scale, (channels,)).copy()
            graph.blob_scales[blob] = BlobScale(part, np.zeros(channels, np.int8))
            parts.append(part)
        scale = np.concatenate(parts)
        graph.blob_scales[layer.outputs[0]] = BlobScale(scale, np.zeros(scale.size, np.int8))
    ctx.notes.append(f"concat scales: {len(chosen)} Concat(s) copy their inputs' codes, each "
                     f"input keeping its own scale")
    return graph
