"""Upsample (spec model-format §3.3.10)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, register, required


@dataclass(frozen=True)
class UpsampleParams(Params):
    mode: int = required()          # 1 nearest, 2 bilinear, 3 cubic
    scale_h: float = required(0.0)
    scale_w: float = required(0.0)
    align_corners: int = 0
    output_h: int = 0               # used only when both sizes are given (non-zero)
    output_w: int = 0


@register
class Upsample(LayerType):
    names = ("Upsample",)
    quantized_names = ("QuantizedUpsample",)
    enum = 149
    Params = UpsampleParams
