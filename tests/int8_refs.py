"""Independent scalar references for TNN's int8 arithmetic (spec int8 §0, §12, §13), written
element by element from the spec text with numpy float32 scalars and exact fractions, so the
vectorized kernels are checked against something that shares none of their code."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

f32 = np.float32


def float2int8(x: float) -> int:
    """spec §0: t = f32(x ± 0.5f); t = t < 127 ? t : 127; t = t > -128 ? t : -128; trunc."""
    x = f32(x)
    t = x + f32(0.5) if x >= 0 else x - f32(0.5)
    t = t if t < 127 else f32(127)
    t = t if t > -128 else f32(-128)
    return int(t)


def x86_round(x: float) -> int:
    """spec §13: ±0.5 in f32, cvttps2dq (NaN / out of int32 range -> INT32_MIN), packs."""
    x = f32(x)
    t = x + f32(0.5) if x >= 0 else x - f32(0.5)
    if math.isnan(t) or not -2.0**31 <= float(t) < 2.0**31:
        return -128
    return max(-128, min(127, int(t)))


def rounding(device: str):
    return x86_round if device == "x86" else float2int8


def round_f32(value: Fraction) -> f32:
    """The binary32 nearest to an exact rational (ties to even)."""
    guess = f32(float(value))
    candidates = [np.nextafter(guess, f32(-np.inf)), guess, np.nextafter(guess, f32(np.inf))]
    best = min(candidates, key=lambda c: (abs(Fraction(float(c)) - value),
                                          int(np.array(c).view(np.int32)) & 1))
    return f32(best)


def fma(a: float, b: float, c: float) -> f32:
    """f32(a * b + c) with one rounding, from exact rationals."""
    return round_f32(Fraction(float(f32(a))) * Fraction(float(f32(b))) + Fraction(float(f32(c))))


def conv_sums(x: np.ndarray, w: np.ndarray, group: int, stride: tuple[int, int],
              pad: tuple[int, int], dilation: int = 1) -> np.ndarray:
    """int64 sums of an NCHW int input and a [O][C/g][kH][kW] int filter, zero padding,
    explicit loops over output positions and taps (spec §12.3 step 1)."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    og = o // group
    oh = (h + 2 * pad[0] - dilation * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + 2 * pad[1] - dilation * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, oh, ow), np.int64)
    xp = np.zeros((n, c, h + 2 * pad[0], wd + 2 * pad[1]), np.int64)
    xp[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + wd] = x
    for oc in range(o):
        g = oc // og
        for y in range(oh):
            for xx in range(ow):
                for i in range(kh):
                    for j in range(kw):
                        r, col = y * stride[0] + i * dilation, xx * stride[1] + j * dilation
                        out[:, oc, y, xx] += xp[:, g * cg:(g + 1) * cg, r, col] @ \
                            w[oc, :, i, j].astype(np.int64)
    return out


def requantize(acc: int, bias: int, m: float, device: str, act: str | None = None,
               r6: int = 127, add: int | None = None, a: float = 0.0,
               add_first: bool = True) -> int:
    """One conv output element, spec §12.3 / §13, x86 or NAIVE (zero points 0). The int32
    sum wraps around as TNN's kernels' int32 adds do."""
    v = f32((acc + bias + 2**31) % 2**32 - 2**31) * f32(m)

    def plus(v: f32) -> f32:
        return fma(add, a, v) if device == "x86" else v + f32(add) * f32(a)

    if add is not None and add_first:
        v = plus(v)
    if act == "relu":
        v = max(v, f32(0))
    elif act == "relu6":
        if device == "naive":
            return max(0, min(float2int8(v), r6))
        v = min(max(v, f32(0)), f32(r6))
    if add is not None and not add_first:
        v = plus(v)
    return rounding(device)(v)
