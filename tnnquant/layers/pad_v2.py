"""PadV2: ONNX-style pads, all begins then all ends (spec model-format §3.3.21)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._util import check_int8_pad_value, onnx_pad, pad
from .base import Int8Context, LayerType, Params, Value, counted, register


@dataclass(frozen=True)
class PadV2Params(Params):
    pads: tuple[int, ...] = counted(per_count=2)   # rank R, then 2R values
    type: int = 0             # 0 constant, 1 reflect, 2 edge
    value: float = 0.0


def _widths(p: PadV2Params, ndim: int) -> list[tuple[int, int]]:
    rank = len(p.pads) // 2
    if rank != ndim:
        raise ValueError(f"pads are given for {rank} dims, the input has {ndim}")
    return list(zip(p.pads[:rank], p.pads[rank:]))   # all begins, then all ends


@register
class PadV2(LayerType):
    names = ("PadV2",)
    enum = 316
    Params = PadV2Params

    @classmethod
    def forward(cls, p: PadV2Params, res: None, x: np.ndarray) -> np.ndarray:
        return pad(x, _widths(p, x.ndim), p.type, p.value)

    @classmethod
    def to_onnx(cls, p: PadV2Params, res: None, g, xs: list[Value], ys: list[str]) -> None:
        onnx_pad(g, xs[0], _widths(p, xs[0].ndim), p.type, p.value, ys[0])

    @classmethod
    def forward_int8(cls, p: PadV2Params, res: None, q: Int8Context, x: np.ndarray) -> np.ndarray:
        check_int8_pad_value(p.type, p.value)
        return cls.forward(p, res, x)
