"""Convolution (spec model-format §3.3.1; int8 §8.1, §12.3)."""
from __future__ import annotations

from dataclasses import dataclass

from ._resources import ConvResource
from .base import LayerType, Params, register


@dataclass(frozen=True)
class ConvParams(Params):
    group: int = 0
    input_channel: int = 0      # per group
    output_channel: int = 0
    kernel_h: int = 0
    kernel_w: int = 0
    stride_h: int = 0
    stride_w: int = 0
    pad_h: int = 0
    pad_w: int = 0
    bias: int = 0
    pad_type: int = 0           # -1 explicit, 0 SAME, 1 VALID (Deconvolution also 2, 3)
    dilation_h: int = 1
    dilation_w: int = 1
    activation_type: int = 0    # 0 none, 1 ReLU, 2 ReLU6, 256 x*sigmoid(x)


ACT_NONE, ACT_RELU, ACT_RELU6, ACT_SIGMOID_MUL = 0, 1, 2, 256


@register
class Convolution(LayerType):
    names = ("Convolution", "Convolution_nhwc")
    quantized_names = ("QuantizedConvolution", "QuantizedConvolution_nhwc")
    dynamic_names = ("DynamicRangeQuantizedConvolution",)
    enum = 1
    Params = ConvParams
    Resource = ConvResource
    collects_stats = True
    quantizable = True

    @classmethod
    def check_resource(cls, p: ConvParams, res: ConvResource) -> str | None:
        expected = p.output_channel * p.input_channel * p.kernel_h * p.kernel_w
        if res.filter.size != expected:
            return (f"filter has {res.filter.size} values, the parameters need "
                    f"{p.output_channel}x{p.input_channel}x{p.kernel_h}x{p.kernel_w} = {expected}")
        if bool(p.bias) != bool(res.has_bias):
            return f"proto says bias={p.bias} but the model says has_bias={res.has_bias}"
        if res.bias is not None and res.bias.size != p.output_channel:
            return f"bias has {res.bias.size} values, expected {p.output_channel}"
        return None
