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


def merged_layers(graph: Graph) -> set[str]:
    """Names of the ReLU / max-pool layers whose input blob ``merge_relu_pool_scales`` gives
    their output's scale: those fed by a quantized layer or by another merged one (a chain of
    max pools: YOLOv8's SPPF; inception's pools after a Concat), in the graph's order."""
    producer = graph.producers()
    merged: set[str] = set()
    for layer in graph.layers:
        if not _merges(layer) or not layer.inputs or not layer.outputs:
            continue
        source = producer.get(layer.inputs[0])
        if (source is not None and (source.quantized or source.name in merged)
                and layer.inputs[0] in graph.blob_scales and layer.outputs[0] in graph.blob_scales):
            merged.add(layer.name)
    return merged


def merge_relu_pool_scales(graph: Graph) -> Graph:
    """Return a copy where each merged input blob shares its output blob's BlobScale object."""
    graph = graph.copy()
    producer = graph.producers()
    merged = merged_layers(graph)

    def merge(layer: Layer | None) -> None:
        if layer is None or layer.name not in merged:
            return
        graph.blob_scales[layer.inputs[0]] = graph.blob_scales[layer.outputs[0]]
        layer.quantized = True
        merge(producer.get(layer.inputs[0]))   # a chain takes its last output's scale

    for layer in graph.layers:
        merge(layer)
    return graph
