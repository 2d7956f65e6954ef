"""Gather (spec model-format §3.3.29, payload §2.5)."""
from __future__ import annotations

from dataclasses import dataclass

from ..formats.binio import BinReader, BinWriter
from ..formats.rawbuffer import DataType, RawBuffer
from .base import LayerType, Params, register


@dataclass(frozen=True)
class GatherParams(Params):
    axis: int = 0
    data_in_resource: int = 0
    indices_in_resource: int = 1


@dataclass
class GatherResource:
    data_in_resource: int
    data: RawBuffer | None
    indices_in_resource: int
    indices: RawBuffer | None
    scale: RawBuffer | None = None   # only for stored INT8 data

    @classmethod
    def read(cls, r: BinReader) -> "GatherResource":
        has_data = r.i32("data_in_resource flag")
        data = r.rawbuffer("data") if has_data == 1 else None
        has_indices = r.i32("indices_in_resource flag")
        indices = r.rawbuffer("indices") if has_indices == 1 else None
        scale = None
        if data is not None and data.data_type == DataType.INT8:
            scale = r.rawbuffer("data scale")
        return cls(has_data, data, has_indices, indices, scale)

    def write(self, w: BinWriter) -> None:
        w.i32(self.data_in_resource)
        if self.data_in_resource == 1:
            w.rawbuffer(self.data)
        w.i32(self.indices_in_resource)
        if self.indices_in_resource == 1:
            w.rawbuffer(self.indices)
        if self.scale is not None:
            w.rawbuffer(self.scale)


@register
class Gather(LayerType):
    names = ("Gather",)
    dynamic_names = ("DynamicRangeQuantizedGather",)
    enum = 104
    Params = GatherParams
    Resource = GatherResource
