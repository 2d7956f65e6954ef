"""Pad, the legacy NCHW form (spec model-format §3.3.20)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, register

INT_MIN = -2**31


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


@register
class Pad(LayerType):
    names = ("Pad",)
    enum = 44
    Params = PadParams
