"""How a blob's int8 range sits on its float distribution: the blob statistics of calibration
(ranges, 2048-bin |v| histograms, spec int8 §5) gathered on any set of samples for a few
blobs, and what the registered blob-scale methods would pick from them.

The methods shown are MinMax (no clipping: the reference) and every registered method that
reads the histogram (the clipping searches: KL, and whatever is registered next), so a new
method appears in the report without a change here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from ..calib.methods import ACT_METHODS, ActMethod
from ..calib.methods.base import QMAX
from ..calib.observers import (AciqMeansObserver, BlobStats, HistogramObserver,
                               RangeObserver, RangeStats)
from ..exec.executor import Executor
from ..ir.graph import BlobScale, Graph, Layer

Batches = Callable[[], Iterable[Mapping[str, np.ndarray]]]
REFERENCE_METHOD = "minmax"
QMIN = -128   # int8 activations span [-128, 127] (spec int8 §0)


def shown_methods() -> dict[str, ActMethod]:
    """MinMax and every registered method that reads the histogram, in registration order."""
    return {name: m for name, m in ACT_METHODS.items()
            if name == REFERENCE_METHOD or "histogram" in m.needs}


@dataclass(frozen=True)
class Clip:
    """The real values an int8 blob can hold, per slot: ``(127 - zp)·scale`` at the top,
    ``(-128 - zp)·scale`` at the bottom (``real = scale·(q - zp)``, spec int8 §6.6). A
    symmetric scale's threshold is the top end, ``127·scale``."""

    scale: np.ndarray        # float32 (slots,)
    zero_point: np.ndarray   # int (slots,): stored, plus a folded one (BlobScale)

    @classmethod
    def of(cls, blob_scale: BlobScale) -> "Clip":
        folded = blob_scale.folded_zero_point
        return cls(blob_scale.scale, blob_scale.zero_points.astype(np.int32)
                   + (0 if folded is None else folded))

    @property
    def symmetric(self) -> bool:
        return not self.zero_point.any()

    @property
    def top(self) -> np.ndarray:
        return (QMAX - self.zero_point.astype(np.float64)) * self.scale

    @property
    def bottom(self) -> np.ndarray:
        return (QMIN - self.zero_point.astype(np.float64)) * self.scale


def blob_statistics(graph: Graph, batches: Batches, slots: Mapping[str, int],
                    needs: frozenset = frozenset({"range", "histogram"}),
                    ranges: Mapping[str, RangeStats] | None = None) -> dict[str, BlobStats]:
    """Statistics of the blobs ``slots`` names (blob -> 1 for per-tensor, C for per-channel)
    over ``batches`` of ``graph``'s float run, gathered as calibration gathers them: a pass for
    ranges (and ACIQ means if ``needs`` them), then one for histograms if needed. ``ranges``
    already gathered on the same batches save the first pass when no ACIQ means are needed."""
    executor = Executor(graph)
    range_stats = dict(ranges or {})
    pass1 = {name: RangeObserver(n) for name, n in slots.items() if name not in range_stats}
    means = ({name: AciqMeansObserver(n) for name, n in slots.items()}
             if "aciq_means" in needs else {})
    if pass1 or means:
        _forward(executor, batches, [pass1, means])
    range_stats.update({name: obs.result() for name, obs in pass1.items()})
    hists = {}
    if "histogram" in needs:
        hists = {name: HistogramObserver(range_stats[name]) for name in slots}
        _forward(executor, batches, [hists])
    return {name: BlobStats(range_stats[name],
                            hists[name].result() if name in hists else None,
                            means[name].result() if name in means else None)
            for name in slots}


def _forward(executor: Executor, batches: Batches, observers: list[dict]) -> None:
    def hook(name: str, x: np.ndarray, layer: Layer | None) -> None:
        for group in observers:
            if name in group:
                group[name].update(x)
    for batch in batches():
        executor.run(batch, hooks=[hook])


def method_clips(stats: Sequence[BlobStats], methods: Mapping[str, ActMethod] | None = None
                 ) -> list[dict[str, Clip]]:
    """What each method (default: :func:`shown_methods`) would pick from each blob's
    ``stats``; a method computes all the blobs at once (KL searches their channels together)."""
    methods = shown_methods() if methods is None else methods
    picks: list[dict[str, Clip]] = [{} for _ in stats]
    for name, method in methods.items():
        for blob, result in zip(picks, method.many(list(stats))):
            blob[name] = Clip(*result)
    return picks
