"""Concat (spec model-format §3.3.5; int8 §12.6)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exec.int8_math import requantize_tensor
from ._util import axis_index
from .base import Int8Context, LayerType, Params, Value, register


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

    @classmethod
    def to_onnx(cls, p: ConcatParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        if not xs:
            raise ValueError("no inputs")
        g.node("Concat", [x.name for x in xs], ys[0], axis=axis_index(p.axis, xs[0].ndim))

    @classmethod
    def forward_int8(cls, p: ConcatParams, res: None, q: Int8Context,
                     *xs: np.ndarray) -> np.ndarray:
        """Per-tensor inputs are requantized to the output scale; if any input is per-channel
        the bytes are copied unchanged (spec int8 §12.6, §13)."""
        if not xs:
            raise ValueError("no inputs")
        out = q.outputs[0]
        if all(s.scale.size == 1 for s in q.inputs):
            xs = tuple(requantize_tensor(x, s.scale, out.scale, s.zero_points[0],
                                         out.zero_points[0], q.device)
                       for x, s in zip(xs, q.inputs))
        return np.concatenate(xs, axis=axis_index(p.axis, xs[0].ndim))
