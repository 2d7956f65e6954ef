"""MaxPool / AveragePool / GlobalAveragePool / GlobalMaxPool -> Pooling (onnx2tnn's Pool
converter); ReduceMean over H and W with keepdims -> global average Pooling as onnx2tnn's
FuseGlobalAveragePool does.

TNN's average divides by the in-bounds window size (ONNX ``count_include_pad=0``); ONNX's
``count_include_pad=1`` with padding has no TNN form.
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
    pad_type, pad_h, pad_w = pad_type_and_pads(node, ctx, kernel, strides, pads)
    if pool_type == AVERAGE and node.attrs.get("count_include_pad", 0) and (pad_h or pad_w):
        raise ctx.fail(node, "count_include_pad=1 with padding: TNN averages over the "
                             "in-bounds part of each window only")
    params = PoolingParams(pool_type, kernel[0], kernel[1], strides[0], strides[1], pad_h, pad_w,
                           -1, -1, pad_type, int(node.attrs.get("ceil_mode", 0)))
    ctx.emit(node, "Pooling", params)


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
