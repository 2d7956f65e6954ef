"""HardSwish: x0 * clamp(alpha * x1 + beta, 0, 1) (spec model-format §3.3.18).

TNN's defaults are alpha 1.0 and beta 0.0, not ONNX's."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, register


@dataclass(frozen=True)
class HardSwishParams(Params):
    alpha: float = 1.0
    beta: float = 0.0


@register
class HardSwish(LayerType):
    names = ("HardSwish",)
    enum = 173
    Params = HardSwishParams
