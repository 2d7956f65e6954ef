"""Pad -> Pad (onnx2tnn's Pad converter): 4-D NCHW only, pads on C, H and W (none on N),
constant / reflect / edge. TNN's reflect and edge pads do not pad channels."""
from __future__ import annotations

import numpy as np

from ...layers.pad import PadParams
from .model import Node
from .registry import ONNX_OPS, Context, ints

_MODES = {"constant": 0, "reflect": 1, "edge": 2}


@ONNX_OPS.register("Pad")
def pad(node: Node, ctx: Context) -> None:
    pads = ctx.input_or_attr(node, 1, "pads" if ctx.opset >= 2 else "paddings")
    if pads is None:
        raise ctx.fail(node, "no pads")
    pads = ints(pads)
    value = ctx.input_or_attr(node, 2, "value", 0.0)
    value = float(np.asarray(value).reshape(-1)[0]) if np.asarray(value).size else 0.0
    if len(node.inputs) > 3 and node.inputs[3]:
        raise ctx.fail(node, "the axes input is not supported")
    mode = node.attrs.get("mode", "constant")
    if mode not in _MODES:
        raise ctx.fail(node, f"mode '{mode}' has no TNN form")
    if len(pads) != 8:
        raise ctx.fail(node, f"{len(pads) // 2}-d pads: TNN's Pad takes 4-D NCHW inputs")
    n_begin, c_begin, top, left, n_end, c_end, bottom, right = pads
    if min(pads) < 0:
        raise ctx.fail(node, f"negative pads {pads} (cropping) have no TNN Pad form")
    if n_begin or n_end:
        raise ctx.fail(node, "padding the batch dimension has no TNN form")
    if (c_begin or c_end) and mode != "constant":
        raise ctx.fail(node, f"{mode} padding of channels has no TNN form")
    ctx.emit(node, "Pad", PadParams(0, 0, top, bottom, left, right, c_begin, c_end,
                                    _MODES[mode], value))
