"""Reformat: the fp32 <-> int8 conversion TNN inserts at load (spec model-format §3.3.31,
int8 §11.2)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exec.int8_math import channel_view, check_channels, dequantize, quantize, reciprocal
from ..formats.rawbuffer import DataType
from .base import Int8Context, LayerType, Params, register


@dataclass(frozen=True)
class ReformatParams(Params):
    src_type: int = 0   # data-type codes (spec §2.2)
    dst_type: int = 0


@register
class Reformat(LayerType):
    names = ("Reformat",)
    enum = 170
    Params = ReformatParams

    @classmethod
    def forward(cls, p: ReformatParams, res: None,
                *xs: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        # in an fp32 run every blob is float, so a reformat is the identity
        return xs[0] if len(xs) == 1 else xs

    @classmethod
    def forward_int8(cls, p: ReformatParams, res: None, q: Int8Context,
                     *xs: np.ndarray) -> tuple[np.ndarray, ...]:
        """fp32 -> int8 with the output blobs' scales or int8 -> fp32 with the input blobs'
        (spec int8 §11.2; arithmetic §12.2, x86 §13)."""
        if (p.src_type, p.dst_type) == (DataType.FLOAT, DataType.INT8):
            return tuple(quantize(x, s.scale, s.zero_points, q.device)
                         for x, s in zip(xs, q.outputs))
        if (p.src_type, p.dst_type) == (DataType.INT8, DataType.FLOAT):
            return tuple(dequantize(x, s.scale, s.zero_points, q.device)
                         for x, s in zip(xs, q.inputs))
        raise ValueError(f"no int8 reformat from data type {p.src_type} to {p.dst_type}")

    @classmethod
    def int8_onnxruntime(cls, p: ReformatParams, res: None, q: Int8Context,
                         *shapes: tuple[int, ...]):
        if q.device != "x86" or len(shapes) != 1:
            return None
        from ..exec.ort_kernels import Dequantize, Quantize
        shape = tuple(shapes[0])
        if (p.src_type, p.dst_type) == (DataType.FLOAT, DataType.INT8):
            scale, op = q.outputs[0].scale, Quantize
        elif (p.src_type, p.dst_type) == (DataType.INT8, DataType.FLOAT):
            scale, op = q.inputs[0].scale, Dequantize
        else:
            return None
        try:
            check_channels(scale, shape, "scale")
        except ValueError:   # the layer's own kernel reports it
            return None
        factor = reciprocal(scale) if op is Quantize else np.asarray(scale, np.float32)
        return op(np.asarray(channel_view(factor, len(shape)), np.float32)), shape
