"""Concat (spec model-format §3.3.5; int8 §12.6)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exec.int8_math import requantize_tensor
from ._util import axis_index
from .base import Int8Context, LayerType, Params, Value, register


# copied codes read with scales this close (relative) to the ones they were made with: exact
COPY_EXACT_RTOL = 1e-6


@dataclass(frozen=True)
class ConcatParams(Params):
    axis: int = 1


def copy_scale_error(p: ConcatParams, in_scales: list[np.ndarray], out_scale: np.ndarray,
                     shapes: list[tuple[int, ...]]) -> float:
    """How wrong TNN's int8 Concat reads its inputs' codes: with any per-channel input it
    copies the bytes (spec int8 §12.6), each output channel then read with its own scale. The
    largest relative difference between that scale and the one the codes were made with (0
    where it requantizes, or where the scales agree; channels of scale 0 hold only zeros).
    ``shapes``: the inputs' shapes, then the output's."""
    if all(s.size == 1 for s in in_scales):
        return 0.0
    channels = [shape[1] if len(shape) > 1 else 1 for shape in shapes]
    if any(s.size not in (1, c) for s, c in zip([*in_scales, out_scale], channels)):
        return float("inf")   # scales that do not even match the channels
    made = [np.broadcast_to(s, (c,)).astype(np.float64) for s, c in zip(in_scales, channels)]
    read = np.broadcast_to(out_scale, (channels[-1],)).astype(np.float64)
    if axis_index(p.axis, len(shapes[-1])) == 1:
        made = [np.concatenate(made)]   # else every input is read with the output's scales
    worst = 0.0
    for m in made:
        if m.size != read.size:
            return float("inf")
        live = m > 0
        if live.any():
            worst = max(worst, float(np.max(np.abs(read[live] / m[live] - 1))))
    return worst


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
