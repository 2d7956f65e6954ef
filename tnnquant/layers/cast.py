"""Cast (spec model-format §3.3.29)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..formats.rawbuffer import DataType
from .base import LayerType, Params, Value, register


@dataclass(frozen=True)
class CastParams(Params):
    to: int = 0   # data-type code (spec §2.2)


# HALF and BFP16 blobs have no place in the fp32 executor
CAST_DTYPES = {DataType.FLOAT: np.float32, DataType.INT8: np.int8, DataType.INT32: np.int32,
               DataType.INT64: np.int64, DataType.UINT32: np.uint32}


@register
class Cast(LayerType):
    names = ("Cast",)
    enum = 103
    Params = CastParams

    @classmethod
    def forward(cls, p: CastParams, res: None, x: np.ndarray) -> np.ndarray:
        if p.to not in CAST_DTYPES:
            known = ", ".join(f"{int(t)} {t.name}" for t in CAST_DTYPES)
            raise ValueError(f"cannot cast to data type {p.to} (supported: {known})")
        # float -> int truncates toward zero, like a C cast; nan and overflow are undefined
        with np.errstate(invalid="ignore"):
            return x.astype(CAST_DTYPES[DataType(p.to)])

    @classmethod
    def to_onnx(cls, p: CastParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        """ONNX Cast (float to integer truncates toward zero there too)."""
        from ..exec.onnx_model import ONNX_DTYPES
        g.node("Cast", [xs[0].name], ys[0], to=ONNX_DTYPES[np.dtype(CAST_DTYPES[DataType(p.to)])])
