"""Shared parameters of the Reduce* layers (spec model-format §3.3.26)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import LayerType, Params, required, rest


@dataclass(frozen=True)
class ReduceParams(Params):
    keep_dims: int = required()
    axes: tuple[int, ...] = rest()


class ReduceLayer(LayerType):
    Params = ReduceParams
