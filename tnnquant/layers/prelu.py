"""PReLU (spec model-format §3.3.16)."""
from __future__ import annotations

from dataclasses import dataclass

from ..formats.binio import BinReader, BinWriter
from ..formats.rawbuffer import RawBuffer
from .base import LayerType, Params, register


@dataclass(frozen=True)
class PReLUParams(Params):
    channel_shared: int = 0   # TNN treats only the word 1 as true
    has_filler: int = 0


@dataclass
class PReLUResource:
    name: str                 # kept and re-written by TNN (spec §2.5)
    slope: RawBuffer          # [C], or [1] when channel_shared

    @classmethod
    def read(cls, r: BinReader) -> "PReLUResource":
        return cls(r.string("layer name"), r.rawbuffer("slope"))

    def write(self, w: BinWriter) -> None:
        w.string(self.name)
        w.rawbuffer(self.slope)


@register
class PReLU(LayerType):
    names = ("PReLU", "PReLU_nhwc")
    enum = 35
    Params = PReLUParams
    Resource = PReLUResource
