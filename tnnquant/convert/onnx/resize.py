"""Resize / Upsample -> Upsample (onnx2tnn's Resize converter), for the modes TNN computes:

* nearest: TNN takes source pixel ``floor(dst * in / out)`` = ONNX ``asymmetric`` + ``floor``;
  ``half_pixel`` / ``pytorch_half_pixel`` with ``round_prefer_floor`` (the ONNX defaults) pick
  the same pixels when the scale is a whole number;
* linear: ``half_pixel`` (or ``pytorch_half_pixel`` for outputs larger than one pixel) is TNN's
  align_corners 0, ``align_corners`` is 1.

Scales on N or C, cubic mode, other coordinate modes and ROIs have no TNN form.
"""
from __future__ import annotations

import numpy as np

from ...layers.upsample import MODE_BILINEAR, MODE_NEAREST, UpsampleParams
from .model import Node
from .registry import ONNX_OPS, Context


@ONNX_OPS.register("Resize", "Upsample")
def resize(node: Node, ctx: Context) -> None:
    in_shape, out_shape = ctx.shape(node.inputs[0]), ctx.shape(node.outputs[0])
    if in_shape is None or out_shape is None or len(in_shape) != 4:
        raise ctx.fail(node, "needs a 4-D NCHW input and output of known shape")
    if tuple(out_shape[:2]) != tuple(in_shape[:2]):
        raise ctx.fail(node, f"resizes N or C ({list(in_shape)} -> {list(out_shape)}); TNN "
                             f"resizes H and W only")
    scales, sizes = _scales_and_sizes(node, ctx)
    mode = node.attrs.get("mode", "nearest")
    coord = node.attrs.get("coordinate_transformation_mode",
                           "asymmetric" if node.op == "Upsample" or ctx.opset < 11 else "half_pixel")
    whole = all(o % i == 0 for i, o in zip(in_shape[2:], out_shape[2:]))
    if mode == "nearest":
        nearest = node.attrs.get("nearest_mode", "round_prefer_floor")
        if ctx.opset < 11:
            nearest = "floor"   # Upsample and Resize-10 take floor(dst / scale)
        ok = ((coord == "asymmetric" and nearest == "floor")
              or (coord in ("half_pixel", "pytorch_half_pixel") and whole
                  and nearest in ("round_prefer_floor", "floor")))
        tnn_mode, align = MODE_NEAREST, 0
    elif mode in ("linear", "bilinear"):
        ok = coord in ("half_pixel", "align_corners") or (
            coord == "pytorch_half_pixel" and min(out_shape[2:]) > 1)
        tnn_mode, align = MODE_BILINEAR, int(coord == "align_corners")
    else:
        ok, tnn_mode, align = False, 0, 0
    if not ok:
        raise ctx.fail(node, f"mode '{mode}' with coordinate_transformation_mode '{coord}' has "
                             f"no TNN Upsample form for {list(in_shape)} -> {list(out_shape)}")
    if sizes is not None:
        params = UpsampleParams(tnn_mode, 0.0, 0.0, align, int(out_shape[2]), int(out_shape[3]))
    else:
        params = UpsampleParams(tnn_mode, float(scales[2]), float(scales[3]), align)
        expected = [int(np.floor(d * s)) for d, s in zip(in_shape[2:], scales[2:])]
        if expected != list(out_shape[2:]):
            raise ctx.fail(node, f"scales {list(scales)} do not give the output "
                                 f"{list(out_shape)}")
    layer = ctx.emit(node, "Upsample", params)
    layer.n_fields = params.packer_fields()   # the output sizes only when given, as onnx2tnn


def _scales_and_sizes(node: Node, ctx: Context):
    if node.op == "Upsample" or ctx.opset < 11:
        scales = ctx.input_or_attr(node, 1, "scales")
        return np.asarray(scales, np.float32).reshape(-1), None
    if len(node.inputs) > 1 and node.inputs[1] and ctx.const(node.inputs[1]) is not None \
            and ctx.const(node.inputs[1]).size and node.attrs.get(
                "coordinate_transformation_mode") == "tf_crop_and_resize":
        raise ctx.fail(node, "tf_crop_and_resize has no TNN form")
    if node.attrs.get("axes") is not None or node.attrs.get("antialias", 0):
        raise ctx.fail(node, "the axes and antialias attributes are not supported")
    scales = ctx.input_or_attr(node, 2, "scales")
    sizes = ctx.input_or_attr(node, 3, "sizes")
    if sizes is not None and np.asarray(sizes).size:
        return None, np.asarray(sizes).reshape(-1)
    if scales is None or np.asarray(scales).size != 4:
        raise ctx.fail(node, "needs 4 scales or 4 sizes")
    return np.asarray(scales, np.float32).reshape(-1), None
