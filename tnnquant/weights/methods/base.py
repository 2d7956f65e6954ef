"""The weight-method registry (spec int8 §8.3–8.5), separate from the blob methods so that
"ADMM for blobs" cannot be asked.

A weight method is a pure ``fn(w) -> (q, scale, zero_point)`` on already input-scale-folded
weights ``w`` shaped ``(O, K)`` float32, one row per quantization slice (an output channel,
or a single row ``(1, O·K)`` for merged weights, ``-t 2``): int8 ``q`` (O, K) in
[-127, 127], float32 ``scale`` (O,) and int8 ``zero_point`` (O,).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...errors import ConfigError, TnnQuantError
from ...exec.int8_math import rhaz
from ...registry import Registry

QMAX = 127  # weights use [-127, 127] (spec int8 §8.6)

WeightFn = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray, np.ndarray]"]


class WeightRangeError(TnnQuantError, ValueError):
    """A weight slice TNN cannot quantize with the chosen method (TNN aborts), e.g. an
    all-zero row for asymmetric MIN_MAX. The caller adds the layer with ``located``."""


@dataclass(frozen=True)
class WeightMethod:
    """A registered weight method: its name and TNN's ``-w`` code."""

    name: str
    code: int | None          # TNN's ``-w`` code; None for tnnquant's own methods
    fn: WeightFn

    def __call__(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(q int8 (O, K), scale float32 (O,), zero_point int8 (O,))`` for ``w`` (O, K)."""
        w = np.asarray(w)
        if w.ndim != 2:
            raise ValueError(f"weight method '{self.name}': expected (O, K) weights, got shape "
                             f"{w.shape}")
        return self.fn(np.ascontiguousarray(w, dtype=np.float32))


WEIGHT_METHODS: Registry[WeightMethod] = Registry("weight method")


def weight_method(name: str, *, code: int | None = None) -> Callable[[WeightFn], WeightFn]:
    """Register ``fn`` as weight method ``name`` (TNN ``-w code``; None: not a TNN method)."""
    def add(fn: WeightFn) -> WeightFn:
        if code is not None and any(m.code == code for _, m in WEIGHT_METHODS.items()):
            raise ValueError(f"weight method code {code} registered twice")
        WEIGHT_METHODS.add(name, WeightMethod(name, code, fn))
        return fn
    return add


def row_absmax(w: np.ndarray) -> np.ndarray:
    """``a = max(|min(row)|, |max(row)|)`` per row, float32 (spec int8 §8.3)."""
    if w.shape[1] == 0:
        return np.zeros(w.shape[0], np.float32)
    return np.maximum(np.abs(w.min(axis=1)), np.abs(w.max(axis=1))).astype(np.float32)


def quantize_rows(w: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``clamp(RHAZ(f32(w·inv)), -127, 127)`` as float32 with ``inv = f32(1/S)`` (``scale``
    broadcasts against ``w``). A subnormal or zero S makes 1/S inf, as in TNN's f32
    arithmetic: nonzero weights saturate to ±127 and zeros (0·inf, undefined in TNN's C cast)
    stay 0 — an all-zero row gives codes 0 — with no numpy warning."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        inv = (np.float32(1) / scale).astype(np.float32)
        scaled = np.multiply(w, inv, dtype=np.float32)
        if not np.isfinite(inv).all():
            scaled = np.where(w == 0, np.float32(0), scaled)
    # clamping to ±QMAX first gives the codes rounding and then clamping would (the rounding
    # is monotone and keeps ±QMAX), and keeps inf out of the rounding
    return rhaz(np.clip(scaled, -QMAX, QMAX, out=scaled))


def check_code(code: int) -> None:
    if code is None or not any(m.code == code for _, m in WEIGHT_METHODS.items()):
        known = ", ".join(f"{m.code} {n}" for n, m in WEIGHT_METHODS.items() if m.code is not None)
        raise ConfigError(f"unknown weight method code {code} (known: {known})")
