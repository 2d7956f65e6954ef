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
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import BlobScale, Graph, Layer
from ..layers._util import axis_index
from ..layers.concat import Concat
from ..layers.convolution import Convolution
from .context import PassContext
from .merge_scales import merged_layers


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


def split_concat_scales(graph: Graph, ctx: PassContext) -> Graph:
    """Return a copy whose qualifying Concats (module docstring) copy their inputs' codes
    with per-input scales."""
    consumers, producers, merged = graph.consumers(), graph.producers(), merged_layers(graph)
    chosen = [layer for layer in graph.layers if layer.kind is Concat and layer.outputs
              and _splittable(layer, graph, ctx, consumers, producers, merged)]
    if not chosen:
        return graph
    graph = graph.copy()
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
