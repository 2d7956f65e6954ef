"""Data movement: Concat, Split, Slice, Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Tile,
Expand, Gather (onnx2tnn's converters of the same names: Split -> SplitV, Slice ->
StridedSliceV2, Transpose -> Permute). Axes, sizes and shapes must be constants: TNN takes them
as parameters."""
from __future__ import annotations

import numpy as np

from ...layers.concat import ConcatParams
from ...layers.flatten import FlattenParams
from ...layers.permute import PermuteParams
from ...layers.reshape import ReshapeParams
from ...layers.splitv import SplitVParams
from ...layers.squeeze import SqueezeParams
from ...layers.strided_slice_v2 import StridedSliceV2Params
from ...layers.unsqueeze import UnsqueezeParams
from .model import Node
from .registry import ONNX_OPS, Context, buffer, ints

INT_MAX, INT_MIN = 2**31 - 1, -2**31


@ONNX_OPS.register("Concat")
def concat(node: Node, ctx: Context) -> None:
    if any(ctx.const(b) is not None for b in node.inputs):
        raise ctx.fail(node, "a constant Concat operand has no TNN form (TNN concatenates blobs)")
    axis = int(node.attrs.get("axis", 1))
    ctx.axis(node, axis)
    ctx.emit(node, "Concat", ConcatParams(axis), inputs=node.inputs)


@ONNX_OPS.register("Split")
def split(node: Node, ctx: Context) -> None:
    rank = ctx.rank(node)
    axis = ctx.axis(node, int(node.attrs.get("axis", 0)), rank)
    sizes = ctx.input_or_attr(node, 1, "split")
    if sizes is None:
        dim = ctx.shape(node.inputs[0])[axis]
        parts = int(node.attrs.get("num_outputs", len(node.outputs)))
        chunk = -(-dim // parts)   # ONNX: equal parts, the last one smaller
        sizes = [min(chunk, dim - i * chunk) for i in range(parts)]
    sizes = ints(sizes)
    if len(sizes) != len(node.outputs):
        raise ctx.fail(node, f"{len(sizes)} split sizes for {len(node.outputs)} outputs")
    ctx.emit(node, "SplitV", SplitVParams(axis, tuple(sizes)))


@ONNX_OPS.register("Slice")
def slice_(node: Node, ctx: Context) -> None:
    starts = ints(ctx.input_or_attr(node, 1, "starts", []))
    ends = ints(ctx.input_or_attr(node, 2, "ends", []))
    axes = ctx.input_or_attr(node, 3, "axes")
    axes = list(range(len(starts))) if axes is None else ints(axes)
    steps = ctx.input_or_attr(node, 4, "steps") if ctx.opset >= 10 else None
    steps = [1] * len(starts) if steps is None else ints(steps)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ctx.fail(node, "starts, ends, axes and steps differ in length")
    if any(s == 0 for s in steps):
        raise ctx.fail(node, "a step of 0")
    rank = ctx.rank(node)
    axes = [ctx.axis(node, a, rank) for a in axes]
    clamp = (lambda v: max(min(v, INT_MAX), INT_MIN))   # INT64 ends mean "to the end"
    ctx.emit(node, "StridedSliceV2",
             StridedSliceV2Params(tuple(map(clamp, starts)), tuple(map(clamp, ends)),
                                  tuple(axes), tuple(steps)))


@ONNX_OPS.register("Flatten")
def flatten(node: Node, ctx: Context) -> None:
    axis = int(node.attrs.get("axis", 1))
    rank = ctx.rank(node)
    if not -rank <= axis <= rank:
        raise ctx.fail(node, f"axis {axis} is out of range for a {rank}-d input")
    ctx.emit(node, "Flatten", FlattenParams(axis + rank if axis < 0 else axis))


@ONNX_OPS.register("Reshape")
def reshape(node: Node, ctx: Context) -> None:
    shape = ctx.input_or_attr(node, 1, "shape")
    if shape is None:
        raise ctx.fail(node, "no target shape")
    shape = ints(shape)
    if node.attrs.get("allowzero", 0) and 0 in shape:
        raise ctx.fail(node, "allowzero=1 with a 0 in the shape: TNN reads 0 as 'copy the "
                             "input dim'")
    out = ctx.shape(node.outputs[0])
    if out is not None and len(out) != len(shape):
        raise ctx.fail(node, f"shape {shape} does not match the inferred output {list(out)}")
    # onnx2tnn writes 0 ("copy the input dim") where the target equals the input's dim
    in_shape = ctx.shape(node.inputs[0]) or ()
    shape = [0 if i < len(in_shape) and d == in_shape[i] and d > 0 else d
             for i, d in enumerate(shape)]
    ctx.emit(node, "Reshape", ReshapeParams(0, len(shape), tuple(shape), 0))


@ONNX_OPS.register("Transpose")
def transpose(node: Node, ctx: Context) -> None:
    rank = ctx.rank(node)
    perm = ints(node.attrs.get("perm", list(range(rank))[::-1]))
    if sorted(perm) != list(range(rank)):
        raise ctx.fail(node, f"perm {perm} is not a permutation of {rank} axes")
    ctx.emit(node, "Permute", PermuteParams(tuple(perm)))


@ONNX_OPS.register("Squeeze")
def squeeze(node: Node, ctx: Context) -> None:
    rank = ctx.rank(node)
    axes = ctx.input_or_attr(node, 1, "axes")
    if axes is None:
        axes = [i for i, d in enumerate(ctx.shape(node.inputs[0])) if d == 1]
    axes = [ctx.axis(node, a, rank) for a in ints(axes)]
    ctx.emit(node, "Squeeze", SqueezeParams(tuple(axes)))


@ONNX_OPS.register("Unsqueeze")
def unsqueeze(node: Node, ctx: Context) -> None:
    axes = ctx.input_or_attr(node, 1, "axes")
    if axes is None:
        raise ctx.fail(node, "no axes")
    axes = ints(axes)
    rank = ctx.rank(node) + len(axes)
    axes = sorted(ctx.axis(node, a, rank) for a in axes)
    ctx.emit(node, "Unsqueeze", UnsqueezeParams(tuple(axes)))




@ONNX_OPS.register("Tile")
def tile(node: Node, ctx: Context) -> None:
    from ...layers.tile import TileParams
    reps = ints(ctx.weight(node, 1, "repeats"))
    if len(reps) != ctx.rank(node) or any(r < 0 for r in reps):
        raise ctx.fail(node, f"repeats {reps} must give one non-negative count per input dim")
    ctx.emit(node, "Tile", TileParams(tuple(reps)))


@ONNX_OPS.register("Expand")
def expand(node: Node, ctx: Context) -> None:
    from ...layers.expand import ExpandParams
    ctx.emit(node, "Expand", ExpandParams(tuple(ints(ctx.weight(node, 1, "shape")))))


@ONNX_OPS.register("Gather")
def gather(node: Node, ctx: Context) -> None:
    """One operand constant (onnx2tnn's Gather converter): the embedding table of an
    Embedding (data in the resource) or the indices of ``x[:, i]`` (indices in the resource,
    negative ones made positive, a 0-d index keeping its empty dims so the axis goes away)."""
    from ...formats.rawbuffer import DataType, RawBuffer
    from ...layers.gather import GatherParams, GatherResource
    data, indices = ctx.const(node.inputs[0]), ctx.const(node.inputs[1])
    if (data is None) == (indices is None):
        raise ctx.fail(node, "exactly one of data and indices must be a constant")
    if data is not None:
        axis = ctx.axis(node, int(node.attrs.get("axis", 0)), data.ndim)
        ctx.emit(node, "Gather", GatherParams(axis, 1, 0), inputs=node.inputs[1:2],
                 resource=GatherResource(1, buffer(data), 0, None))
        return
    axis = ctx.axis(node, int(node.attrs.get("axis", 0)))
    dim = ctx.shape(node.inputs[0])[axis]
    if indices.dtype.kind not in "iu" or indices.size and (indices.min() < -dim
                                                            or indices.max() >= dim):
        raise ctx.fail(node, f"indices must be integers within the {dim} entries of axis {axis}")
    stored = RawBuffer.of(np.where(indices < 0, indices + dim, indices).astype(np.int32),
                          DataType.INT32, indices.shape)
    ctx.emit(node, "Gather", GatherParams(axis, 0, 1),
             resource=GatherResource(0, None, 1, stored))


@ONNX_OPS.register("ShuffleChannel")
def shuffle_channel(node: Node, ctx: Context) -> None:
    """``fuse_shuffle_channel``'s node."""
    from ...layers.shuffle_channel import ShuffleChannelParams
    ctx.emit(node, "ShuffleChannel", ShuffleChannelParams(int(node.attrs["group"])))
