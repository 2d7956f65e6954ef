"""MatMul (spec model-format §3.3.29)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..formats.binio import BinReader, BinWriter
from ..formats.rawbuffer import DataType, RawBuffer
from .base import LayerType, Params, Value, register


@dataclass(frozen=True)
class MatMulParams(Params):
    weight_position: int = -1   # 0: weight @ x, 1: x @ weight, -1: both operands are blobs


@dataclass
class MatMulResource:
    weight: RawBuffer
    scale: RawBuffer | None = None   # only for INT8 weights

    @classmethod
    def read(cls, r: BinReader) -> "MatMulResource":
        weight = r.rawbuffer("weight")
        scale = r.rawbuffer("weight scale") if weight.data_type == DataType.INT8 else None
        return cls(weight, scale)

    def write(self, w: BinWriter) -> None:
        w.rawbuffer(self.weight)
        if self.scale is not None:
            w.rawbuffer(self.scale)


def matmul_weight(res: MatMulResource | None) -> np.ndarray:
    """The constant operand, shaped by its stored dims (a MatMul weight needs them)."""
    if res is None:
        raise ValueError("one input and no weight: MatMul needs two inputs or a weight resource")
    if res.weight.data.dtype != np.float32:
        raise ValueError(f"the weight is {res.weight.data_type.name}, the fp32 kernel needs a "
                         f"float weight")
    dims = res.weight.dims
    if len(dims) < 1 or int(np.prod(dims)) != res.weight.size:
        raise ValueError(f"the weight's dims {list(dims)} do not describe its "
                         f"{res.weight.size} values")
    return res.weight.data.reshape(dims)


def _operands(p: MatMulParams, res: MatMulResource | None, xs: tuple) -> tuple:
    """(a, b) of ``a @ b``: the inputs, or the input and the weight."""
    if len(xs) >= 2:
        return xs[0], xs[1]
    if p.weight_position == 0:
        return matmul_weight(res), xs[0]
    if p.weight_position == 1:
        return xs[0], matmul_weight(res)
    raise ValueError(f"weight_position {p.weight_position} with one input: expected 0 "
                     f"(weight @ x) or 1 (x @ weight)")


def matmul(p: MatMulParams, res: MatMulResource | None, *xs: np.ndarray) -> np.ndarray:
    """TNN fp32 MatMul with numpy matmul broadcasting: ``weight @ x`` (weight_position 0),
    ``x @ weight`` (1) or ``x0 @ x1`` (two input blobs)."""
    a, b = _operands(p, res, xs)
    return np.matmul(a.astype(np.float32, copy=False), b.astype(np.float32, copy=False))


@register
class MatMul(LayerType):
    names = ("MatMul",)
    dynamic_names = ("DynamicRangeQuantizedMatMul",)
    enum = 105
    Params = MatMulParams
    Resource = MatMulResource

    @classmethod
    def forward(cls, p: MatMulParams, res: MatMulResource | None, *xs: np.ndarray) -> np.ndarray:
        return matmul(p, res, *xs)

    @classmethod
    def to_onnx(cls, p: MatMulParams, res: MatMulResource | None, g, xs: list[Value],
                ys: list[str]) -> None:
        if any(x.dtype != np.float32 for x in xs):
            raise ValueError("the ONNX MatMul takes float32 blobs")
        a, b = (v if isinstance(v, str) else g.const(v)
                for v in _operands(p, res, tuple(x.name for x in xs)))
        g.node("MatMul", [a, b], ys[0])

    @classmethod
    def requires_resource(cls, layer: Any) -> bool:
        return len(layer.inputs) < 2
