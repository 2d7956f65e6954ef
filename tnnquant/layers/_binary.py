"""Shared parameters of the element-wise binary ops (spec model-format §3.3.4)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._resources import ElementResource
from .base import LayerType, Params


@dataclass(frozen=True)
class BinaryParams(Params):
    weight_input_index: int = 1   # 0: const op x, 1: x op const, -1: no constant operand


class BinaryLayer(LayerType):
    Params = BinaryParams
    Resource = ElementResource

    @classmethod
    def requires_resource(cls, layer: Any) -> bool:
        return len(layer.inputs) < 2
