"""MIN_MAX blob scales, TNN ``-b 0`` (spec int8 §6.1)."""
from __future__ import annotations

import numpy as np

from ..observers import HIST_BINS, BlobStats
from .base import act_method, finish, threshold_scale


@act_method("minmax", code=0, needs=("range",))
def minmax(stats: BlobStats) -> tuple[np.ndarray, np.ndarray]:
    """``scale = f32((2047 + 0.5) / interval / 127)`` in double, ``interval = f32(2048/max)``.

    Not ``max/127``: the histogram interval is already rounded to f32. Zero point 0.
    """
    r = stats.range
    return finish(threshold_scale(HIST_BINS - 1, r.interval), 0, r.valid)
