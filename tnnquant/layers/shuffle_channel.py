"""ShuffleChannel (spec model-format §3.3.23)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Int8Context, LayerType, Params, Value, register


@dataclass(frozen=True)
class ShuffleChannelParams(Params):
    group: int = 1


def _grouped_shape(p: ShuffleChannelParams, shape: tuple[int, ...]) -> tuple[int, ...]:
    channels = shape[1] if len(shape) > 1 else 0
    if p.group <= 0 or channels % p.group:
        raise ValueError(f"{channels} channels cannot be shuffled in {p.group} groups")
    return (shape[0], p.group, channels // p.group) + tuple(shape[2:])


@register
class ShuffleChannel(LayerType):
    names = ("ShuffleChannel",)
    enum = 63
    Params = ShuffleChannelParams

    @classmethod
    def forward(cls, p: ShuffleChannelParams, res: None, x: np.ndarray) -> np.ndarray:
        # spec §3.3.23: output channel j*group + i takes input channel i*(C/group) + j
        grouped = x.reshape(_grouped_shape(p, x.shape))
        return np.ascontiguousarray(grouped.swapaxes(1, 2)).reshape(x.shape)

    @classmethod
    def to_onnx(cls, p: ShuffleChannelParams, res: None, g, xs: list[Value],
                ys: list[str]) -> None:
        x = xs[0]
        grouped = (0,) + _grouped_shape(p, x.shape)[1:]   # 0: the batch, whatever its size
        y = g.node("Reshape", [x.name, g.ints(grouped)])
        perm = list(range(len(grouped)))
        perm[1], perm[2] = 2, 1
        y = g.node("Transpose", [y], perm=perm)
        g.node("Reshape", [y, g.ints((0,) + x.shape[1:])], ys[0])

    @classmethod
    def forward_int8(cls, p: ShuffleChannelParams, res: None, q: Int8Context,
                     x: np.ndarray) -> np.ndarray:
        return cls.forward(p, res, x)   # pure data movement on the codes (spec int8 §12.9)
