"""ShuffleChannel (spec model-format §3.3.23)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Int8Context, LayerType, Params, register


@dataclass(frozen=True)
class ShuffleChannelParams(Params):
    group: int = 1


@register
class ShuffleChannel(LayerType):
    names = ("ShuffleChannel",)
    enum = 63
    Params = ShuffleChannelParams

    @classmethod
    def forward(cls, p: ShuffleChannelParams, res: None, x: np.ndarray) -> np.ndarray:
        # spec §3.3.23: output channel j*group + i takes input channel i*(C/group) + j
        channels = x.shape[1] if x.ndim > 1 else 0
        if p.group <= 0 or channels % p.group:
            raise ValueError(f"{channels} channels cannot be shuffled in {p.group} groups")
        grouped = x.reshape((x.shape[0], p.group, channels // p.group) + x.shape[2:])
        return np.ascontiguousarray(grouped.swapaxes(1, 2)).reshape(x.shape)

    @classmethod
    def forward_int8(cls, p: ShuffleChannelParams, res: None, q: Int8Context,
                     x: np.ndarray) -> np.ndarray:
        return cls.forward(p, res, x)   # pure data movement on the codes (spec int8 §12.9)
