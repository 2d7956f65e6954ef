"""InnerProduct (spec model-format §3.3.3; int8 §8.2, §12.4)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def inner_product(x: np.ndarray, p: InnerProductParams, res: InnerProductResource) -> np.ndarray:
    """TNN fp32 InnerProduct: ``y = x.reshape(N, K) @ W.T + b`` with K the product of the input
    dims from 1 (TNN's CPU kernels, spec model-format §3.3.3); the output shape is the input
    dims before ``axis`` followed by ``num_output``."""
    if x.ndim < 2:
        raise ValueError(f"InnerProduct needs an input of at least 2 dims, got shape {x.shape}")
    if not 1 <= p.axis < x.ndim:
        raise ValueError(f"axis {p.axis} is out of range for a {x.ndim}-D input")
    batch, k = x.shape[0], int(np.prod(x.shape[1:]))
    out_shape = x.shape[:p.axis] + (p.num_output,)
    if int(np.prod(x.shape[1:p.axis])) != 1:
        raise ValueError(f"axis {p.axis} on input {x.shape}: TNN's CPU kernel contracts every "
                         f"dim from 1, so the dims between 1 and axis must be 1")
    if res is None or res.weight.data.dtype != np.float32:
        raise ValueError("the fp32 kernel needs a float weight buffer")
    if p.num_output <= 0 or res.weight.size != p.num_output * k:
        raise ValueError(f"weight has {res.weight.size} values, expected num_output "
                         f"{p.num_output} x K {k} (input {x.shape})")
    weight = res.weight.data.reshape(p.num_output, k)
    y = x.astype(np.float32, copy=False).reshape(batch, k) @ weight.T
    if p.has_bias and res.bias.size:  # an empty bias buffer means no bias (spec §2.5)
        if res.bias.size != p.num_output:
            raise ValueError(f"bias has {res.bias.size} values, expected {p.num_output}")
        y += res.bias.data.astype(np.float32, copy=False)
    return y.reshape(out_shape)


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
    def forward(cls, p: InnerProductParams, res: InnerProductResource,
                *xs: np.ndarray) -> np.ndarray:
        return inner_product(xs[0], p, res)

    @classmethod
    def check_resource(cls, p: InnerProductParams, res: InnerProductResource) -> str | None:
        if p.num_output <= 0 or res.weight.size % p.num_output:
            return (f"weight has {res.weight.size} values, not a multiple of num_output "
                    f"{p.num_output}")
        if p.has_bias and res.bias.size != p.num_output:
            return f"bias has {res.bias.size} values, expected {p.num_output}"
        return None
