"""ReduceSum / ReduceMax -> TNN's Reduce layers of the same names (onnx2tnn's Reduce
converter); ReduceMean lives in ``pool`` because over H and W it becomes a global Pooling.
Axes come from the attribute, or from the constant input (ReduceSum from opset 13, the others
from 18)."""
from __future__ import annotations

from .model import Node
from .registry import ONNX_OPS, Context, ints

_TYPES = {"ReduceSum": "ReduceSum", "ReduceMax": "ReduceMax"}


def reduce_axes(node: Node, ctx: Context) -> tuple[list[int], int]:
    """(sorted non-negative axes, keepdims) of a Reduce* node; no axes means all of them."""
    rank = ctx.rank(node)
    axes = ctx.input_or_attr(node, 1, "axes")
    if axes is None or not ints(axes):
        if node.attrs.get("noop_with_empty_axes", 0):
            raise ctx.fail(node, "noop_with_empty_axes=1 without axes is an identity; remove it")
        axes = list(range(rank))
    return sorted(ctx.axis(node, a, rank) for a in ints(axes)), int(node.attrs.get("keepdims", 1))


@ONNX_OPS.register(*_TYPES)
def reduce(node: Node, ctx: Context) -> None:
    from ...layers._reduce import ReduceParams
    axes, keepdims = reduce_axes(node, ctx)
    ctx.emit(node, _TYPES[node.op], ReduceParams(keepdims, tuple(axes)))
