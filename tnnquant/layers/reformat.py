"""Reformat: the fp32 <-> int8 conversion TNN inserts at load (spec model-format §3.3.31,
int8 §11.2)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import LayerType, Params, register


@dataclass(frozen=True)
class ReformatParams(Params):
    src_type: int = 0   # data-type codes (spec §2.2)
    dst_type: int = 0


@register
class Reformat(LayerType):
    names = ("Reformat",)
    enum = 170
    Params = ReformatParams

    @classmethod
    def forward(cls, p: ReformatParams, res: None,
                *xs: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        # in an fp32 run every blob is float, so a reformat is the identity
        return xs[0] if len(xs) == 1 else xs
