"""Element-wise activations (onnx2tnn's Relu, LeakyRelu, PRelu, Clip, Sigmoid, HardSigmoid,
HardSwish, Tanh, Abs, Elu converters), the Swish that ``fuse_swish`` makes and the GELU of
``fuse_gelu`` (and of ONNX's Gelu, opset 20)."""
from __future__ import annotations

import numpy as np

from ...layers.base import NoParams
from ...layers.clip import ClipParams
from ...layers.hard_sigmoid import HardSigmoidParams
from ...layers.hard_swish import HardSwishParams
from ...layers.prelu import PReLUParams, PReLUResource
from .model import Node
from .registry import ONNX_OPS, Context, buffer

_SIMPLE = {"Relu": "ReLU", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Swish": "Swish", "Abs": "Abs"}
FLT_MAX = float(np.finfo(np.float32).max)


@ONNX_OPS.register(*_SIMPLE)
def simple(node: Node, ctx: Context) -> None:
    ctx.emit(node, _SIMPLE[node.op], NoParams())


@ONNX_OPS.register("Clip")
def clip(node: Node, ctx: Context) -> None:
    low = ctx.input_or_attr(node, 1, "min", -FLT_MAX)
    high = ctx.input_or_attr(node, 2, "max", FLT_MAX)
    low, high = float(np.asarray(low).reshape(-1)[0]), float(np.asarray(high).reshape(-1)[0])
    if low == 0 and high == 6:
        ctx.emit(node, "ReLU6", NoParams())
    elif low == 0 and high == FLT_MAX:
        ctx.emit(node, "ReLU", NoParams())
    else:
        ctx.emit(node, "Clip", ClipParams(low, high))


@ONNX_OPS.register("LeakyRelu")
def leaky_relu(node: Node, ctx: Context) -> None:
    # onnx2tnn writes a channel-shared PReLU (TNN's LeakyRelu layer has no kernels)
    slope = np.array([node.attrs.get("alpha", 0.01)], np.float32)
    ctx.emit(node, "PReLU", PReLUParams(1, 0), resource=PReLUResource(node.name, buffer(slope)))


@ONNX_OPS.register("PRelu")
def prelu(node: Node, ctx: Context) -> None:
    slope = ctx.weight(node, 1, "slope").astype(np.float32)
    shape = ctx.shape(node.inputs[0])
    channels = shape[1] if shape is not None and len(shape) > 1 else None
    # the slope broadcasts against NC...: per channel means one non-1 dim, at axis 1; before
    # opset 7 a 1-D slope of C values is per channel (it was not broadcast numpy-style)
    aligned = (1,) * (len(shape) - slope.ndim) + slope.shape if shape else slope.shape
    if ctx.opset < 7 and slope.ndim == 1 and channels is not None and slope.size == channels:
        aligned = (1, channels) + (1,) * (len(shape) - 2)
    if slope.size == 1:
        shared = 1
    elif (channels is not None and slope.size == channels and len(aligned) == len(shape)
          and aligned[1] == channels):
        shared = 0
    else:
        raise ctx.fail(node, f"slope of shape {list(slope.shape)}: TNN's PReLU takes one slope "
                             f"or one per channel")
    ctx.emit(node, "PReLU", PReLUParams(shared, 0),
             resource=PReLUResource(node.name, buffer(slope)))


@ONNX_OPS.register("HardSigmoid")
def hard_sigmoid(node: Node, ctx: Context) -> None:
    ctx.emit(node, "HardSigmoid", HardSigmoidParams(node.attrs.get("alpha", 0.2),
                                                    node.attrs.get("beta", 0.5)))


@ONNX_OPS.register("HardSwish")
def hard_swish(node: Node, ctx: Context) -> None:
    # two inputs only from fuse_hard_swish: x0 * hardsigmoid(x1)
    ctx.emit(node, "HardSwish", HardSwishParams(node.attrs.get("alpha", 1 / 6),
                                                node.attrs.get("beta", 0.5)),
             inputs=node.inputs)


@ONNX_OPS.register("Softmax")
def softmax(node: Node, ctx: Context) -> None:
    from ...layers.reshape import ReshapeParams
    from ...layers.softmax import SoftmaxParams
    rank = ctx.rank(node)
    raw_axis = int(node.attrs.get("axis", -1 if ctx.opset >= 13 else 1))
    axis = ctx.axis(node, raw_axis, rank)
    shape = ctx.shape(node.inputs[0])
    if ctx.opset >= 13 or all(d == 1 for d in shape[axis + 1:]):
        ctx.emit(node, "SoftmaxCaffe", SoftmaxParams(raw_axis))   # the axis as onnx2tnn writes it
        return
    # before opset 13 Softmax normalizes over the dims from axis on, flattened: TNN normalizes
    # along one axis, so flatten them into one, normalize, and restore the shape
    flat, normalized = f"{node.outputs[0]}/flat", f"{node.outputs[0]}/softmax"
    ctx.emit(node, "Reshape", ReshapeParams(0, axis + 1, (0,) * axis + (-1,), 0),
             outputs=[flat], name=f"{node.name}/flatten")
    ctx.emit(node, "SoftmaxCaffe", SoftmaxParams(axis), inputs=[flat], outputs=[normalized])
    ctx.emit(node, "Reshape", ReshapeParams(0, rank, tuple(shape), 0), inputs=[normalized],
             name=f"{node.name}/restore")


@ONNX_OPS.register("Elu")
def elu(node: Node, ctx: Context) -> None:
    from ...layers.elu import EluParams
    ctx.emit(node, "Elu", EluParams(node.attrs.get("alpha", 1.0)))


@ONNX_OPS.register("GELU", "Gelu")
def gelu(node: Node, ctx: Context) -> None:
    from ...layers.gelu import GELUParams
    if node.attrs.get("approximate", "none") != "none":
        # TNN's GELU computes the erf form on CPU and the tanh form on ARM: only the exact
        # GELU means one thing on every device
        raise ctx.fail(node, f"approximate='{node.attrs['approximate']}': TNN's GELU computes "
                             f"the exact (erf) form")
    ctx.emit(node, "GELU", GELUParams(0))
