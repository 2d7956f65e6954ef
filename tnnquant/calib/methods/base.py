"""The blob-scale method registry and what every method shares (spec int8 §6).

A method is a pure ``fn(stats: BlobStats) -> (scale, zero_point)`` returning float32 and
int8 arrays with one entry per slot (C channels, or 1 when merged). It declares the
statistics it reads (``needs``) so the collector can plan the calibration passes:
``"range"`` (pass 1), ``"aciq_means"`` (pass 1) and ``"histogram"`` (pass 2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...errors import ConfigError
from ...registry import Registry
from ..observers import BlobStats

STAT_KINDS = ("range", "aciq_means", "histogram")
QMAX = 127  # symmetric blob scales map the threshold to 127 (spec int8 §6.1)

MethodFn = Callable[[BlobStats], "tuple[np.ndarray, np.ndarray]"]


@dataclass(frozen=True)
class ActMethod:
    """A registered blob-scale method: its name, TNN's ``-b`` code and the stats it needs."""

    name: str
    code: int | None          # TNN's ``-b`` code; None for tnnquant's own methods
    needs: frozenset
    fn: MethodFn
    has_exact: bool = False   # fn takes ``exact``: settle float ties in TNN's f32 arithmetic
    batch: Callable | None = None   # fn(list of stats, exact) -> list of results, if any
    # runs numba-compiled loops where numba is installed: its statistics may be gathered
    # with compiled loops too, at no extra start-up
    compiled: bool = False

    def _check(self, stats: BlobStats) -> None:
        missing = [k for k in sorted(self.needs) if not stats.has(k)]
        if missing:
            raise ValueError(f"blob method '{self.name}' needs {', '.join(missing)} statistics")

    def __call__(self, stats: BlobStats, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(scale float32 (slots,), zero_point int8 (slots,))``.

        Invalid slots (max-abs <= 1e-5) get scale 0 and zero point 0. For a merged blob TNN
        aborts in that case ("CalculateScale failed"); the caller decides (spec int8 §6).
        ``exact`` reproduces TNN's own float rounding where it can decide the result (only KL's
        search has such ties; the closed-form methods are exact anyway).
        """
        self._check(stats)
        return self.fn(stats, exact) if self.has_exact else self.fn(stats)

    def many(self, stats: list[BlobStats], exact: bool = False
             ) -> list[tuple[np.ndarray, np.ndarray]]:
        """The method on several blobs; a method registered with ``batch`` shares its work
        across them (KL searches all their channels in one threaded call)."""
        if self.batch is None:
            return [self(s, exact) for s in stats]
        for s in stats:
            self._check(s)
        return self.batch(stats, exact)


ACT_METHODS: Registry[ActMethod] = Registry("blob method")


def act_method(name: str, *, code: int | None = None, needs: tuple[str, ...],
               has_exact: bool = False, batch: Callable | None = None, compiled: bool = False
               ) -> Callable[[MethodFn], MethodFn]:
    """Register ``fn`` as blob method ``name`` (TNN ``-b code``, None for a method TNN does not
    have) reading ``needs``; with
    ``has_exact``, ``fn(stats, exact)`` has a TNN-f32-exact variant; ``batch`` computes
    several blobs at once; ``compiled``: it runs numba-compiled loops where installed."""
    unknown = set(needs) - set(STAT_KINDS)
    if unknown:
        raise ValueError(f"unknown statistics {sorted(unknown)} (known: {', '.join(STAT_KINDS)})")

    def add(fn: MethodFn) -> MethodFn:
        if code is not None and any(m.code == code for _, m in ACT_METHODS.items()):
            raise ValueError(f"blob method code {code} registered twice")
        ACT_METHODS.add(name, ActMethod(name, code, frozenset(needs), fn, has_exact, batch,
                                         compiled))
        return fn
    return add


def finish(scale: np.ndarray, zero_point: np.ndarray | int, valid: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Cast to (float32, int8) and zero the invalid slots (spec int8 §6)."""
    scale = np.where(valid, scale, 0).astype(np.float32)
    zp = np.where(valid, zero_point, 0).astype(np.int8)
    return scale, zp


def threshold_scale(threshold_bins: np.ndarray | int, interval: np.ndarray) -> np.ndarray:
    """``f32(((double)T + 0.5) / (double)interval / 127.0)``, 0 where interval == 0
    (spec int8 §6.1, §6.2 step 4)."""
    interval = np.asarray(interval, np.float32).astype(np.float64)
    t = np.asarray(threshold_bins, np.float64) + 0.5
    out = np.zeros(np.broadcast(t, interval).shape, np.float64)
    np.divide(t, interval, out=out, where=interval != 0)
    return (out / float(QMAX)).astype(np.float32)


def check_code(code: int) -> None:
    if code is None or not any(m.code == code for _, m in ACT_METHODS.items()):
        known = ", ".join(f"{m.code} {n}" for n, m in ACT_METHODS.items() if m.code is not None)
        hint = " (1 is ADMM, a weight method: TNN aborts)" if code == 1 else ""
        raise ConfigError(f"unknown blob method code {code}{hint} (known: {known})")
