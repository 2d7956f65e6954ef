"""Small helpers shared by the fp32 kernels."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..exec.onnx_model import OnnxGraph
    from .base import Value

INT_MAX = 2**31 - 1
INT_MIN = -2**31


def axis_index(axis: int, ndim: int, what: str = "axis") -> int:
    """A TNN axis (negative counts from the end) as an index in ``[0, ndim)``."""
    if not -ndim <= axis < ndim:
        raise ValueError(f"{what} {axis} is out of range for a {ndim}-d input")
    return axis + ndim if axis < 0 else axis


def channel_vector(values: np.ndarray, x: np.ndarray, what: str) -> np.ndarray:
    """Per-channel values shaped to broadcast along axis 1 of ``x``; a single value applies to
    every channel (as TNN does for a 1-element BatchNormCxx scale, spec model-format §2.5)."""
    values = np.asarray(values, dtype=np.float32).reshape(-1)
    if values.size == 1:
        return values.reshape(())
    channels = x.shape[1] if x.ndim > 1 else None
    if values.size != channels:
        raise ValueError(f"{what} has {values.size} values, the input has "
                         f"{channels if channels is not None else 'no'} channels")
    return values.reshape((channels,) + (1,) * (x.ndim - 2))


def standardize(x: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    """``(x - mean) / sqrt(var + eps)`` over ``axes`` with the biased variance, in float32."""
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    var = np.mean(np.square(centered), axis=axes, keepdims=True)
    return centered / np.sqrt(var + np.float32(eps))


PAD_MODES = {0: "constant", 1: "reflect", 2: "edge"}


def _check_pad(shape: tuple[int, ...], widths: list[tuple[int, int]], mode: int) -> None:
    if mode not in PAD_MODES:
        raise ValueError(f"unknown pad type {mode} (known: 0 constant, 1 reflect, 2 edge)")
    if any(w < 0 for pair in widths for w in pair):
        raise ValueError(f"negative pads {widths} are not supported")
    for dim, (begin, end) in zip(shape, widths):
        if mode == 1 and max(begin, end) >= dim:
            raise ValueError(f"reflect pads {begin}, {end} must be smaller than the dimension "
                             f"{dim}")


def pad(x: np.ndarray, widths: list[tuple[int, int]], mode: int, value: float) -> np.ndarray:
    """Pad/PadV2 with TNN's mode codes: 0 constant, 1 reflect, 2 edge (spec §3.3.20)."""
    _check_pad(x.shape, widths, mode)
    if mode == 0:
        return np.pad(x, widths, mode="constant", constant_values=np.float32(value))
    return np.pad(x, widths, mode=PAD_MODES[mode])


def onnx_pad(g: "OnnxGraph", x: "Value", widths: list[tuple[int, int]], mode: int,
             value: float, out: str) -> None:
    """``pad`` as an ONNX Pad (whose constant, reflect and edge modes are numpy's)."""
    _check_pad(x.shape, widths, mode)
    pads = g.ints([b for b, _ in widths] + [e for _, e in widths])
    inputs = [x.name, pads] + ([g.const(np.float32(value))] if mode == 0 else [])
    g.node("Pad", inputs, out, mode=PAD_MODES[mode])


def check_int8_pad_value(pad_type: int, value: float) -> None:
    """int8 padding moves codes (spec int8 §12.9): code 0 is real 0 only without a zero point,
    and the spec does not say how TNN converts another constant to a code."""
    if pad_type == 0 and value != 0:
        raise ValueError(f"int8 constant padding with value {value:g} is not supported")


def onnx_slice(g: "OnnxGraph", x: "Value", index: list[slice], out: str) -> None:
    """``x[index]`` (normalised slices of its static shape) as an ONNX Slice. Axes sliced
    whole are left out, so the batch dim (whole at any batch size in a symbolic-batch model,
    where every blob's dim 0 scales with the batch) is never pinned."""
    starts, ends, axes, steps = [], [], [], []
    for axis, (s, dim) in enumerate(zip(index, x.shape)):
        start, stop, step = s.indices(dim)
        if (start, stop, step) == (0, dim, 1):
            continue
        starts.append(start)
        # a reverse slice down to index 0 ends "before 0": ONNX clamps INT64_MIN to -1
        ends.append(stop if stop >= 0 else np.iinfo(np.int64).min)
        axes.append(axis)
        steps.append(step)
    if not axes:
        g.node("Identity", [x.name], out)
        return
    g.node("Slice", [x.name, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)], out)
