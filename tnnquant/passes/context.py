"""What the quantizer's passes may read besides the graph: the typed context of a recipe."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from ..ir.graph import BlobScale, Graph

if TYPE_CHECKING:
    from ..config import QuantConfig
    from .quantize_layers import LayerQuantOptions

Batches = Callable[[], Iterator[dict[str, np.ndarray]]]
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

    def tick(self, stage: str, done: int) -> None:
        if self.progress is not None:
            self.progress(stage, done)


def one_at_a_time(batches: Batches) -> Batches:
    """The same samples, in order, as batches of one. Passes that run the whole network with
    hooks, or simulate it, then hold one sample's blobs at a time, not a batch's: the
    executor hands a run's observed blobs to the hooks together, and the simulator keeps a
    blob until its last reader ran (YOLOv8n at 640x640: up to 6.5 MB per sample and blob)."""
    def samples() -> Iterator[dict[str, np.ndarray]]:
        for batch in batches():
            for k in range(len(next(iter(batch.values())))):
                yield {name: value[k:k + 1] for name, value in batch.items()}
    return samples
