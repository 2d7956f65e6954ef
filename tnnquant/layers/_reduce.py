"""Shared parameters and fp32 kernel of the Reduce* layers (spec model-format §3.3.26)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from ._util import axis_index
from .base import LayerType, Params, required, rest


@dataclass(frozen=True)
class ReduceParams(Params):
    keep_dims: int = required()
    axes: tuple[int, ...] = rest()


class ReduceLayer(LayerType):
    Params = ReduceParams
    reduce: ClassVar[Callable[..., np.ndarray]]   # numpy reduction taking axis= and keepdims=

    @classmethod
    def forward(cls, p: ReduceParams, res: None, x: np.ndarray) -> np.ndarray:
        # no axes: reduce over every dim (ONNX semantics)
        axes = tuple(axis_index(a, x.ndim) for a in p.axes) if p.axes else None
        return np.asarray(cls.reduce(x, axis=axes, keepdims=bool(p.keep_dims)))
