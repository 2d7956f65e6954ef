"""Deconvolution (transposed convolution; spec model-format §3.3.1). Never quantized by TNN."""
from __future__ import annotations

from ._resources import ConvResource
from .base import LayerType, register
from .convolution import ConvParams


@register
class Deconvolution(LayerType):
    names = ("Deconvolution",)
    enum = 22
    Params = ConvParams
    Resource = ConvResource

    @classmethod
    def check_resource(cls, p: ConvParams, res: ConvResource) -> str | None:
        group = max(p.group, 1)
        expected = p.output_channel * p.input_channel * p.kernel_h * p.kernel_w
        if p.input_channel and res.filter.size != expected:
            return (f"filter has {res.filter.size} values, expected {expected} "
                    f"(group {group}, {p.input_channel} in/group, {p.output_channel} out)")
        if res.bias is not None and res.bias.size != p.output_channel:
            return f"bias has {res.bias.size} values, expected {p.output_channel}"
        return None
