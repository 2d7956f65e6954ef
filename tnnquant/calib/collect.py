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
from typing import Callable, Iterable, Iterator

import numpy as np

from ..errors import TnnQuantError
from ..exec.executor import Executor
from ..ir.graph import BlobScale, Graph, Layer
from ..layers.inner_product import InnerProduct
from .methods import ACT_METHODS, effective_method
from .observers import (HIST_BINS, AciqMeansObserver, BlobStats, FoldRangeObserver,
                        HistogramObserver, RangeObserver, RangeStats)

Batches = Callable[[], Iterator[dict[str, np.ndarray]]]
HIST_COUNT_BYTES = 4   # int32 counts, as TNN's f32 bins
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


DEFAULT_HIST_BUDGET = 32 << 20   # bytes of histograms alive at once (QuantConfig.hist_memory_mb)
OBSERVED_BYTES = 16 << 20   # observed blobs of one executor run (batches are split to fit)


def samples_per_run(sample_bytes: int, budget: int = OBSERVED_BYTES) -> int:
    """How many samples one executor run takes so that their blobs (``sample_bytes`` each)
    stay within ``budget``: one at least."""
    return max(1, budget // max(sample_bytes, 1))


def split_batch(batch: dict[str, np.ndarray], size: int) -> Iterator[dict[str, np.ndarray]]:
    """``batch`` in consecutive pieces of at most ``size`` samples."""
    n = len(next(iter(batch.values())))
    for start in range(0, n, size):
        yield {name: value[start:start + size] for name, value in batch.items()}


class StatsCollector:
    """Runs the calibration passes and yields per-blob statistics."""

    def __init__(self, graph: Graph, method: str, per_tensor_blobs: bool,
                 fp32: str = "fast", hist_budget_bytes: int = DEFAULT_HIST_BUDGET,
                 folds: int = 0) -> None:
        ACT_METHODS.get(method)
        self.graph = graph
        self.method = method
        self.forced = calibrated_blobs(graph)
        self.per_tensor_blobs = per_tensor_blobs
        self.network_inputs = {s.name for s in graph.inputs}
        self.plans: dict[str, BlobPlan] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.ranges: dict[str, RangeStats] = {}
        self.folds = folds              # > 0: also keep each fold's ranges (fold_ranges)
        self.fold_ranges: dict[str, list[RangeStats]] = {}
        self.samples = 0
        self.hist_budget_bytes = hist_budget_bytes
        # for one run; fp32 kernels "naive" reproduce TNN bit for bit
        self.executor: Executor | None = Executor(graph, fp32=fp32)
        self.numpy_reason: str | None = None   # why the passes ran on numpy, not onnxruntime

    def _plan(self, name: str, shape: tuple[int, ...]) -> BlobPlan:
        dims = (1,) + tuple(shape[1:])
        return BlobPlan(name, dims, self.per_tensor_blobs or self.forced[name],
                        effective_method(self.method, dims, name in self.network_inputs))

    def _needs(self, plan: BlobPlan) -> frozenset:
        return ACT_METHODS.get(plan.method).needs

    def _compiled(self, name: str) -> bool | None:
        """Count the blob's histogram compiled if its method loads numba anyway (True), else
        only if numba is already loaded (None)."""
        return True if ACT_METHODS.get(self.plans[name].method).compiled else None

    def run(self, batches: Batches, progress: Progress | None = None
            ) -> Iterator[dict[str, BlobStats]]:
        """Calibration passes; yields the statistics of finished blobs, group by group.

        Pass 1 collects every blob's range (and ACIQ means) and yields the blobs that need
        nothing more. The histograms are then filled in groups of at most
        ``hist_budget_bytes`` (TNN's f32 bins take 8 KiB per channel; a big model has
        10-20k channels): each group costs one more float pass over the samples, and is
        yielded, and can be dropped, before the next one is allocated.
        """
        try:
            yield from self._run(batches, progress)
        except MemoryError as err:
            raise TnnQuantError(f"out of memory for the calibration statistics ({err}); a "
                                f"smaller --batch or --hist-memory needs less") from None

    @property
    def one_sample_at_a_time(self) -> bool:
        """Whether the passes will run the samples one by one (onnxruntime, ``_parts``), so
        that batching them gains nothing. Asked before ``run``."""
        return self.executor.backend == "onnxruntime"

    def _run(self, batches: Batches, progress: Progress | None
             ) -> Iterator[dict[str, BlobStats]]:
        executor = self.executor

        def make_pass1(name: str, shape: tuple[int, ...]) -> list:
            self.shapes[name] = (1,) + tuple(shape[1:])
            plan = self.plans[name] = self._plan(name, shape)
            observers: list = [RangeObserver(plan.slots)]
            if "aciq_means" in self._needs(plan):
                observers.append(AciqMeansObserver(plan.slots))
            if self.folds:
                folds[name] = FoldRangeObserver(plan.slots, self.folds)
                observers.append(folds[name])
            return observers

        folds: dict[str, FoldRangeObserver] = {}

        if "aciq_means" in ACT_METHODS.get(self.method).needs:
            pass1 = _Pass(lambda name, x: make_pass1(name, x.shape))
            self.samples = self._forward(executor, batches, pass1.hook, "ranges", progress,
                                         set(self.forced))
            observers = pass1.observers
        else:   # ranges only: the executor reduces each blob where it is made
            observers = {}
            self.samples = 0
            for batch in batches():
                for part in self._parts(executor, batch, ()):
                    for name, (lo, hi, shape) in executor.extremes(part, self.forced).items():
                        obs = observers.get(name) or observers.setdefault(
                            name, make_pass1(name, shape))
                        for o in obs:   # ranges only: no AciqMeansObserver here
                            o.update_extremes(lo, hi, int(np.prod(shape[2:])))
                self.samples += len(next(iter(batch.values())))
                if progress:
                    progress("ranges", self.samples)
        executor.release()   # the scales are computed between passes: free its memory
        self.ranges = {n: obs[0].result() for n, obs in observers.items()}
        self.fold_ranges = {n: o.result() for n, o in folds.items()}
        means = {n: o.result() for n, obs in observers.items() for o in obs[1:]
                 if isinstance(o, AciqMeansObserver)}

        need_hist = [n for n, plan in self.plans.items() if "histogram" in self._needs(plan)]
        yield {n: BlobStats(self.ranges[n], None, means.get(n))
               for n in self.ranges if n not in set(need_hist)}
        groups = self._histogram_groups(need_hist)
        for k, group in enumerate(groups):
            hists: dict[str, HistogramObserver] = {}
            pass2 = _Pass(lambda name, x: [hists.setdefault(
                name, HistogramObserver(self.ranges[name], self._compiled(name)))]
                if name in group else [])
            stage = "histograms" if len(groups) == 1 else f"histograms {k + 1}/{len(groups)}"
            self._forward(executor, batches, pass2.hook, stage, progress, group)
            executor.release()
            yield {n: BlobStats(self.ranges[n], hists[n].result(), means.get(n)) for n in group}
        self.numpy_reason = executor.numpy_reason
        self.executor = None   # its exported graph holds weights the later passes do not need

    def _histogram_groups(self, names: list[str]) -> list[set[str]]:
        """Consecutive blobs whose histograms fit the budget together (a blob larger than the
        budget is a group of its own)."""
        groups: list[set[str]] = []
        used = self.hist_budget_bytes
        for name in names:
            size = self.plans[name].slots * HIST_BINS * HIST_COUNT_BYTES
            if used + size > self.hist_budget_bytes:
                groups.append(set())
                used = 0
            groups[-1].add(name)
            used += size
        return groups

    def _parts(self, executor: Executor, batch: dict[str, np.ndarray], observe
               ) -> Iterator[dict[str, np.ndarray]]:
        """``batch`` in the pieces the executor runs best. onnxruntime runs one sample as
        fast per sample as a batch, while the activations it allocates, and the observed
        blobs it returns all at once, grow with the batch: it gets one sample at a time. The
        numpy kernels prefer batches, kept to ``OBSERVED_BYTES`` of observed blobs."""
        if executor.backend == "onnxruntime":
            step = 1
        else:
            step = samples_per_run(self.sample_bytes(observe))
        yield from split_batch(batch, step)

    def sample_bytes(self, blobs: Iterable[str] | None = None) -> int:
        """Float32 bytes of one sample's ``blobs`` (default: every calibrated blob)."""
        names = self.shapes if blobs is None else blobs
        return sum(int(np.prod(self.shapes.get(b, (1,)))) * 4 for b in names)

    def _forward(self, executor: Executor, batches: Batches, hook, stage: str,
                 progress: Progress | None, observe: set[str]) -> int:
        """One pass over the samples, ``hook`` seeing the ``observe`` blobs."""
        done = 0
        for batch in batches():
            for part in self._parts(executor, batch, observe):
                executor.run(part, hooks=[hook], observe=observe)
            done += len(next(iter(batch.values())))
            if progress:
                progress(stage, done)
        return done


def blob_scales(plans: dict[str, BlobPlan], stats: dict[str, BlobStats],
                exact: bool = False) -> dict[str, BlobScale]:
    """Compute the scale and zero point of every blob in ``stats`` with its effective method
    (spec int8 §6);
    ``exact`` settles float ties as TNN's f32 arithmetic does. Blobs sharing a method are
    computed together (KL searches all their channels at once)."""
    by_method: dict[str, list[str]] = {}
    for name in stats:
        by_method.setdefault(plans[name].method, []).append(name)
    out = {}
    for method, names in by_method.items():
        results = ACT_METHODS.get(method).many([stats[n] for n in names], exact)
        for name, (scale, zero_point) in zip(names, results):
            out[name] = BlobScale(scale, zero_point)
    return {name: out[name] for name in stats}
