"""Shared pieces of the Convolution/Deconvolution tests: resources from arrays and the TNN
activation formulas written out directly."""
from __future__ import annotations

import numpy as np

from tnnquant.formats.rawbuffer import RawBuffer
from tnnquant.layers._resources import ConvResource


def conv_resource(weight: np.ndarray, bias: np.ndarray | None = None) -> ConvResource:
    weight = np.asarray(weight, np.float32)
    return ConvResource("layer", int(bias is not None), RawBuffer.of(weight, dims=weight.shape),
                        None if bias is None else RawBuffer.of(np.asarray(bias, np.float32),
                                                               dims=(len(bias),)))


def activate(y: np.ndarray, activation_type: int) -> np.ndarray:
    """TNN's fused activations (spec int8 §14), in float64."""
    if activation_type == 1:
        return np.maximum(y, 0)
    if activation_type == 2:
        return np.clip(y, 0, 6)
    if activation_type == 256:
        return y / (1 + np.exp(-y))
    return y
