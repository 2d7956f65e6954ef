"""Independent blocks of NumPy work on threads (NumPy releases the GIL in its loops)."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not on Linux
        return os.cpu_count() or 1


def run_blocks(task: Callable[[T], None], blocks: Sequence[T], threads: int | None = None
               ) -> None:
    """Call ``task`` on every block, on ``threads`` threads (default: the usable CPUs), in
    this thread when one suffices."""
    workers = min(threads or usable_cpus(), len(blocks))
    if workers <= 1:
        for block in blocks:
            task(block)
        return
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(task, blocks))
