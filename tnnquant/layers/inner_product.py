"""InnerProduct (spec model-format §3.3.3; int8 §8.2, §12.4)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..exec.int8_math import channel_view, check_channels, int_matmul, ratio, requantize_conv
from ..exec.naive_math import seq_matmul
from ..formats.binio import BinReader, BinWriter
from ..formats.rawbuffer import DataType, RawBuffer
from ._resources import read_int8_tail, write_int8_tail
from .base import Int8Context, LayerType, Params, Value, register, required


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

    @property
    def weights(self) -> RawBuffer:
        """The weight matrix, under the name the quantizer passes use for conv and inner product."""
        return self.weight

    def with_weights(self, weights: RawBuffer, **changes) -> "InnerProductResource":
        """A copy with ``weights`` as its weight matrix (and any other ``changes``)."""
        return dataclasses.replace(self, weight=weights, **changes)

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


def _contraction(x: np.ndarray | tuple[int, ...], p: InnerProductParams
                 ) -> tuple[int, int, tuple[int, ...]]:
    """(batch, K, output shape) for an input array (or shape): K is the product of the input
    dims from 1 (TNN's CPU kernels, spec model-format §3.3.3); the output shape is the input
    dims before ``axis`` followed by ``num_output``."""
    shape = tuple(x) if isinstance(x, tuple) else x.shape
    if len(shape) < 2:
        raise ValueError(f"InnerProduct needs an input of at least 2 dims, got shape {shape}")
    if not 1 <= p.axis < len(shape):
        raise ValueError(f"axis {p.axis} is out of range for a {len(shape)}-D input")
    if int(np.prod(shape[1:p.axis])) != 1:
        raise ValueError(f"axis {p.axis} on input {shape}: TNN's CPU kernel contracts every "
                         f"dim from 1, so the dims between 1 and axis must be 1")
    return shape[0], int(np.prod(shape[1:])), shape[:p.axis] + (p.num_output,)


def _weight(res: InnerProductResource | None, p: InnerProductParams, k: int,
            dtype: type) -> np.ndarray:
    kernel = "int8" if dtype == np.int8 else "fp32"
    if res is None or res.weight.data.dtype != dtype:
        raise ValueError(f"the {kernel} kernel needs {'an INT8' if dtype == np.int8 else 'a float'}"
                         f" weight buffer")
    if p.num_output <= 0 or res.weight.size != p.num_output * k:
        raise ValueError(f"weight has {res.weight.size} values, expected num_output "
                         f"{p.num_output} x K {k}")
    return res.weight.data.reshape(p.num_output, k)


def _bias(p: InnerProductParams, res: InnerProductResource) -> np.ndarray | None:
    if not (p.has_bias and res.bias.size):   # an empty bias buffer means no bias (spec §2.5)
        return None
    if res.bias.size != p.num_output:
        raise ValueError(f"bias has {res.bias.size} values, expected {p.num_output}")
    return res.bias.data.astype(np.float32, copy=False)


def inner_product(x: np.ndarray, p: InnerProductParams, res: InnerProductResource) -> np.ndarray:
    """TNN fp32 InnerProduct: ``y = x.reshape(N, K) @ W.T + b``."""
    batch, k, out_shape = _contraction(x, p)
    weight = _weight(res, p, k, np.float32)
    y = x.astype(np.float32, copy=False).reshape(batch, k) @ weight.T
    bias = _bias(p, res)
    if bias is not None:
        y += bias
    return y.reshape(out_shape)


def inner_product_onnx(g, p: InnerProductParams, res: InnerProductResource, x: Value,
                       out: str) -> None:
    """``inner_product`` as Flatten, Gemm (and a Reshape back to rank ``axis + 1``)."""
    _, k, out_shape = _contraction(x.shape, p)
    weight = _weight(res, p, k, np.float32)
    bias = _bias(p, res)
    inputs = [g.node("Flatten", [x.name], axis=1), g.const(weight)]
    if bias is not None:
        inputs.append(g.const(bias))
    if len(out_shape) == 2:
        g.node("Gemm", inputs, out, transB=1)
        return
    y = g.node("Gemm", inputs, transB=1)
    g.node("Reshape", [y, g.ints((0,) + out_shape[1:])], out)


def inner_product_naive(x: np.ndarray, p: InnerProductParams,
                        res: InnerProductResource) -> np.ndarray:
    """TNN's NAIVE fp32 InnerProduct bit for bit (spec int8 §14): ``r = Σ_k f32(w·x)`` summed
    in k order from 0, then ``f32(r + bias)``."""
    batch, k, out_shape = _contraction(x, p)
    weight = _weight(res, p, k, np.float32)
    rows = x.astype(np.float32, copy=False).reshape(1, batch, k)
    # the outputs are the long axis of the sequential product: (1, batch, K) x (1, K, num_output)
    y = seq_matmul(rows, np.ascontiguousarray(weight.T)[None])[0]
    bias = _bias(p, res)
    if bias is not None:
        y += bias
    return y.reshape(out_shape)


def _int8_terms(shape: tuple[int, ...], p: InnerProductParams, res: InnerProductResource,
                q: Int8Context) -> tuple[int, int, tuple[int, ...], np.ndarray,
                                         np.ndarray | None, np.ndarray]:
    """(batch, K, output shape, int8 weight [num_output][K], int32 bias or None, ``M = S /
    s_out``) of the int8 InnerProduct on an input of ``shape``; ValueError where the file
    cannot run."""
    batch, k, out_shape = _contraction(shape, p)
    weight = _weight(res, p, k, np.int8)
    if res.scale is None:
        raise ValueError("the int8 weight has no scales")
    bias = None
    if p.has_bias:
        if res.bias.data.dtype != np.int32 or res.bias.size != p.num_output:
            raise ValueError(f"has_bias=1 needs an int32 bias of {p.num_output} values")
        bias = res.bias.data
    m = ratio(res.scale.data, q.outputs[0].scale)
    check_channels(m, (batch, p.num_output), "weight / output scale")
    return batch, k, out_shape, weight, bias, m


def inner_product_int8(x_q: np.ndarray, p: InnerProductParams, res: InnerProductResource,
                       q: Int8Context) -> np.ndarray:
    """TNN's int8 InnerProduct (spec int8 §12.4, §13): exact int32 sums, ``+ bq`` when
    has_bias, ``round(f32((float)(acc + bq) * M[o]))`` with ``M = S / s_out``. NAIVE subtracts
    the zero points of the input (per input channel) and of the weights first and adds the
    output's at the end; x86 ignores them."""
    batch, k, out_shape, weight, bias, m = _int8_terms(x_q.shape, p, res, q)
    weight = weight.astype(np.float32)
    x = x_q.astype(np.float32)
    out, zp_out = q.outputs[0], None
    if q.device == "naive":
        x -= channel_view(q.inputs[0].zero_points.astype(np.float32), x.ndim)
        if res.zero_point is not None:
            weight -= res.zero_point.data.astype(np.float32).reshape(-1, 1)
        zp_out = out.zero_points
    acc = int_matmul(x.reshape(batch, k), weight.T)
    y = requantize_conv(acc, bias, m, out.scale, device=q.device, zp_out=zp_out)
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
    def forward_naive(cls, p: InnerProductParams, res: InnerProductResource,
                      *xs: np.ndarray) -> np.ndarray:
        return inner_product_naive(xs[0], p, res)

    @classmethod
    def output_types(cls, p: InnerProductParams, res: InnerProductResource, *xs):
        _, k, out_shape = _contraction(xs[0][0], p)
        _weight(res, p, k, np.float32)
        _bias(p, res)
        return [(out_shape, np.dtype(np.float32))]

    @classmethod
    def to_onnx(cls, p: InnerProductParams, res: InnerProductResource, g, xs: list[Value],
                ys: list[str]) -> None:
        inner_product_onnx(g, p, res, xs[0], ys[0])

    @classmethod
    def forward_int8(cls, p: InnerProductParams, res: InnerProductResource, q: Int8Context,
                     *xs: np.ndarray) -> np.ndarray:
        return inner_product_int8(xs[0], p, res, q)

    @classmethod
    def int8_onnxruntime(cls, p: InnerProductParams, res: InnerProductResource,
                         q: Int8Context, *shapes: tuple[int, ...]):
        if q.device != "x86" or len(shapes) != 1:
            return None
        try:
            batch, k, out_shape, weight, bias, m = _int8_terms(tuple(shapes[0]), p, res, q)
        except ValueError:   # the numpy kernel reports it
            return None
        from ..exec.ort_kernels import Int8InnerProduct
        one = (1, 1)
        geometry = (1, one, one, one, ((0, 0), one, one, one))
        return Int8InnerProduct(res, weight.reshape(p.num_output, k, 1, 1), bias, m, None, None,
                                geometry, (batch, k, 1, 1), out_dims=out_shape[1:]), out_shape

    @classmethod
    def check_resource(cls, p: InnerProductParams, res: InnerProductResource) -> str | None:
        if p.num_output <= 0 or res.weight.size % p.num_output:
            return (f"weight has {res.weight.size} values, not a multiple of num_output "
                    f"{p.num_output}")
        if p.has_bias and res.bias.size != p.num_output:
            return f"bias has {res.bias.size} values, expected {p.num_output}"
        return None
