"""MaxPool / AveragePool / GlobalAveragePool / GlobalMaxPool -> Pooling (onnx2tnn's Pool
converter); ReduceMean over H and W with keepdims -> global average Pooling as onnx2tnn's
FuseGlobalAveragePool does.

TNN's average divides by the in-bounds window size (ONNX ``count_include_pad=0``); ONNX's
``count_include_pad=1`` with padding becomes a Pad layer, then a Pooling without padding.
"""
from __future__ import annotations

from ...layers.pooling import PoolingParams
from .conv import pad_type_and_pads, spatial_attrs
from .model import Node
from .registry import ONNX_OPS, Context, ints

MAX, AVERAGE = 0, 1


@ONNX_OPS.register("MaxPool", "AveragePool")
def pool(node: Node, ctx: Context) -> None:
    if len(node.outputs) > 1 and node.outputs[1]:
        raise ctx.fail(node, "the Indices output of MaxPool has no TNN form")
    kernel = tuple(node.attrs.get("kernel_shape", ()))
    strides, dilations, pads = spatial_attrs(node, ctx, kernel)
    if dilations != [1, 1]:
        raise ctx.fail(node, f"dilations {dilations}: TNN's Pooling is not dilated")
    if node.attrs.get("storage_order", 0):
        raise ctx.fail(node, "storage_order 1 is not supported")
    pool_type = AVERAGE if node.op == "AveragePool" else MAX
    ceil_mode = int(node.attrs.get("ceil_mode", 0))
    if (pool_type == AVERAGE and node.attrs.get("count_include_pad", 0) and any(pads)
            and node.attrs.get("auto_pad", "NOTSET") == "NOTSET"):
        _padded_average(node, ctx, kernel, strides, pads, ceil_mode)
        return
    pad_type, pad_h, pad_w = pad_type_and_pads(node, ctx, kernel, strides, pads)
    params = PoolingParams(pool_type, kernel[0], kernel[1], strides[0], strides[1], pad_h, pad_w,
                           -1, -1, pad_type, ceil_mode)
    ctx.emit(node, "Pooling", params)


def _padded_average(node: Node, ctx: Context, kernel, strides, pads, ceil_mode: int) -> None:
    """count_include_pad=1: TNN averages over the in-bounds part of a window only, so the zeros
    are padded by a Pad layer first and the Pooling has no padding of its own."""
    from ...layers.pad import PadParams
    if ceil_mode:
        raise ctx.fail(node, "count_include_pad=1 with ceil_mode=1 and pads has no TNN form")
    top, left, bottom, right = pads
    padded = f"{node.outputs[0]}/padded"
    ctx.emit(node, "Pad", PadParams(0, 0, top, bottom, left, right, 0, 0, 0, 0.0),
             outputs=[padded], name=f"{node.name}/pad")
    ctx.emit(node, "Pooling", PoolingParams(AVERAGE, kernel[0], kernel[1], strides[0],
                                            strides[1], 0, 0, -1, -1, -1, 0), inputs=[padded])


def global_pool(node: Node, ctx: Context, pool_type: int) -> None:
    if ctx.shape(node.inputs[0]) is not None and ctx.rank(node) != 4:
        raise ctx.fail(node, f"only 4-D (NCHW) inputs are supported, got rank {ctx.rank(node)}")
    ctx.emit(node, "Pooling", PoolingParams(pool_type, 0, 0, 1, 1, 0, 0, -1, -1, -1, 0, 0,
                                            -1, -1))


@ONNX_OPS.register("GlobalAveragePool")
def global_average_pool(node: Node, ctx: Context) -> None:
    global_pool(node, ctx, AVERAGE)


@ONNX_OPS.register("GlobalMaxPool")
def global_max_pool(node: Node, ctx: Context) -> None:
    global_pool(node, ctx, MAX)


@ONNX_OPS.register("ReduceMean")
def reduce_mean(node: Node, ctx: Context) -> None:
    from ...layers._reduce import ReduceParams
    rank = ctx.rank(node)
    axes = ctx.input_or_attr(node, 1, "axes")
    keepdims = int(node.attrs.get("keepdims", 1))
    if axes is None:
        if node.attrs.get("noop_with_empty_axes", 0):
            raise ctx.fail(node, "noop_with_empty_axes=1 without axes is an identity; remove it")
        axes = list(range(rank))
    axes = sorted(ctx.axis(node, a, rank) for a in ints(axes))
    if rank == 4 and axes == [2, 3] and keepdims:
        global_pool(node, ctx, AVERAGE)
    else:
        ctx.emit(node, "ReduceMean", ReduceParams(keepdims, tuple(axes)))
