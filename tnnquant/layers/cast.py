"""Cast (spec model-format §3.3.29)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, register


@dataclass(frozen=True)
class CastParams(Params):
    to: int = 0   # data-type code (spec §2.2)


@register
class Cast(LayerType):
    names = ("Cast",)
    enum = 103
    Params = CastParams
