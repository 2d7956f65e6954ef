"""ReLU / max-pooling scale merging (spec int8 §9).

A ReLU or max pool fed by a quantized layer takes its output scale for its input blob too,
so the int8 kernels pass values through without rescaling; the merge propagates upstream
through chains of such layers.
"""
from __future__ import annotations

from ..ir.graph import Graph, Layer
from ..layers.pooling import Pooling
from ..layers.relu import ReLU


def _merges(layer: Layer) -> bool:
    if layer.kind is ReLU:
        return True
    return layer.kind is Pooling and layer.params.pool_type == 0


def merge_relu_pool_scales(graph: Graph) -> Graph:
    """Return a copy where each merged input blob shares its output blob's BlobScale object."""
    graph = graph.copy()
    producer = graph.producers()

    def merge(layer: Layer) -> None:
        if not _merges(layer) or not layer.inputs or not layer.outputs:
            return
        source = producer.get(layer.inputs[0])
        if source is None or not source.quantized:
            return
        scales = graph.blob_scales
        if layer.inputs[0] in scales and layer.outputs[0] in scales:
            scales[layer.inputs[0]] = scales[layer.outputs[0]]
            layer.quantized = True
        merge(source)

    for layer in graph.layers:
        merge(layer)
    return graph
