"""LayerNorm (spec model-format §3.3.28): scale and bias come from inputs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._util import standardize
from .base import LayerType, Params, Value, register


@dataclass(frozen=True)
class LayerNormParams(Params):
    reduce_dims_size: int = 0
    eps: float = 1e-5


@register
class LayerNorm(LayerType):
    names = ("LayerNorm",)
    enum = 326
    Params = LayerNormParams

    @classmethod
    def forward(cls, p: LayerNormParams, res: None, *xs: np.ndarray) -> np.ndarray:
        if len(xs) != 3:
            raise ValueError(f"expected 3 inputs (data, scale, bias), got {len(xs)}")
        x, scale, bias = xs
        k = p.reduce_dims_size
        if not 1 <= k <= x.ndim:
            raise ValueError(f"reduce_dims_size {k} does not fit a {x.ndim}-d input")
        inner = x.shape[x.ndim - k:]   # the normalised dims; scale and bias cover them
        for name, v in (("scale", scale), ("bias", bias)):
            if v.size != int(np.prod(inner)):
                raise ValueError(f"{name} has {v.size} values, the last {k} dims {inner} need "
                                 f"{int(np.prod(inner))}")
        y = standardize(x, tuple(range(x.ndim - k, x.ndim)), p.eps)
        return y * scale.reshape(inner) + bias.reshape(inner)

    @classmethod
    def to_onnx(cls, p: LayerNormParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        """ONNX LayerNormalization over the last ``reduce_dims_size`` dims (float
        tolerance: it need not sum in numpy's order)."""
        x, scale, bias = xs
        inner = g.ints(x.shape[x.ndim - p.reduce_dims_size:])
        g.node("LayerNormalization", [x.name, g.node("Reshape", [scale.name, inner]),
                                      g.node("Reshape", [bias.name, inner])], ys[0],
               axis=-p.reduce_dims_size, epsilon=float(p.eps))
