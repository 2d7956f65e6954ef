"""Shared parameters and fp32 kernel of the element-wise binary ops (spec model-format §3.3.4)."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..formats.rawbuffer import RawBuffer
from ._resources import ElementResource
from .base import LayerType, Params


@dataclass(frozen=True)
class BinaryParams(Params):
    weight_input_index: int = 1   # 0: const op x, 1: x op const, -1: no constant operand


def constant_operand(buf: RawBuffer, x: np.ndarray) -> np.ndarray:
    """The resource operand, shaped for numpy broadcasting against the blob ``x``.

    spec model-format §2.5: the stored dims drive broadcasting (numpy left-pads them with 1s);
    a legacy buffer without dims holds a scalar, a per-channel vector or one sample.
    """
    data = buf.data.astype(x.dtype, copy=False)
    if buf.dims:
        if int(np.prod(buf.dims)) != data.size:
            raise ValueError(f"constant operand has {data.size} values but dims {buf.dims}")
        return data.reshape(buf.dims)
    if data.size == 1:
        return data.reshape(())
    if x.ndim > 1 and data.size == x.shape[1]:
        return data.reshape((1, x.shape[1]) + (1,) * (x.ndim - 2))
    if data.size == int(np.prod(x.shape[1:])):
        return data.reshape((1,) + x.shape[1:])
    raise ValueError(f"constant operand without dims has {data.size} values; it fits neither "
                     f"a scalar, the channels nor one sample of the input {x.shape}")


class BinaryLayer(LayerType):
    Params = BinaryParams
    Resource = ElementResource
    op: ClassVar[np.ufunc]
    variadic: ClassVar[bool] = False   # Add/Mul/Maximum/Minimum fold N inputs (spec §3.3.4)

    @classmethod
    def requires_resource(cls, layer: Any) -> bool:
        return len(layer.inputs) < 2

    @classmethod
    def forward(cls, p: BinaryParams, res: ElementResource | None,
                *xs: np.ndarray) -> np.ndarray:
        if len(xs) == 1:
            if res is None:
                raise ValueError("one input and no constant operand in the model")
            const = constant_operand(res.element, xs[0])
            # TNN puts the constant first only for index 0; any other value means x op const
            operands = (const, xs[0]) if p.weight_input_index == 0 else (xs[0], const)
        elif len(xs) == 2 or (cls.variadic and len(xs) > 2):
            operands = xs
        else:
            raise ValueError(f"expected 2 inputs, got {len(xs)}")
        # C arithmetic: division by zero and overflow give inf/nan silently
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return functools.reduce(cls.op, operands)
