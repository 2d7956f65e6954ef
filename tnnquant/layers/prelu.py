"""PReLU (spec model-format §3.3.16)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..formats.binio import BinReader, BinWriter
from ..formats.rawbuffer import RawBuffer
from ._util import channel_vector
from .base import LayerType, Params, Value, register


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

    @classmethod
    def forward(cls, p: PReLUParams, res: PReLUResource, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, x, x * prelu_slope(p, res, x))

    @classmethod
    def exact_onnx(cls, p: PReLUParams) -> bool:
        return True   # ONNX PRelu is ``x > 0 ? x : x * slope``, forward's one multiply

    @classmethod
    def value_bound(cls, p: PReLUParams, res: PReLUResource, in_bounds: list[float | None]
                    ) -> float | None:
        # x or one rounded product x · slope
        slope = float(np.abs(res.slope.data.astype(np.float64)).max(initial=0))
        if None in in_bounds or not np.isfinite(slope):
            return None
        return in_bounds[0] * max(1.0, slope) * (1 + 2.0 ** -22)

    @classmethod
    def to_onnx(cls, p: PReLUParams, res: PReLUResource, g, xs: list[Value],
                ys: list[str]) -> None:
        x = xs[0]
        slope = prelu_slope(p, res, np.broadcast_to(np.float32(0), x.shape))
        g.node("PRelu", [x.name, g.const(slope)], ys[0])


def prelu_slope(p: PReLUParams, res: PReLUResource, x: np.ndarray) -> np.ndarray:
    """The slope shaped to broadcast against ``x``; the stored dims vary ([C], [1,C,1,1]), only
    the values matter."""
    if p.channel_shared == 1:   # TNN: only the word 1 means shared (spec §3.3.16)
        if res.slope.size == 0:
            raise ValueError("the slope buffer is empty")
        return res.slope.data[0].astype(np.float32)
    return channel_vector(res.slope.data, x, "slope")
