"""Concat (spec model-format §3.3.5; int8 §12.6)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, register


@dataclass(frozen=True)
class ConcatParams(Params):
    axis: int = 1


@register
class Concat(LayerType):
    names = ("Concat", "Concat_nhwc")
    quantized_names = ("QuantizedConcat",)
    enum = 8
    Params = ConcatParams
    collects_stats = True
    quantizable = True
