"""Reshape (spec model-format §3.3.7)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedError
from .base import Int8Context, LayerType, Params, Value, counted, register


@dataclass(frozen=True)
class ReshapeParams(Params):
    axis: int = 0
    num_axes: int = 0
    shape: tuple[int, ...] = counted(required=True)   # 0 copies the input dim, -1 is inferred
    reshape_type: int = 0   # 0 NCHW element order, 1 TensorFlow NHWC order


def output_shape(p: ReshapeParams, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    """spec §3.3.7: input dims [0, axis) copied, then one dim per shape value."""
    # TNN replaces num_axes -1 by the count; other mismatches have no defined meaning
    if p.num_axes not in (-1, len(p.shape)):
        raise ValueError(f"num_axes {p.num_axes} differs from the {len(p.shape)} shape values")
    if not 0 <= p.axis <= len(in_shape):
        raise ValueError(f"axis {p.axis} is out of range for a {len(in_shape)}-d input")
    dims = list(in_shape[:p.axis])
    for j, s in enumerate(p.shape):
        if s == 0:
            if p.axis + j >= len(in_shape):
                raise ValueError(f"shape value 0 at position {j} copies input dim "
                                 f"{p.axis + j}, but the input has {len(in_shape)} dims")
            dims.append(in_shape[p.axis + j])
        elif s >= -1:
            dims.append(s)
        else:
            raise ValueError(f"invalid shape value {s}")
    total = int(np.prod(in_shape))
    if dims.count(-1) > 1:
        raise ValueError(f"more than one -1 in shape {list(p.shape)}")
    if -1 in dims:
        known = int(np.prod([d for d in dims if d != -1]))
        if known == 0 or total % known:
            raise ValueError(f"cannot infer the -1 of {dims} from {total} values")
        dims[dims.index(-1)] = total // known
    elif int(np.prod(dims)) != total:
        raise ValueError(f"cannot reshape {tuple(in_shape)} ({total} values) to {tuple(dims)}")
    return tuple(dims)


def _to_nhwc(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(x, 1, -1) if x.ndim > 2 else x


def _nhwc_perm(ndim: int) -> list[int]:
    return [0] + list(range(2, ndim)) + [1]


def _nhwc_shape(dims: tuple[int, ...]) -> tuple[int, ...]:
    return dims[:1] + dims[2:] + dims[1:2] if len(dims) > 2 else dims


@register
class Reshape(LayerType):
    names = ("Reshape",)
    quantized_names = ("QuantizedReshape", "QuantizedReshapeTensorflow")
    enum = 9
    Params = ReshapeParams

    @classmethod
    def forward(cls, p: ReshapeParams, res: None, x: np.ndarray) -> np.ndarray:
        dims = output_shape(p, x.shape)
        if p.reshape_type == 0:
            return x.reshape(dims)
        if p.reshape_type == 1:
            # TensorFlow order: reshape the NHWC view of the data, then go back to NCHW
            y = _to_nhwc(x).reshape(_nhwc_shape(dims))
            return np.ascontiguousarray(np.moveaxis(y, -1, 1) if y.ndim > 2 else y)
        raise ValueError(f"unknown reshape_type {p.reshape_type} (known: 0 NCHW, 1 TensorFlow)")

    @classmethod
    def to_onnx(cls, p: ReshapeParams, res: None, g, xs: list[Value], ys: list[str]) -> None:
        x = xs[0]
        dims = output_shape(p, x.shape)
        if p.reshape_type == 0:
            # ONNX's 0 copies the input dim at the same position, as TNN's copied leading dims
            # and shape values 0 do
            g.node("Reshape", [x.name, g.ints((0,) * p.axis + tuple(p.shape))], ys[0])
            return
        if p.reshape_type != 1:
            raise ValueError(f"unknown reshape_type {p.reshape_type} (known: 0 NCHW, "
                             f"1 TensorFlow)")
        if not (p.axis > 0 or p.shape[:1] == (0,)):
            raise UnsupportedError("a TensorFlow-order Reshape of the batch dim has no export")
        target = (0,) + _nhwc_shape(dims)[1:]
        y = g.node("Transpose", [x.name], perm=_nhwc_perm(x.ndim)) if x.ndim > 2 else x.name
        if len(dims) <= 2:
            g.node("Reshape", [y, g.ints(target)], ys[0])
            return
        y = g.node("Reshape", [y, g.ints(target)])
        g.node("Transpose", [y], ys[0], perm=[0, len(dims) - 1] + list(range(1, len(dims) - 1)))

    @classmethod
    def forward_int8(cls, p: ReshapeParams, res: None, q: Int8Context,
                     x: np.ndarray) -> np.ndarray:
        return cls.forward(p, res, x)   # pure data movement on the codes (spec int8 §12.9)
