"""Clip (spec model-format §3.3.19): a missing bound is 0.0, not +-inf."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, register


@dataclass(frozen=True)
class ClipParams(Params):
    min: float = 0.0
    max: float = 0.0


@register
class Clip(LayerType):
    names = ("Clip",)
    enum = 171
    Params = ClipParams
