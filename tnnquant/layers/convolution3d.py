"""Convolution3D (spec model-format §3.3.1, enum 201): params load and round-trip; no kernel."""
from __future__ import annotations

from dataclasses import dataclass

from ._resources import ConvResource
from .base import LayerType, Params, register


@dataclass(frozen=True)
class Conv3DParams(Params):
    group: int = 0
    input_channel: int = 0
    output_channel: int = 0
    kernel_d: int = 0
    kernel_h: int = 0
    kernel_w: int = 0
    stride_d: int = 0
    stride_h: int = 0
    stride_w: int = 0
    pad_d: int = 0
    pad_h: int = 0
    pad_w: int = 0
    bias: int = 0
    pad_type: int = 0
    dilation_d: int = 1
    dilation_h: int = 1
    dilation_w: int = 1
    activation_type: int = 0


@register
class Convolution3D(LayerType):
    names = ("Convolution3D",)
    enum = 201
    Params = Conv3DParams
    Resource = ConvResource
