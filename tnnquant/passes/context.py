"""What the quantizer's passes may read besides the graph: the typed context of a recipe."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from ..calib.collect import OBSERVED_BYTES, samples_per_run, split_batch
from ..ir.graph import BlobScale, Graph

if TYPE_CHECKING:
    from ..config import QuantConfig
    from .quantize_layers import LayerQuantOptions

Batches = Callable[[], Iterator[dict[str, np.ndarray]]]
RUN_BYTES = OBSERVED_BYTES   # a run's blobs, as the calibration passes keep them
Progress = Callable[[str, int], None]   # (stage, items done in this stage)


@dataclass
class PassContext:
    """Shared, read-mostly state of one ``quantize`` run."""

    config: "QuantConfig"
    float_graph: Graph                  # the fused float graph that was calibrated
    batches: Batches                    # the calibration batches, re-iterable
    weight_options: "LayerQuantOptions"
    # blob -> alternative scales (label -> BlobScale), computed from the calibration
    # statistics for the scale search; the graph's own blob scale is always a candidate too
    candidates: dict[str, dict[str, BlobScale]] = field(default_factory=dict)
    # MinMax scales of every calibrated blob from the range pass, where the fallback check's
    # recipe starts: on all samples, and per fold fitted on the samples outside the fold
    minmax_scales: dict[str, BlobScale] = field(default_factory=dict)
    held_out_minmax_scales: list[dict[str, BlobScale]] = field(default_factory=list)
    progress: Progress | None = None
    warn: Callable[[str], None] = lambda message: None
    notes: list[str] = field(default_factory=list)   # what the recipe decided, for summaries
    sample_bytes: int = 0   # one sample's calibrated blobs in float32 (0: unknown)
    # calibrated minimum of every calibrated blob, per slot (passes/zero_points.py), on all
    # samples and per fold on the samples outside the fold (the fallback check's recipe)
    minima: dict[str, np.ndarray] = field(default_factory=dict)
    held_out_minima: list[dict[str, np.ndarray]] = field(default_factory=list)
    # shape of one sample of every calibrated blob, (1, C, ...)
    blob_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def tick(self, stage: str, done: int) -> None:
        if self.progress is not None:
            self.progress(stage, done)

    def runs(self, batches: Batches | None = None) -> Batches:
        """``batches`` (default: the calibration batches) split into runs whose blobs stay
        within ``RUN_BYTES``, for the passes that run the whole network with hooks or simulate
        it: the executor hands a run's observed blobs to the hooks together, and the
        simulator keeps a blob until its last reader ran, so a batch of large samples held a
        batch's worth of every blob (YOLOv8n at 640x640: 6.5 MB per sample for its largest
        blob; its default recipe peaked at ~1.1 GB with batches of 8, ~0.73 GB one by one).
        Small samples keep their batches: a run per sample costs time there."""
        source = batches or self.batches

        def split() -> Iterator[dict[str, np.ndarray]]:
            for batch in source():
                yield from self.split(batch)
        return split

    def split(self, batch: dict[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
        """One batch in the runs of ``runs``."""
        return split_batch(batch, samples_per_run(self.sample_bytes, RUN_BYTES))
