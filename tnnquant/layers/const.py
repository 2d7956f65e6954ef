"""Const: a constant tensor produced by a layer with no inputs (spec model-format §3.3.30)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._resources import ElementResource
from .base import LayerType, Params, Value, counted, register


@dataclass(frozen=True)
class ConstParams(Params):
    dims: tuple[int, ...] = counted()


@register
class Const(LayerType):
    names = ("Const",)
    enum = 100
    Params = ConstParams
    Resource = ElementResource

    @classmethod
    def forward(cls, p: ConstParams, res: ElementResource) -> np.ndarray:
        # no inputs: the resource value in the proto's dims (spec §3.3.30)
        if int(np.prod(p.dims)) != res.element.size:
            raise ValueError(f"dims {list(p.dims)} do not fit the {res.element.size} stored "
                             f"values")
        return res.element.data.reshape(p.dims)

    @classmethod
    def to_onnx(cls, p: ConstParams, res: ElementResource, g, xs: list[Value],
                ys: list[str]) -> None:
        g.node("Identity", [g.const(cls.forward(p, res))], ys[0])
