"""InnerProduct (spec model-format §3.3.3; int8 §8.2, §12.4)."""
from __future__ import annotations

from dataclasses import dataclass

from ..formats.binio import BinReader, BinWriter
from ..formats.rawbuffer import DataType, RawBuffer
from ._resources import read_int8_tail, write_int8_tail
from .base import LayerType, Params, register, required


@dataclass(frozen=True)
class InnerProductParams(Params):
    num_output: int = required()
    has_bias: int = required()
    transpose: int = required()
    axis: int = required()


@dataclass
class InnerProductResource:
    name: str
    weight: RawBuffer           # [num_output][K], K contiguous; never trust its dims (spec §2.5)
    bias: RawBuffer             # always present, possibly empty
    zero_point: RawBuffer | None = None
    scale: RawBuffer | None = None

    @classmethod
    def read(cls, r: BinReader) -> "InnerProductResource":
        name = r.string("layer name")
        weight = r.rawbuffer("weight")
        bias = r.rawbuffer("bias")
        zp = scale = None
        if weight.data_type == DataType.INT8:
            zp, scale = read_int8_tail(r, "weight")
        return cls(name, weight, bias, zp, scale)

    def write(self, w: BinWriter) -> None:
        w.string(self.name)
        w.rawbuffer(self.weight)
        w.rawbuffer(self.bias)
        if self.weight.data_type == DataType.INT8:
            write_int8_tail(w, self.zero_point, self.scale)


@register
class InnerProduct(LayerType):
    names = ("InnerProduct", "InnerProduct_nhwc")
    quantized_names = ("QuantizedInnerProduct",)
    dynamic_names = ("DynamicRangeQuantizedInnerProduct",)
    enum = 19
    Params = InnerProductParams
    Resource = InnerProductResource
    collects_stats = True
    quantizable = True

    @classmethod
    def check_resource(cls, p: InnerProductParams, res: InnerProductResource) -> str | None:
        if p.num_output <= 0 or res.weight.size % p.num_output:
            return f"weight has {res.weight.size} values, not a multiple of num_output {p.num_output}"
        if p.has_bias and res.bias.size != p.num_output:
            return f"bias has {res.bias.size} values, expected {p.num_output}"
        return None
