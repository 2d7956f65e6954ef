"""GroupNorm (spec model-format §3.3.28): scale and bias come from inputs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._util import channel_vector, standardize
from .base import LayerType, Params, register


@dataclass(frozen=True)
class GroupNormParams(Params):
    group: int = 0
    eps: float = 1e-5


@register
class GroupNorm(LayerType):
    names = ("GroupNorm",)
    enum = 318
    Params = GroupNormParams

    @classmethod
    def forward(cls, p: GroupNormParams, res: None, *xs: np.ndarray) -> np.ndarray:
        if len(xs) != 3:
            raise ValueError(f"expected 3 inputs (data, scale, bias), got {len(xs)}")
        x, scale, bias = xs
        channels = x.shape[1] if x.ndim > 1 else 0
        if p.group <= 0 or channels % p.group:
            raise ValueError(f"{channels} channels cannot be split in {p.group} groups")
        grouped = x.reshape(x.shape[0], p.group, -1)
        y = standardize(grouped, (2,), p.eps).reshape(x.shape)
        return y * channel_vector(scale, x, "scale") + channel_vector(bias, x, "bias")
