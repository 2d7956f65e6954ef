"""GroupNorm (spec model-format §3.3.28): scale and bias come from inputs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._util import channel_vector, standardize
from .base import LayerType, Params, Value, register


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

    @classmethod
    def to_onnx(cls, p: GroupNormParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        """InstanceNormalization of x reshaped to (N, group, -1), then the per-channel scale
        and bias (ONNX's GroupNormalization came with opset 18). The inputs were checked by
        ``forward`` when the backend inferred the shapes."""
        x, scale, bias = xs
        channels = x.shape[1]
        ones = np.ones(p.group, np.float32)
        grouped = g.node("Reshape", [x.name, g.ints([0, p.group, -1])])
        y = g.node("InstanceNormalization", [grouped, g.const(ones), g.const(ones * 0)],
                   epsilon=float(p.eps))
        y = g.node("Reshape", [y, g.ints((0,) + x.shape[1:])])   # 0: the batch, any size
        per_channel = []
        for name, v in (("scale", scale), ("bias", bias)):
            if v.dtype != np.float32:
                raise ValueError(f"{name} is {v.dtype}, not float32")
            dims = (1,) if int(np.prod(v.shape)) == 1 else (channels,) + (1,) * (x.ndim - 2)
            per_channel.append(g.node("Reshape", [v.name, g.ints(dims)]))
        g.node("Add", [g.node("Mul", [y, per_channel[0]]), per_channel[1]], ys[0])
