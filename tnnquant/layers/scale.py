"""Scale: per-channel multiply and optional bias (spec model-format §3.3.15)."""
from __future__ import annotations

from dataclasses import dataclass

from ..formats.binio import BinReader, BinWriter
from ..formats.rawbuffer import RawBuffer
from .base import LayerType, Params, register, required


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
