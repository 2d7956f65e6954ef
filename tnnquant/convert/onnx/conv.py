"""Conv -> Convolution, ConvTranspose -> Deconvolution (onnx2tnn's Conv converter).

Pads: symmetric explicit pads are TNN's pad type -1; ``auto_pad`` SAME_UPPER / VALID are pad
types 0 / 1; asymmetric pads are pad type 0 where they equal what TNN's SAME computes for the
input size (onnx2tnn writes pad type 0 for any asymmetric pads, right or not), else a Pad layer
before an unpadded Convolution. A ConvTranspose whose pads and output_padding TNN's pad types
cannot express (PyTorch's ``padding=1, output_padding=1``) becomes an unpadded Deconvolution
and a StridedSliceV2 that cuts the output out of its canvas.
"""
from __future__ import annotations

import numpy as np

from ...layers._resources import ConvResource
from ...layers._spatial import PAD_EXPLICIT, PAD_SAME, PAD_VALID, same_valid_axis
from ...layers.convolution import ConvParams
from .model import Node
from .registry import ONNX_OPS, Context, buffer

PAD_SAME_SWAPPED = 3   # Deconvolution only: output = input * stride (spec model-format §3.3.1)


def spatial_attrs(node: Node, ctx: Context, kernel: tuple[int, ...]) -> tuple[list[int], ...]:
    """(strides, dilations, pads [t, l, b, r]) of a 2-D Conv/ConvTranspose/pool node."""
    if len(kernel) != 2:
        raise ctx.fail(node, f"only 2-D kernels are supported (kernel_shape {list(kernel)})")
    strides = list(node.attrs.get("strides", [1, 1]))
    dilations = list(node.attrs.get("dilations", [1, 1]))
    pads = list(node.attrs.get("pads", [0, 0, 0, 0]))
    if len(strides) != 2 or len(dilations) != 2 or len(pads) != 4:
        raise ctx.fail(node, "strides, dilations and pads must have 2, 2 and 4 values")
    if min(strides) < 1 or min(dilations) < 1 or min(pads) < 0:
        raise ctx.fail(node, "strides and dilations must be positive, pads non-negative")
    return strides, dilations, pads


def pad_type_and_pads(node: Node, ctx: Context, kernel_extent: tuple[int, int],
                      strides: list[int], pads: list[int],
                      explicit_ok: bool = False) -> tuple[int, int, int] | None:
    """(TNN pad type, pad_h, pad_w) for a forward window op (Conv, MaxPool, AveragePool);
    None for asymmetric pads TNN's SAME does not reproduce when ``explicit_ok`` (the caller
    pads with a Pad layer), else an error."""
    auto_pad = node.attrs.get("auto_pad", "NOTSET")
    if auto_pad == "SAME_UPPER":
        return PAD_SAME, 0, 0
    if auto_pad == "VALID":
        return PAD_VALID, 0, 0
    if auto_pad == "SAME_LOWER":
        raise ctx.fail(node, "auto_pad SAME_LOWER puts the odd pad first; TNN's SAME puts it "
                             "last and has no other mode")
    if auto_pad != "NOTSET":
        raise ctx.fail(node, f"unknown auto_pad '{auto_pad}'")
    top, left, bottom, right = pads
    if top == bottom and left == right:
        return PAD_EXPLICIT, top, left
    shape = ctx.shape(node.inputs[0])
    if shape is not None and len(shape) == 4:
        same = [same_valid_axis(size, extent, stride, PAD_SAME)
                for size, extent, stride in zip(shape[2:], kernel_extent, strides)]
        if all(begin == b and total - begin == e
               for (_, begin, total), b, e in zip(same, (top, left), (bottom, right))):
            return PAD_SAME, top, left
    if explicit_ok:
        return None
    raise ctx.fail(node, f"asymmetric pads {pads} (top, left, bottom, right) that TNN's SAME "
                         f"padding does not reproduce for this input size")


@ONNX_OPS.register("Conv")
def conv(node: Node, ctx: Context) -> None:
    weight = ctx.weight(node, 1, "weight")
    if weight.ndim != 4:
        raise ctx.fail(node, f"only 2-D convolutions are supported (weight of rank {weight.ndim})")
    kernel = tuple(node.attrs.get("kernel_shape", weight.shape[2:]))
    strides, dilations, pads = spatial_attrs(node, ctx, kernel)
    if dilations[0] != dilations[1]:
        # TNN's reference kernel steps both axes by dilation_h (spec int8 §12.3)
        raise ctx.fail(node, f"dilations {dilations} differ; TNN's kernels use the first for "
                             f"both axes")
    group = int(node.attrs.get("group", 1))
    out_channels, in_per_group = weight.shape[:2]
    if group < 1 or out_channels % group:
        raise ctx.fail(node, f"group {group} does not divide the {out_channels} output channels")
    extent = tuple(d * (k - 1) + 1 for d, k in zip(dilations, kernel))
    pads_as_tnn = pad_type_and_pads(node, ctx, extent, strides, pads, explicit_ok=True)
    source = node.inputs[0]
    if pads_as_tnn is None:   # asymmetric zero padding: a Pad layer, then an unpadded conv
        from ...layers.pad import PadParams
        top, left, bottom, right = pads
        source = f"{node.outputs[0]}/padded"
        ctx.emit(node, "Pad", PadParams(0, 0, top, bottom, left, right, 0, 0, 0, 0.0),
                 outputs=[source], name=f"{node.name}/pad")
        pads_as_tnn = (PAD_EXPLICIT, 0, 0)
    pad_type, pad_h, pad_w = pads_as_tnn
    bias = _bias(node, ctx, out_channels)
    params = ConvParams(group, in_per_group, out_channels, kernel[0], kernel[1], strides[0],
                        strides[1], pad_h, pad_w, int(bias is not None), pad_type,
                        dilations[0], dilations[1])
    ctx.emit(node, "Convolution", params, inputs=[source],
             resource=ConvResource(node.name, int(bias is not None), buffer(weight),
                                   None if bias is None else buffer(bias)))


@ONNX_OPS.register("ConvTranspose")
def conv_transpose(node: Node, ctx: Context) -> None:
    weight = ctx.weight(node, 1, "weight")
    if weight.ndim != 4:
        raise ctx.fail(node, f"only 2-D deconvolutions are supported (weight of rank "
                             f"{weight.ndim})")
    kernel = tuple(node.attrs.get("kernel_shape", weight.shape[2:]))
    strides, dilations, pads = spatial_attrs(node, ctx, kernel)
    if dilations != [1, 1]:
        raise ctx.fail(node, f"dilations {dilations}: TNN's Deconvolution kernels are not "
                             f"dilated on every device")
    group = int(node.attrs.get("group", 1))
    in_channels = weight.shape[0]
    out_channels = weight.shape[1] * group
    if group < 1 or in_channels % group:
        raise ctx.fail(node, f"group {group} does not divide the {in_channels} input channels")
    if "output_shape" in node.attrs:
        raise ctx.fail(node, "the output_shape attribute is not supported; give pads")
    if node.attrs.get("auto_pad", "NOTSET") != "NOTSET":
        raise ctx.fail(node, f"auto_pad {node.attrs['auto_pad']} is not supported for "
                             f"ConvTranspose; give explicit pads")
    output_padding = list(node.attrs.get("output_padding", [0, 0]))
    top, left, bottom, right = pads
    crop = None
    if not any(output_padding) and top == bottom and left == right:
        pad_type, pad_h, pad_w = PAD_EXPLICIT, top, left
    elif _same_swapped(node, ctx, kernel, strides, pads, output_padding):
        pad_type, pad_h, pad_w = PAD_SAME_SWAPPED, 0, 0
    else:   # the whole canvas, then a slice: output_padding just crops less at the end
        pad_type, pad_h, pad_w = PAD_EXPLICIT, 0, 0
        crop = _crop(node, ctx, kernel, strides, pads, output_padding)
    bias = _bias(node, ctx, out_channels)
    params = ConvParams(group, in_channels // group, out_channels, kernel[0], kernel[1],
                        strides[0], strides[1], pad_h, pad_w, int(bias is not None), pad_type,
                        1, 1)
    canvas = f"{node.outputs[0]}/canvas"
    ctx.emit(node, "Deconvolution", params, outputs=None if crop is None else [canvas],
             resource=ConvResource(node.name, int(bias is not None), buffer(weight),
                                   None if bias is None else buffer(bias)))
    if crop is not None:
        from ...layers.strided_slice_v2 import StridedSliceV2Params
        begins, ends = crop
        ctx.emit(node, "StridedSliceV2", StridedSliceV2Params(begins, ends, (2, 3), (1, 1)),
                 inputs=[canvas], name=f"{node.name}/crop")


def _same_swapped(node: Node, ctx: Context, kernel, strides, pads, output_padding) -> bool:
    """onnx2tnn writes pad type 3 for any output_padding; that is right only when the ONNX
    output is input * stride and the pads split as TNN's type 3 splits them."""
    shape = ctx.shape(node.inputs[0])
    ok = shape is not None and len(shape) == 4
    for axis in range(2) if ok else ():
        size, k, s = shape[2 + axis], kernel[axis], strides[axis]
        begin, end = pads[axis], pads[axis + 2]
        out = s * (size - 1) + output_padding[axis] + k - begin - end
        total = max(k - s, 0)   # TNN's canvas overhang; its type 3 crops total - total // 2 first
        ok = ok and out == size * s and begin == total - total // 2
    return ok


def _crop(node: Node, ctx: Context, kernel, strides, pads,
          output_padding) -> tuple[tuple[int, int], tuple[int, int]]:
    """(begins, ends) on H and W that cut the ONNX output out of the uncropped canvas
    ``(in - 1) * stride + kernel``: ``pads`` begin, ``pads`` end minus ``output_padding``."""
    shape = ctx.shape(node.inputs[0])
    if shape is None or len(shape) != 4:
        raise ctx.fail(node, "the input shape is unknown")
    begins, ends = [], []
    for axis in range(2):
        canvas = (shape[2 + axis] - 1) * strides[axis] + kernel[axis]
        end = pads[axis + 2] - output_padding[axis]
        if end < 0 or pads[axis] + end >= canvas:
            raise ctx.fail(node, f"pads {pads} with output_padding {output_padding}: the output "
                                 f"reaches past the deconvolution's canvas")
        begins.append(pads[axis])
        ends.append(canvas - end)
    return tuple(begins), tuple(ends)


def _bias(node: Node, ctx: Context, channels: int) -> np.ndarray | None:
    """The bias with its ONNX dims, which the stored buffer keeps (a ``[1, C, 1, 1]`` bias
    comes from ``fuse_conv_add``, as onnx2tnn writes it)."""
    if len(node.inputs) < 3 or not node.inputs[2]:
        return None
    bias = ctx.weight(node, 2, "bias")
    if bias.size != channels:
        raise ctx.fail(node, f"bias has {bias.size} values for {channels} output channels")
    return bias
