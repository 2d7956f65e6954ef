"""ShuffleChannel (spec model-format §3.3.23)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, register


@dataclass(frozen=True)
class ShuffleChannelParams(Params):
    group: int = 1


@register
class ShuffleChannel(LayerType):
    names = ("ShuffleChannel",)
    enum = 63
    Params = ShuffleChannelParams
