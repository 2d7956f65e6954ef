"""Pooling (spec model-format §3.3.2; int8 §12.7)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, register


@dataclass(frozen=True)
class PoolingParams(Params):
    pool_type: int = 0          # 0 max, 1 average
    kernel_h: int = 0           # 0 = whole input extent (global)
    kernel_w: int = 0
    stride_h: int = 0
    stride_w: int = 0
    pad_h: int = 0
    pad_w: int = 0
    kernel_index_h: int = -1
    kernel_index_w: int = -1
    pad_type: int = 0           # -1 explicit, 0 SAME, 1 VALID
    ceil_mode: int = 0
    is_adaptive_pool: int = 0
    output_h: int = 0           # TNN's writer emits these two swapped (spec §3.3.2)
    output_w: int = 0


@register
class Pooling(LayerType):
    names = ("Pooling", "Pooling_nhwc", "Pooling_split_CC")
    quantized_names = ("QuantizedPooling",)
    enum = 4
    Params = PoolingParams
    collects_stats = True
