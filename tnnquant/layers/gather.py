"""Gather (spec model-format §3.3.29, payload §2.5)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..formats.binio import BinReader, BinWriter
from ..formats.rawbuffer import DataType, RawBuffer
from ._util import axis_index
from .base import LayerType, Params, Value, register


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

    @classmethod
    def forward(cls, p: GatherParams, res: GatherResource | None,
                *xs: np.ndarray) -> np.ndarray:
        blobs = list(xs)
        if p.data_in_resource:
            data = _resource_data(res)
        elif blobs:
            data = blobs.pop(0)
        else:
            raise ValueError("no data input")
        if p.indices_in_resource:
            if res is None or res.indices is None:
                raise ValueError("indices_in_resource is set but the model has no indices")
            indices = _buffer_array(res.indices)
        elif blobs:
            indices = blobs.pop(0)
        else:
            raise ValueError("no indices input")
        if blobs:
            raise ValueError(f"{len(xs)} inputs is too many for the resource flags")
        indices = np.asarray(indices)
        if indices.dtype.kind == "f":   # float blobs from the executor carry integer values
            if not np.array_equal(indices, np.trunc(indices)):
                raise ValueError("indices are not integers")
            indices = indices.astype(np.int64)
        axis = axis_index(p.axis, data.ndim)
        dim = data.shape[axis]
        if indices.size and (indices.min() < -dim or indices.max() >= dim):
            raise ValueError(f"indices out of range for dimension {axis} of size {dim}")
        return np.take(data, indices, axis=axis)   # negative indices count from the end

    @classmethod
    def to_onnx(cls, p: GatherParams, res: GatherResource | None, g, xs: list[Value],
                ys: list[str]) -> None:
        """ONNX Gather (negative indices count from the end there too); stored data and
        indices become initializers. Index blobs must be integers: float ones (TNN's blobs
        are float) run on the numpy kernel, which checks that they hold integers. Inputs,
        flags and stored indices were checked by ``forward`` when the shapes were inferred."""
        blobs = iter(xs)
        if p.data_in_resource:
            data = _resource_data(res)
            data_name, rank = g.const(data), data.ndim
        else:
            x = next(blobs)
            data_name, rank = x.name, x.ndim
        if p.indices_in_resource:
            index_name = g.const(_buffer_array(res.indices).astype(np.int64))
        else:
            index = next(blobs)
            if index.dtype.kind not in "iu":
                raise ValueError("float index blobs run on the numpy kernel")
            index_name = index.name
        g.node("Gather", [data_name, index_name], ys[0], axis=axis_index(p.axis, rank))


def _buffer_array(buf: RawBuffer) -> np.ndarray:
    """A resource tensor in its stored dims; a 1-element buffer without dims is a scalar."""
    if int(np.prod(buf.dims)) == buf.size:
        return buf.data.reshape(buf.dims)
    return buf.data


def _resource_data(res: GatherResource | None) -> np.ndarray:
    if res is None or res.data is None:
        raise ValueError("data_in_resource is set but the model has no data")
    data = _buffer_array(res.data)
    if res.data.data_type != DataType.INT8:
        return data
    # dynamic-range quantized data: dequantize with its scale (per-tensor only)
    if res.scale is None or res.scale.size != 1:
        raise ValueError("int8 data needs exactly one scale value")
    return data.astype(np.float32) * res.scale.data[0]
