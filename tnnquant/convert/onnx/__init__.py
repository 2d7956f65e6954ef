"""ONNX -> TNN conversion in Python, matching TNN's own converter (onnx2tnn, default
``-optimize=1``): the same layer types in the same (file) order, the same parameters and
weights, then written by tnnquant's own TNN writer.

The pipeline reads top to bottom: read and shape-infer the file (``model``), run the graph
clean-up passes (``PASSES``: plain ``OnnxGraph -> OnnxGraph`` functions, each in its own
module), map every node with the mapping registered for its op type (``ONNX_OPS``, one module
per op family), and assemble the Graph.
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

from ...errors import FormatError, UnsupportedError
from ...formats.rawbuffer import MAGIC_V2, DataType, RawBuffer
from ...ir.graph import FileFormat, Graph
from . import (activation, conv, elementwise, gemm, norm, pad, pool,  # noqa: F401
               reduce, resize, shape)
from .fold import fold_constants
from .fuse_conv_add import fuse_conv_add
from .fuse_conv_bn import fuse_conv_bn
from .fuse_gelu import fuse_gelu
from .fuse_group_norm import fuse_group_norm
from .fuse_hard_sigmoid import fuse_hard_sigmoid
from .fuse_hard_swish import fuse_hard_swish
from .fuse_layer_norm import fuse_layer_norm
from .fuse_matmul_add import fuse_matmul_add
from .fuse_mul_add_bn import fuse_mul_add_bn
from .fuse_shuffle_channel import fuse_shuffle_channel
from .fuse_swish import fuse_swish
from .legacy_broadcast import legacy_broadcast
from .model import OnnxGraph, read_onnx
from .registry import ONNX_OPS, Context, ConvertError, malformed
from .remove_identity import remove_identity

# onnx2tnn's order: removals (with ShuffleChannel), then chain fusions (Swish, HardSigmoid,
# HardSwish, GELU, BatchNorm from Mul-Add, GEMM, Conv+BN and Conv+Add, LayerNorm, GroupNorm);
# before them the opset-6 broadcast rewrite and constant folding that onnx2tnn leaves to
# onnx-simplifier
PASSES = [legacy_broadcast, fold_constants, remove_identity, fuse_shuffle_channel, fuse_swish,
          fuse_hard_sigmoid, fuse_hard_swish, fuse_gelu, fuse_mul_add_bn, fuse_matmul_add,
          fuse_conv_bn, fuse_conv_add, fuse_layer_norm, fuse_group_norm]


def convert_file(path: str | os.PathLike,
                 input_shapes: Mapping[str, Sequence[int]] | None = None,
                 half: bool = False) -> Graph:
    """Read an ONNX file and convert it (see ``tnnquant.convert.convert_onnx``)."""
    return convert_graph(read_onnx(path, input_shapes), half)


def convert_graph(onnx_graph: OnnxGraph, half: bool = False) -> Graph:
    for step in PASSES:
        try:
            onnx_graph = step(onnx_graph)
        except (ValueError, IndexError, KeyError, TypeError) as err:
            raise FormatError(f"malformed model ({step.__name__}): {err}",
                              path=onnx_graph.path) from None
    ctx = Context(onnx_graph)
    for node in onnx_graph.nodes:
        if node.domain not in ("", "ai.onnx"):
            raise ctx.fail(node, f"operator domain '{node.domain}' is not supported")
        if node.op not in ONNX_OPS:
            raise ctx.fail(node, f"unsupported ONNX op (supported: "
                                 f"{', '.join(sorted(ONNX_OPS.names()))})")
        try:
            ONNX_OPS.get(node.op)(node, ctx)
        except (ValueError, IndexError, KeyError, TypeError) as err:
            raise malformed(node, onnx_graph.opset, onnx_graph.path, err) from None
    graph = _assemble(onnx_graph, ctx)
    return half_weights(graph) if half else graph


def _assemble(onnx_graph: OnnxGraph, ctx: Context) -> Graph:
    seen: set[str] = set()
    for layer in ctx.layers:
        if layer.name in seen:   # ONNX allows repeated node names, TNN does not
            layer.name = layer.outputs[0]
            if layer.name in seen:
                raise FormatError(f"two nodes named '{layer.name}'", path=onnx_graph.path)
        seen.add(layer.name)
    produced = {b for layer in ctx.layers for b in layer.outputs}
    input_names = {spec.name for spec in onnx_graph.inputs}
    for name in onnx_graph.outputs:
        if name not in produced and name not in input_names:
            why = ("is a constant: TNN outputs are computed blobs" if name in onnx_graph.consts
                   else "is produced by no node")
            raise UnsupportedError(f"graph output '{name}' {why}", path=onnx_graph.path)
    blobs = set(input_names)
    for layer in ctx.layers:
        blobs.update(b for b in layer.inputs + layer.outputs if b)
    used_inputs = [spec for spec in onnx_graph.inputs
                   if any(spec.name in layer.inputs for layer in ctx.layers)
                   or spec.name in onnx_graph.outputs]
    return Graph(inputs=used_inputs, outputs=list(onnx_graph.outputs), layers=ctx.layers,
                 resources=ctx.resources, constants=ctx.constants, blob_names=sorted(blobs),
                 format=FileFormat(proto_magic=MAGIC_V2, header_words=("1", "1")))


def half_weights(graph: Graph) -> Graph:
    """Store every float32 weight as fp16 (onnx2tnn ``-half``), truncated as TNN converts;
    the graph then computes with the values the file holds."""
    def half(buf: RawBuffer) -> RawBuffer:
        payload = RawBuffer(buf.data, DataType.HALF, buf.dims).encode_payload()
        return RawBuffer.decode(payload, DataType.HALF, buf.dims)

    for res in graph.resources.values():
        for key, buf in vars(res).items():
            if isinstance(buf, RawBuffer) and buf.data_type == DataType.FLOAT:
                setattr(res, key, half(buf))
    for name, buf in graph.constants.items():   # float constant-map entries too (spec §2.7)
        if buf.data_type == DataType.FLOAT:
            graph.constants[name] = half(buf)
    return graph


__all__ = ["ONNX_OPS", "PASSES", "ConvertError", "convert_file", "convert_graph"]
