"""Elu (spec model-format §3.3.25)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, register


@dataclass(frozen=True)
class EluParams(Params):
    alpha: float = 1.0


@register
class Elu(LayerType):
    names = ("Elu",)
    enum = 132
    Params = EluParams
