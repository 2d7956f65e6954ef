"""Upsample (spec model-format §3.3.10).

The spec gives the output size but not the sampling; the kernel follows TNN's CPU Upsample,
which samples at positions derived from the size ratio ``in / out`` (not from the scale words):

* nearest (mode 1): source index ``min(int(dst * f32(in / out)), in - 1)``, i.e. ONNX Resize
  ``coordinate_transformation_mode=asymmetric, nearest_mode=floor``; align_corners is not used.
* bilinear (mode 2): PyTorch's ``upsample_bilinear2d`` — align_corners 1 maps the corners
  (``dst * (in - 1) / (out - 1)``, ONNX ``align_corners``), align_corners 0 samples at
  ``max((dst + 0.5) * in / out - 0.5, 0)`` (ONNX ``half_pixel``).
* cubic (mode 3) is not implemented: its exact TNN semantics are not established.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedError
from ..exec.int8_math import dequantize, quantize
from ._spatial import need_4d
from .base import Int8Context, LayerType, Params, Value, register, required


@dataclass(frozen=True)
class UpsampleParams(Params):
    mode: int = required()          # 1 nearest, 2 bilinear, 3 cubic
    scale_h: float = required(0.0)
    scale_w: float = required(0.0)
    align_corners: int = 0
    output_h: int = 0               # used only when both sizes are given (non-zero)
    output_w: int = 0

    def packer_fields(self) -> int | None:
        # TNN writes the output sizes only when the layer has them (spec model-format §3.3.10)
        return 6 if self.output_h and self.output_w else 4


MODE_NEAREST, MODE_BILINEAR, MODE_CUBIC = 1, 2, 3


def round_half_away(v: np.float32) -> int:
    """C ``round``: halves go away from zero (``np.round`` would go to even)."""
    return int(np.sign(v) * np.floor(np.abs(v) + 0.5))


def upsample_size(p: UpsampleParams, in_h: int, in_w: int) -> tuple[int, int]:
    """Output (height, width): the two size words when both are non-zero, else
    ``round(in * scale)`` with the product in f32 (an int times TNN's float scale)."""
    if p.output_h and p.output_w:
        out_h, out_w = p.output_h, p.output_w
    else:
        out_h = round_half_away(np.float32(in_h) * np.float32(p.scale_h))
        out_w = round_half_away(np.float32(in_w) * np.float32(p.scale_w))
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"output size {out_h}x{out_w} from input {in_h}x{in_w}")
    return out_h, out_w


def resolved_align_corners(p: UpsampleParams) -> bool:
    """A negative align_corners means 0 when both scales are >= 1, else 1 (spec §3.3.10)."""
    if p.align_corners < 0:
        return not (p.scale_h >= 1 and p.scale_w >= 1)
    return bool(p.align_corners)


def nearest_index(size_in: int, size_out: int) -> np.ndarray:
    ratio = np.float32(size_in) / np.float32(size_out)
    src = (np.arange(size_out, dtype=np.float32) * ratio).astype(np.int64)
    return np.minimum(src, size_in - 1)


def bilinear_weights(size_in: int, size_out: int,
                     align_corners: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index0, index1, lambda1) per output position, all in f32 like TNN's kernel."""
    dst = np.arange(size_out, dtype=np.float32)
    if align_corners:
        ratio = (np.float32(size_in - 1) / np.float32(size_out - 1) if size_out > 1
                 else np.float32(0))
        src = dst * ratio
    else:
        ratio = np.float32(size_in) / np.float32(size_out)
        src = np.maximum(ratio * (dst + np.float32(0.5)) - np.float32(0.5), np.float32(0))
    index0 = src.astype(np.int64)
    index1 = index0 + (index0 < size_in - 1)
    lambda1 = (src - index0.astype(np.float32)).astype(np.float32)
    return index0, index1, lambda1


def _lerp(x: np.ndarray, axis: int, size_out: int, align_corners: bool) -> np.ndarray:
    index0, index1, lambda1 = bilinear_weights(x.shape[axis], size_out, align_corners)
    shape = [1] * x.ndim
    shape[axis] = size_out
    lambda1 = lambda1.reshape(shape)
    lambda0 = np.float32(1) - lambda1
    y = np.take(x, index0, axis=axis) * lambda0
    y += np.take(x, index1, axis=axis) * lambda1
    return y


def _lerp_onnx(g, x: str, axis: int, size_in: int, size_out: int, align_corners: bool) -> str:
    """``_lerp`` as ONNX nodes: the same gathers, products and sum in f32."""
    index0, index1, lambda1 = bilinear_weights(size_in, size_out, align_corners)
    shape = (size_out,) + (1,) * (3 - axis)
    lambda0 = np.float32(1) - lambda1
    y0 = g.node("Mul", [g.node("Gather", [x, g.ints(index0)], axis=axis),
                        g.const(lambda0.reshape(shape))])
    y1 = g.node("Mul", [g.node("Gather", [x, g.ints(index1)], axis=axis),
                        g.const(lambda1.reshape(shape))])
    return g.node("Add", [y0, y1])


def upsample2d_onnx(g, p: UpsampleParams, x: Value, out: str) -> None:
    """``upsample2d`` as ONNX Gathers (and the bilinear weights as constants): TNN's sampling
    positions exactly, which no ONNX Resize mode reproduces for every size ratio."""
    n, c, h, w = need_4d(x.shape, "Upsample")
    out_h, out_w = upsample_size(p, h, w)
    if p.mode == MODE_NEAREST:
        y = g.node("Gather", [x.name, g.ints(nearest_index(h, out_h))], axis=2)
        g.node("Gather", [y, g.ints(nearest_index(w, out_w))], out, axis=3)
    elif p.mode == MODE_BILINEAR:
        align = resolved_align_corners(p)
        y = _lerp_onnx(g, x.name, 3, w, out_w, align)
        g.node("Identity", [_lerp_onnx(g, y, 2, h, out_h, align)], out)
    else:
        raise UnsupportedError(f"Upsample mode {p.mode} has no ONNX export")


def upsample2d(x_nchw: np.ndarray, p: UpsampleParams) -> np.ndarray:
    """TNN fp32 Upsample: NCHW float32 input -> NCHW float32 output."""
    n, c, h, w = need_4d(x_nchw, "Upsample")
    out_h, out_w = upsample_size(p, h, w)
    x_nchw = x_nchw.astype(np.float32, copy=False)
    if p.mode == MODE_NEAREST:
        y = np.take(x_nchw, nearest_index(h, out_h), axis=2)
        return np.take(y, nearest_index(w, out_w), axis=3)
    if p.mode == MODE_BILINEAR:
        align = resolved_align_corners(p)
        # columns first, then rows: h0 * (w0 * x00 + w1 * x01) + h1 * (...), as TNN sums
        return _lerp(_lerp(x_nchw, 3, out_w, align), 2, out_h, align)
    if p.mode == MODE_CUBIC:
        raise UnsupportedError("Upsample mode 3 (cubic) has no fp32 kernel in tnnquant")
    raise ValueError(f"mode {p.mode} is not supported (1 nearest, 2 bilinear, 3 cubic)")


@register
class Upsample(LayerType):
    names = ("Upsample",)
    quantized_names = ("QuantizedUpsample",)
    enum = 149
    Params = UpsampleParams

    @classmethod
    def forward(cls, p: UpsampleParams, res: None, *xs: np.ndarray) -> np.ndarray:
        return upsample2d(xs[0], p)

    @classmethod
    def to_onnx(cls, p: UpsampleParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        upsample2d_onnx(g, p, xs[0], ys[0])

    @classmethod
    def forward_int8(cls, p: UpsampleParams, res: None, q: Int8Context,
                     *xs: np.ndarray) -> np.ndarray:
        """Dequantize with the input scale, fp32 Upsample, quantize with the output scale by
        division; zero points ignored (spec int8 §12.9). The spec gives no separate x86
        formula, so both devices use this one."""
        x = dequantize(xs[0], q.inputs[0].scale)
        return quantize(upsample2d(x, p), q.outputs[0].scale, device="naive")
