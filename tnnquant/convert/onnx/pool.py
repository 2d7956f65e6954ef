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
from .reduce import reduce_axes
from .registry import ONNX_OPS, Context

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
    if pads[:2] != pads[2:] and _one_window_over_all(node, ctx, kernel, pads):
        global_pool(node, ctx, pool_type)
        return
    pad_type, pad_h, pad_w = pad_type_and_pads(node, ctx, kernel, strides, pads)
    params = PoolingParams(pool_type, kernel[0], kernel[1], strides[0], strides[1], pad_h, pad_w,
                           -1, -1, pad_type, ceil_mode)
    ctx.emit(node, "Pooling", params)


def _one_window_over_all(node: Node, ctx: Context, kernel, pads) -> bool:
    """The output is one window and it covers the whole input (Caffe's global pooling written
    as a kernel the size of the padded map, e.g. Inception v1's 7x7 average over a 6x6 map
    with pads 0, 0, 1, 1): the padding only adds positions a max or an exclude-pad average
    ignores, so this is global pooling, which TNN's pad types could not write."""
    shape, out = ctx.shape(node.inputs[0]), ctx.shape(node.outputs[0])
    return (shape is not None and out is not None and len(shape) == 4 and out[2:] == (1, 1)
            and all(k - begin >= size for k, begin, size in zip(kernel, pads[:2], shape[2:])))


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
    axes, keepdims = reduce_axes(node, ctx)
    if ctx.rank(node) == 4 and axes == [2, 3] and keepdims:
        global_pool(node, ctx, AVERAGE)
    else:
        ctx.emit(node, "ReduceMean", ReduceParams(keepdims, tuple(axes)))
