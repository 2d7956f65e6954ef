"""Shared parameters and fp32 kernel of the element-wise binary ops (spec model-format §3.3.4)."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..formats.rawbuffer import RawBuffer
from ._resources import ElementResource
from .base import LayerType, Params, Value


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
    onnx_op: ClassVar[str]             # the ONNX operator of ``op`` (numpy broadcasting)

    @classmethod
    def requires_resource(cls, layer: Any) -> bool:
        return len(layer.inputs) < 2

    @classmethod
    def operands(cls, p: BinaryParams, res: ElementResource | None,
                 xs: tuple[Any, ...], x0: np.ndarray) -> tuple[Any, ...]:
        """The operands in order: the inputs, or the single input and the constant operand
        (shaped against ``x0``, an array shaped like the input)."""
        if len(xs) == 1:
            if res is None:
                raise ValueError("one input and no constant operand in the model")
            const = constant_operand(res.element, x0)
            # TNN puts the constant first only for index 0; any other value means x op const
            return (const, xs[0]) if p.weight_input_index == 0 else (xs[0], const)
        if len(xs) == 2 or (cls.variadic and len(xs) > 2):
            return xs
        raise ValueError(f"expected 2 inputs, got {len(xs)}")

    @classmethod
    def forward(cls, p: BinaryParams, res: ElementResource | None,
                *xs: np.ndarray) -> np.ndarray:
        operands = cls.operands(p, res, xs, xs[0])
        # C arithmetic: division by zero and overflow give inf/nan silently
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return functools.reduce(cls.op, operands)

    @classmethod
    def to_onnx(cls, p: BinaryParams, res: ElementResource | None, g, xs: list[Value],
                ys: list[str]) -> None:
        x0 = np.broadcast_to(np.zeros((), xs[0].dtype), xs[0].shape)
        names = [v if isinstance(v, str) else g.const(v)
                 for v in cls.operands(p, res, tuple(x.name for x in xs), x0)]
        y = names[0]   # folded left to right, as ``forward`` does
        for k, other in enumerate(names[1:]):
            y = g.node(cls.onnx_op, [y, other], ys[0] if k == len(names) - 2 else 1)
