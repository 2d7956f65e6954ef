"""Resource payload codecs shared by several layer types (spec model-format §2.5)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..formats.binio import BinReader, BinWriter
from ..formats.rawbuffer import DataType, RawBuffer


def read_int8_tail(r: BinReader, what: str) -> tuple[RawBuffer | None, RawBuffer]:
    """(zero_point, scale) after int8 weights: current files store both, legacy and
    dynamic-range files the scale alone; the first buffer's type tells which (spec §2.5)."""
    at = r.pos
    first = r.rawbuffer(f"{what} zero points or scales")
    if first.data_type == DataType.INT8:
        if first.size == 0:  # TNN reads an empty buffer as FLOAT, i.e. as the scales
            raise r.error(f"{what}: empty zero-point buffer (TNN would misread it as the "
                          f"scales)", at)
        at = r.pos
        scale = r.rawbuffer(f"{what} scales")
        if scale.data_type != DataType.FLOAT or scale.size != first.size:
            raise r.error(f"{what}: {first.size} zero points need as many FLOAT scales, got "
                          f"{scale.size} {scale.data_type.name} values", at)
        return first, scale
    if first.data_type == DataType.FLOAT:
        return None, first
    raise r.error(f"{what}: expected an INT8 zero-point or FLOAT scale buffer, "
                  f"got {first.data_type.name}", at)


def write_int8_tail(w: BinWriter, zero_point: RawBuffer | None, scale: RawBuffer | None) -> None:
    if zero_point is not None:
        w.rawbuffer(zero_point)
    if scale is not None:
        w.rawbuffer(scale)


@dataclass
class ConvResource:
    """Convolution / Deconvolution weights: float, or int8 with scales (spec int8 §8.1)."""

    name: str
    has_bias: int
    filter: RawBuffer
    bias: RawBuffer | None = None
    zero_point: RawBuffer | None = None   # int8 filters only; None in legacy files
    scale: RawBuffer | None = None        # int8 filters only: weight scale x input scale

    @property
    def weights(self) -> RawBuffer:
        """The filter, under the name the quantizer passes use for conv and inner product."""
        return self.filter

    def with_weights(self, weights: RawBuffer, **changes) -> "ConvResource":
        """A copy with ``weights`` as its filter (and any other ``changes``)."""
        return dataclasses.replace(self, filter=weights, **changes)

    @classmethod
    def read(cls, r: BinReader) -> "ConvResource":
        name = r.string("layer name")
        has_bias = r.i32("has_bias flag")
        filt = r.rawbuffer("filter")
        bias = r.rawbuffer("bias") if has_bias else None
        zp = scale = None
        if filt.data_type == DataType.INT8:
            zp, scale = read_int8_tail(r, "filter")
        return cls(name, has_bias, filt, bias, zp, scale)

    def write(self, w: BinWriter) -> None:
        w.string(self.name)
        w.i32(self.has_bias)
        w.rawbuffer(self.filter)
        if self.has_bias:
            w.rawbuffer(self.bias)
        if self.filter.data_type == DataType.INT8:
            write_int8_tail(w, self.zero_point, self.scale)


@dataclass
class BatchNormResource:
    """Per-channel ``y = x * scale + bias`` (BatchNormCxx, InstBatchNormCxx); no name string."""

    scale: RawBuffer
    bias: RawBuffer

    @classmethod
    def read(cls, r: BinReader) -> "BatchNormResource":
        return cls(r.rawbuffer("scale"), r.rawbuffer("bias"))

    def write(self, w: BinWriter) -> None:
        w.rawbuffer(self.scale)
        w.rawbuffer(self.bias)


@dataclass
class ElementResource:
    """A single constant tensor (binary-op operand, BiasAdd bias, Const value)."""

    element: RawBuffer

    @classmethod
    def read(cls, r: BinReader) -> "ElementResource":
        return cls(r.rawbuffer("constant tensor"))

    def write(self, w: BinWriter) -> None:
        w.rawbuffer(self.element)
