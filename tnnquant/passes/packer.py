"""Make a graph look like what TNN's ModelPacker writes after network init (spec model-format
§1.8, §3.4), so tnnquant's output files equal TNN's tool output."""
from __future__ import annotations

import dataclasses

from ..ir.graph import FileFormat, Graph, Layer
from ..layers.concat import Concat
from ..layers.convolution import Convolution, conv_pads
from ..layers.pooling import Pooling, pool_pads
from ..layers.reshape import Reshape
from ..layers.upsample import Upsample


def _rewritten_params(layer: Layer, shapes: dict[str, tuple[int, ...]]):
    """Parameters as TNN's shape inference leaves them (spec model-format §3.4)."""
    p = layer.params
    dims = shapes.get(layer.inputs[0]) if layer.inputs else None
    if layer.kind is Convolution and p.pad_type >= 0 and dims and len(dims) == 4:
        geo = conv_pads(p, dims[2], dims[3])
        return p.replace(pad_h=geo.pad_top, pad_w=geo.pad_left)
    if layer.kind is Pooling:
        if p.kernel_index_w == -1:
            p = p.replace(kernel_index_w=p.kernel_index_h)
        if p.pad_type >= 0 and not p.is_adaptive_pool and dims and len(dims) == 4:
            geo = pool_pads(p, dims)
            p = p.replace(pad_h=geo.pad_top, pad_w=geo.pad_left)
        return p
    if layer.kind is Concat and p.axis < 0 and dims:
        return p.replace(axis=p.axis + len(dims))
    if layer.kind is Reshape and p.num_axes == -1:
        return p.replace(num_axes=len(p.shape))
    if layer.kind is Upsample and p.align_corners < 0:
        return p.replace(align_corners=0 if p.scale_h >= 1 and p.scale_w >= 1 else 1)
    return p


def modelpacker_layout(graph: Graph, source_blobs: set[str],
                       shapes: dict[str, tuple[int, ...]]) -> Graph:
    """A copy laid out as ModelPacker writes it: v2 magic, sorted inputs and outputs, the
    blob list rebuilt from the blobs the *loaded* graph referenced (``source_blobs``), the
    parameter words ModelPacker writes (``Params.packer_fields``), shape-inference rewrites
    applied."""
    graph = graph.copy()
    graph.format = FileFormat()
    graph.inputs = sorted(graph.inputs, key=lambda s: s.name.encode())
    graph.outputs = sorted(graph.outputs, key=str.encode)
    graph.blob_names = sorted(source_blobs | graph.referenced_blobs(), key=str.encode)
    source_layers = graph.layers
    graph.layers = []
    for layer in source_layers:
        params = _rewritten_params(layer, shapes)
        graph.layers.append(dataclasses.replace(layer, params=params,
                                                n_fields=params.packer_fields()))
    return graph
