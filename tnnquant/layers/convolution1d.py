"""Convolution1D (spec model-format §3.3.1, enum 203): params load and round-trip; no kernel."""
from __future__ import annotations

from dataclasses import dataclass

from ._resources import ConvResource
from .base import LayerType, Params, register


@dataclass(frozen=True)
class Conv1DParams(Params):
    group: int = 0
    input_channel: int = 0
    output_channel: int = 0
    kernel: int = 0
    stride: int = 0
    pad: int = 0
    pad2: int = 0
    bias: int = 0
    pad_type: int = 0
    dilation: int = 1
    activation_type: int = 0


@register
class Convolution1D(LayerType):
    names = ("Convolution1D",)
    enum = 203
    Params = Conv1DParams
    Resource = ConvResource
