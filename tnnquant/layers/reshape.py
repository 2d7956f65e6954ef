"""Reshape (spec model-format §3.3.7)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, counted, register


@dataclass(frozen=True)
class ReshapeParams(Params):
    axis: int = 0
    num_axes: int = 0
    shape: tuple[int, ...] = counted(required=True)   # 0 copies the input dim, -1 is inferred
    reshape_type: int = 0   # 0 NCHW element order, 1 TensorFlow NHWC order


@register
class Reshape(LayerType):
    names = ("Reshape",)
    quantized_names = ("QuantizedReshape", "QuantizedReshapeTensorflow")
    enum = 9
    Params = ReshapeParams
