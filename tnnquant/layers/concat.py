"""Concat (spec model-format §3.3.5; int8 §12.6)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._util import axis_index
from .base import LayerType, Params, register


@dataclass(frozen=True)
class ConcatParams(Params):
    axis: int = 1


@register
class Concat(LayerType):
    names = ("Concat", "Concat_nhwc")
    quantized_names = ("QuantizedConcat",)
    enum = 8
    Params = ConcatParams
    collects_stats = True
    quantizable = True

    @classmethod
    def forward(cls, p: ConcatParams, res: None, *xs: np.ndarray) -> np.ndarray:
        if not xs:
            raise ValueError("no inputs")
        return np.concatenate(xs, axis=axis_index(p.axis, xs[0].ndim))
