"""MatMul (spec model-format §3.3.29)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..formats.binio import BinReader, BinWriter
from ..formats.rawbuffer import DataType, RawBuffer
from .base import LayerType, Params, register


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


@register
class MatMul(LayerType):
    names = ("MatMul",)
    dynamic_names = ("DynamicRangeQuantizedMatMul",)
    enum = 105
    Params = MatMulParams
    Resource = MatMulResource

    @classmethod
    def requires_resource(cls, layer: Any) -> bool:
        return len(layer.inputs) < 2
