"""Blob statistics over the calibration set (spec int8 §4, §5).

Which blobs get statistics, and how, follows TNN's tool: every input and output blob of a
Convolution, Add, Concat, InnerProduct, ReLU or Pooling layer; per-tensor when asked or when
the blob touches an InnerProduct; KL/ACIQ fall back to MinMax for H·W < 100 and for network
inputs. Pass 1 collects ranges (and ACIQ means); pass 2, only when some blob's method needs a
histogram, re-runs the float model to fill 2048-bin histograms from those ranges. Both passes
stream batches: memory does not grow with the number of samples.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from ..exec.executor import Executor
from ..ir.graph import BlobScale, Graph, Layer
from ..layers.inner_product import InnerProduct
from .methods import ACT_METHODS, effective_method
from .observers import (AciqMeansObserver, BlobStats, HistogramObserver, RangeObserver,
                        RangeStats)

Batches = Callable[[], Iterator[dict[str, np.ndarray]]]
Progress = Callable[[str, int], None]   # (stage, samples done in this stage)


@dataclass(frozen=True)
class BlobPlan:
    """How one blob is calibrated; ``method`` is the effective one (spec int8 §4)."""

    name: str
    dims: tuple[int, ...]
    per_tensor: bool
    method: str

    @property
    def slots(self) -> int:
        return 1 if self.per_tensor or len(self.dims) < 2 else self.dims[1]


def calibrated_blobs(graph: Graph) -> dict[str, bool]:
    """Blob name -> forced per-tensor, for every blob TNN's tool calibrates (spec int8 §4)."""
    blobs: dict[str, bool] = {}
    for layer in graph.layers:
        if not layer.kind.collects_stats:
            continue
        for b in layer.inputs + layer.outputs:
            if b not in graph.constants:
                blobs[b] = blobs.get(b, False) or layer.kind is InnerProduct
    return blobs


class _Pass:
    """Observers of one pass, created on first sight of each blob (its dims are then known)."""

    def __init__(self, make: Callable[[str, np.ndarray], list]) -> None:
        self.make = make
        self.observers: dict[str, list] = {}

    def hook(self, name: str, x: np.ndarray, layer: Layer | None) -> None:
        obs = self.observers.get(name)
        if obs is None:
            obs = self.observers[name] = self.make(name, x)
        for o in obs:
            o.update(x)


class StatsCollector:
    """Runs the calibration passes and returns per-blob statistics."""

    def __init__(self, graph: Graph, method: str, per_tensor_blobs: bool,
                 fp32: str = "fast") -> None:
        ACT_METHODS.get(method)
        self.graph = graph
        self.fp32 = fp32                # Executor fp32 kernels; "naive" reproduces TNN bit for bit
        self.method = method
        self.forced = calibrated_blobs(graph)
        self.per_tensor_blobs = per_tensor_blobs
        self.network_inputs = {s.name for s in graph.inputs}
        self.plans: dict[str, BlobPlan] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.samples = 0

    def _plan(self, name: str, x: np.ndarray) -> BlobPlan:
        dims = (1,) + tuple(x.shape[1:])
        return BlobPlan(name, dims, self.per_tensor_blobs or self.forced[name],
                        effective_method(self.method, dims, name in self.network_inputs))

    def _needs(self, plan: BlobPlan) -> frozenset:
        return ACT_METHODS.get(plan.method).needs

    def run(self, batches: Batches, progress: Progress | None = None) -> dict[str, BlobStats]:
        executor = Executor(self.graph, fp32=self.fp32)

        def make_pass1(name: str, x: np.ndarray) -> list:
            self.shapes[name] = (1,) + tuple(x.shape[1:])
            if name not in self.forced:
                return []
            plan = self.plans[name] = self._plan(name, x)
            observers: list = [RangeObserver(plan.slots)]
            if "aciq_means" in self._needs(plan):
                observers.append(AciqMeansObserver(plan.slots))
            return observers

        pass1 = _Pass(make_pass1)
        self.samples = self._forward(executor, batches, pass1.hook, "ranges", progress)
        ranges: dict[str, RangeStats] = {n: obs[0].result() for n, obs in
                                         pass1.observers.items() if obs}
        means = {n: obs[1].result() for n, obs in pass1.observers.items() if len(obs) > 1}

        need_hist = {n for n, plan in self.plans.items() if "histogram" in self._needs(plan)}
        hists: dict[str, HistogramObserver] = {}
        if need_hist:
            pass2 = _Pass(lambda name, x: [hists.setdefault(name, HistogramObserver(ranges[name]))]
                          if name in need_hist else [])
            self._forward(executor, batches, pass2.hook, "histograms", progress)
        return {n: BlobStats(ranges[n], hists[n].result() if n in hists else None, means.get(n))
                for n in ranges}

    @staticmethod
    def _forward(executor: Executor, batches: Batches, hook, stage: str,
                 progress: Progress | None) -> int:
        done = 0
        for batch in batches():
            executor.run(batch, hooks=[hook])
            done += len(next(iter(batch.values())))
            if progress:
                progress(stage, done)
        return done


def blob_scales(plans: dict[str, BlobPlan], stats: dict[str, BlobStats],
                exact: bool = False) -> dict[str, BlobScale]:
    """Compute every blob's scale and zero point with its effective method (spec int8 §6);
    ``exact`` settles float ties as TNN's f32 arithmetic does."""
    out = {}
    for name, plan in plans.items():
        scale, zero_point = ACT_METHODS.get(plan.method)(stats[name], exact)
        out[name] = BlobScale(scale, zero_point)
    return out
