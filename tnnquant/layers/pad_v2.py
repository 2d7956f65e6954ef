"""PadV2: ONNX-style pads, all begins then all ends (spec model-format §3.3.21)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._util import check_int8_pad_value, pad
from .base import Int8Context, LayerType, Params, counted, register


@dataclass(frozen=True)
class PadV2Params(Params):
    pads: tuple[int, ...] = counted(per_count=2)   # rank R, then 2R values
    type: int = 0             # 0 constant, 1 reflect, 2 edge
    value: float = 0.0


@register
class PadV2(LayerType):
    names = ("PadV2",)
    enum = 316
    Params = PadV2Params

    @classmethod
    def forward(cls, p: PadV2Params, res: None, x: np.ndarray) -> np.ndarray:
        rank = len(p.pads) // 2
        if rank != x.ndim:
            raise ValueError(f"pads are given for {rank} dims, the input has {x.ndim}")
        widths = list(zip(p.pads[:rank], p.pads[rank:]))   # all begins, then all ends
        return pad(x, widths, p.type, p.value)

    @classmethod
    def forward_int8(cls, p: PadV2Params, res: None, q: Int8Context, x: np.ndarray) -> np.ndarray:
        check_int8_pad_value(p.type, p.value)
        return cls.forward(p, res, x)
