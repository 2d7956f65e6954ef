"""Shared parameters and fp32 kernel of the Reduce* layers (spec model-format §3.3.26)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from ._util import axis_index
from .base import LayerType, Params, Value, required, rest


@dataclass(frozen=True)
class ReduceParams(Params):
    keep_dims: int = required()
    axes: tuple[int, ...] = rest()


class ReduceLayer(LayerType):
    Params = ReduceParams
    reduce: ClassVar[Callable[..., np.ndarray]]   # numpy reduction taking axis= and keepdims=
    onnx_op: ClassVar[str]   # the ONNX operator of the same reduction

    @classmethod
    def forward(cls, p: ReduceParams, res: None, x: np.ndarray) -> np.ndarray:
        # no axes: reduce over every dim (ONNX semantics)
        axes = tuple(axis_index(a, x.ndim) for a in p.axes) if p.axes else None
        return np.asarray(cls.reduce(x, axis=axes, keepdims=bool(p.keep_dims)))

    @classmethod
    def to_onnx(cls, p: ReduceParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        # at opset 17 ReduceSum takes its axes as an input, the others as an attribute; no
        # axes reduce every dim in both
        x = xs[0]
        axes = [axis_index(a, x.ndim) for a in p.axes]
        keepdims = int(bool(p.keep_dims))
        if cls.onnx_op == "ReduceSum":
            g.node("ReduceSum", [x.name] + ([g.ints(axes)] if axes else []), ys[0],
                   keepdims=keepdims)
        else:
            g.node(cls.onnx_op, [x.name], ys[0], keepdims=keepdims,
                   **({"axes": axes} if axes else {}))
