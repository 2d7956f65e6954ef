"""Pad, the legacy NCHW form (spec model-format §3.3.20)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._util import INT_MIN, check_int8_pad_value, onnx_pad, pad
from .base import Int8Context, LayerType, Params, Value, register


@dataclass(frozen=True)
class PadParams(Params):
    n1: int = 0               # read and ignored by TNN; its writer writes 0
    n2: int = 0
    pad_top: int = INT_MIN    # TNN's default for a missing pad word
    pad_bottom: int = INT_MIN
    pad_left: int = INT_MIN
    pad_right: int = INT_MIN
    pad_c_begin: int = INT_MIN
    pad_c_end: int = INT_MIN
    type: int = 0             # 0 constant, 1 reflect, 2 edge
    value: float = 0.0


def _widths(p: PadParams, ndim: int) -> list[tuple[int, int]]:
    pads = (p.pad_c_begin, p.pad_c_end, p.pad_top, p.pad_bottom, p.pad_left, p.pad_right)
    if INT_MIN in pads:
        raise ValueError("pad words are missing (TNN reads them as INT_MIN)")
    if ndim != 4:
        raise ValueError(f"expected a 4-d NCHW input, got {ndim}-d")
    return [(0, 0), (p.pad_c_begin, p.pad_c_end), (p.pad_top, p.pad_bottom),
            (p.pad_left, p.pad_right)]


@register
class Pad(LayerType):
    names = ("Pad",)
    enum = 44
    Params = PadParams

    @classmethod
    def forward(cls, p: PadParams, res: None, x: np.ndarray) -> np.ndarray:
        return pad(x, _widths(p, x.ndim), p.type, p.value)

    @classmethod
    def to_onnx(cls, p: PadParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        onnx_pad(g, xs[0], _widths(p, xs[0].ndim), p.type, p.value, ys[0])

    @classmethod
    def forward_int8(cls, p: PadParams, res: None, q: Int8Context, x: np.ndarray) -> np.ndarray:
        check_int8_pad_value(p.type, p.value)
        return cls.forward(p, res, x)
