"""The graph rewrites TNN's runtime makes when it loads a quantized model (spec int8 §11.2).

``runtime_graph`` applies them in TNN's order: conv+activation (quantized convs: ReLU/ReLU6
only), conv+add fusion, conv+activation again (a ReLU after the absorbed Add fuses), and the
insertion of Reformat layers wherever data cross between int8 and fp32 layers. The result is
what the int8 executor runs; its layer and blob names are TNN's (``<X>_int8_reformat``,
``<b>_int8_reformat``), so per-blob dumps of the real runtime can be matched by name. It is
never written to a file.
"""
from __future__ import annotations

from ..errors import TnnQuantError
from ..exec.int8_math import FUSION_ACT_ADD, FUSION_ADD_ACT
from ..formats.rawbuffer import DataType
from ..ir.graph import Graph, InputSpec, Layer
from ..layers.add import Add
from ..layers.convolution import Convolution, FusedConvParams
from ..layers.reformat import ReformatParams
from .fuse_activation import fuse_conv_activation

REFORMAT_SUFFIX = "_int8_reformat"
INPUT_REFORMAT_SUFFIX = "_int8_reformat__from_model_input__"


def _add_fusable(conv: Layer) -> bool:
    """A quantized 1x1, stride-1, unpadded, ungrouped convolution (spec int8 §11.2)."""
    p = conv.params
    return (conv.quantized and conv.kind is Convolution and len(conv.outputs) == 1
            and p.group == 1 and p.kernel_h == p.kernel_w == 1 and p.stride_h == p.stride_w == 1
            and p.pad_h == p.pad_w == 0 and not isinstance(p, FusedConvParams))


def fuse_conv_add(graph: Graph) -> Graph:
    """Return a copy where each fusable quantized conv immediately followed in the list by a
    quantized Add of its output takes the Add's other input(s) as extra inputs and the Add's
    outputs (spec int8 §11.2 step 1). The fusion order is conv->add->activation when the conv
    has no activation yet, conv->activation->add otherwise."""
    graph = graph.copy()
    layers = graph.layers
    i = 0
    while i < len(layers) - 1:
        conv, add = layers[i], layers[i + 1]
        out = conv.outputs[0] if conv.outputs else None
        others = [b for b in add.inputs if b != out]
        if (not _add_fusable(conv) or not (add.quantized and add.kind is Add)
                or out not in add.inputs or not others or out in graph.outputs
                or any(out in later.inputs for later in layers[i + 2:])):
            i += 1
            continue
        fusion = FUSION_ADD_ACT if conv.params.activation_type == 0 else FUSION_ACT_ADD
        params = FusedConvParams(**vars(conv.params), fusion=fusion)
        layers[i] = conv.replace(inputs=conv.inputs + others, outputs=list(add.outputs),
                                 params=params)
        del layers[i + 1]
        i += 1
    return graph


def _reformat(name: str, inputs: list[str], to_int8: bool) -> Layer:
    src, dst = (DataType.FLOAT, DataType.INT8) if to_int8 else (DataType.INT8, DataType.FLOAT)
    return Layer("Reformat", name, list(inputs), [b + REFORMAT_SUFFIX for b in inputs],
                 ReformatParams(int(src), int(dst)))


def _copy_scales(graph: Graph, blobs: list[str], owner: str) -> None:
    """The fp32 -> int8 side needs ``<b>_int8_reformat_scale_data_``: TNN duplicates the scale
    of ``b``; without one, its network init fails (spec int8 §11.2, §11.3)."""
    for b in blobs:
        if b not in graph.blob_scales:
            raise TnnQuantError(f"blob '{b}' feeds a quantized layer but has no scale "
                                f"('{b}_scale_data_' is missing from the model)", layer=owner)
        graph.blob_scales[b + REFORMAT_SUFFIX] = graph.blob_scales[b]


def _is_int8_input(spec: InputSpec) -> bool:
    return spec.data_type == DataType.INT8


def insert_reformats(graph: Graph) -> Graph:
    """Return a copy with TNN's int8 <-> fp32 Reformat layers (spec int8 §11.2 step 3)."""
    graph = graph.copy()
    if not graph.is_quantized:
        return graph
    original = list(graph.layers)
    layers: list[Layer] = []
    for spec in graph.inputs:
        users = [lay for lay in original if spec.name in lay.inputs and not _is_reformat(lay)]
        int8_input = _is_int8_input(spec)
        if not ({lay.quantized for lay in users} >= {True, False}):
            continue
        name = spec.name + INPUT_REFORMAT_SUFFIX
        reformat = _reformat(name, [spec.name], to_int8=not int8_input)
        if not int8_input:
            _copy_scales(graph, [spec.name], name)
        _redirect([lay for lay in users if lay.quantized != int8_input], {spec.name})
        layers.append(reformat)
    for i, layer in enumerate(original):
        layers.append(layer)
        if _is_reformat(layer):
            continue
        later = [lay for lay in original[i + 1:] if not _is_reformat(lay)]
        crossing = [b for b in layer.outputs
                    if any(b in lay.inputs and lay.quantized != layer.quantized
                           for lay in later)]
        if not crossing:
            continue
        name = layer.name + REFORMAT_SUFFIX
        if not layer.quantized:
            _copy_scales(graph, crossing, name)
        _redirect([lay for lay in later if lay.quantized != layer.quantized], set(crossing))
        layers.append(_reformat(name, crossing, to_int8=not layer.quantized))
    graph.layers = layers
    known = set(graph.blob_names)
    graph.blob_names += [b for lay in layers if _is_reformat(lay)
                         for b in lay.outputs if b not in known]
    return graph


def _is_reformat(layer: Layer) -> bool:
    """Reformats are boundaries already: skipping them makes the pass idempotent."""
    return layer.type == "Reformat"


def _redirect(consumers: list[Layer], blobs: set[str]) -> None:
    for lay in consumers:
        lay.inputs = [b + REFORMAT_SUFFIX if b in blobs else b for b in lay.inputs]


def runtime_graph(graph: Graph) -> Graph:
    """The graph TNN's int8 runtime executes (spec int8 §11.2), in TNN's order: conv+activation,
    conv+add, conv+activation (TNN runs it once more, without further effect), Reformat
    insertion. Idempotent; a float graph comes back unchanged."""
    graph = fuse_conv_activation(graph, quantized_only=True)
    graph = fuse_conv_add(graph)
    graph = fuse_conv_activation(graph, quantized_only=True)
    return insert_reformats(graph)
