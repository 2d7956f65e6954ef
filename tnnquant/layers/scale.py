"""Scale: per-channel multiply and optional bias (spec model-format §3.3.15)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..formats.binio import BinReader, BinWriter
from ..formats.rawbuffer import RawBuffer
from ._util import channel_vector
from .base import LayerType, Params, Value, register, required


@dataclass(frozen=True)
class ScaleParams(Params):
    axis: int = required()
    num_axes: int = required()
    bias_term: int = required()


@dataclass
class ScaleResource:
    name: str
    bias_term: int
    scale: RawBuffer
    bias: RawBuffer | None = None

    @classmethod
    def read(cls, r: BinReader) -> "ScaleResource":
        name = r.string("layer name")
        bias_term = r.i32("bias_term flag")
        scale = r.rawbuffer("scale")
        return cls(name, bias_term, scale, r.rawbuffer("bias") if bias_term else None)

    def write(self, w: BinWriter) -> None:
        w.string(self.name)
        w.i32(self.bias_term)
        w.rawbuffer(self.scale)
        if self.bias_term:
            w.rawbuffer(self.bias)


@register
class Scale(LayerType):
    names = ("Scale",)
    enum = 16
    Params = ScaleParams
    Resource = ScaleResource

    @classmethod
    def forward(cls, p: ScaleParams, res: ScaleResource, x: np.ndarray) -> np.ndarray:
        scale, bias = _scale_bias(p, res, x)
        y = x * scale
        return y if bias is None else y + bias

    @classmethod
    def to_onnx(cls, p: ScaleParams, res: ScaleResource, g, xs: list[Value],
                ys: list[str]) -> None:
        scale, bias = _scale_bias(p, res, np.broadcast_to(np.float32(0), xs[0].shape))
        if bias is None:
            g.node("Mul", [xs[0].name, g.const(scale)], ys[0])
        else:
            g.node("Add", [g.node("Mul", [xs[0].name, g.const(scale)]), g.const(bias)], ys[0])


def _scale_bias(p: ScaleParams, res: ScaleResource,
                x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-channel scale and optional bias shaped for ``x``."""
    # only per-channel scaling (axis 1, Caffe's default) is implemented
    if p.axis != 1:
        raise ValueError(f"axis {p.axis} is not supported (only 1, the channels)")
    scale = channel_vector(res.scale.data, x, "scale")
    if res.bias is not None and res.bias.size:
        return scale, channel_vector(res.bias.data, x, "bias")
    return scale, None
