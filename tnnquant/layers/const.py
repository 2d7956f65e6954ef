"""Const: a constant tensor produced by a layer with no inputs (spec model-format §3.3.30)."""
from __future__ import annotations

from dataclasses import dataclass

from ._resources import ElementResource
from .base import LayerType, Params, counted, register


@dataclass(frozen=True)
class ConstParams(Params):
    dims: tuple[int, ...] = counted()


@register
class Const(LayerType):
    names = ("Const",)
    enum = 100
    Params = ConstParams
    Resource = ElementResource
