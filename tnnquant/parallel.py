"""Independent blocks of NumPy work on threads (NumPy releases the GIL in its loops)."""
from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# NumPy work per block (array elements touched) below which map_blocks' threads cost more than
# they save: small calls hold the GIL most of their time, and two threads queue for it
PARALLEL_MIN_ELEMS = 1 << 18
# the same bound for blocks that each run a layer on an input of this many elements (the
# layer's run touches several times its input; measured on YOLOv8n's one-sample runs, whose
# 40x40 and 80x80 blobs then score the scale search's candidates on two threads: that stage
# ~10% faster, MobileNetV2 and PP-LCNet unchanged)
PARALLEL_MIN_LAYER_INPUT = PARALLEL_MIN_ELEMS // 4


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not on Linux
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=None)
def compiled_module(name: str) -> ModuleType | None:
    """The module ``name`` of numba-compiled loops when numba is installed and compiles (the
    ``fast`` extra), else None: the caller then runs its NumPy version, to the same results.
    None under NUMBA_DISABLE_JIT=1, numba's debugging switch, which would run the loops as
    Python: checked before the import, since the module's decorators read the switch."""
    try:
        import numba
        if numba.config.DISABLE_JIT:
            return None
        return importlib.import_module(name)
    except Exception:  # no numba, or one that cannot compile here
        return None


def loaded_compiled_module(name: str) -> ModuleType | None:
    """``compiled_module(name)`` if numba is already imported (a compiled search loaded it),
    else None: for loops whose gain alone would not repay numba's start-up (~0.3 s and
    ~100 MB of memory)."""
    return compiled_module(name) if "numba" in sys.modules else None


def run_blocks(task: Callable[[T], None], blocks: Sequence[T], threads: int | None = None
               ) -> None:
    """Call ``task`` on every block, on ``threads`` threads (default: the usable CPUs), this
    thread one of them (``_together``); in this thread alone when one suffices."""
    workers = min(threads or usable_cpus(), len(blocks))
    if workers <= 1 or getattr(_in_pool, "active", False):
        for block in blocks:
            task(block)
        return
    if threads is None:
        _together(task, blocks, _shared_pool(), workers - 1)
        return
    with ThreadPoolExecutor(workers - 1) as pool:
        _together(task, blocks, pool, workers - 1)


def map_blocks(task: Callable[[T], R], blocks: Sequence[T], parallel: bool = True) -> list[R]:
    """``[task(b) for b in blocks]``, the calls spread over the usable CPUs (one shared pool of
    threads, and this thread: the recipe's passes call this thousands of times on small
    blocks). The results keep the blocks' order, so a caller that combines them in that order
    gets the same numbers on any thread count. Called from a block's task, it runs in that
    thread (a task waiting for the pool it occupies could wait forever). ``parallel=False``
    runs them in this thread: for small blocks, threads cost more than they save."""
    workers = min(usable_cpus(), len(blocks))
    if not parallel or workers <= 1 or getattr(_in_pool, "active", False):
        return [task(block) for block in blocks]
    return _together(task, blocks, _shared_pool(), workers - 1)


def _together(task: Callable[[T], R], blocks: Sequence[T], pool: ThreadPoolExecutor,
              helpers: int) -> list[R]:
    """The blocks taken in turn by this thread and ``helpers`` of the pool's threads, their
    results in the blocks' order. The caller works instead of waiting: its own malloc heap,
    which holds what earlier passes freed, then serves its blocks' arrays (a waiting caller
    left that memory idle while every worker's heap grew). The first error stops the others
    from taking more blocks and is raised."""
    results: list = [None] * len(blocks)
    order = iter(range(len(blocks)))
    lock = threading.Lock()
    failed = threading.Event()

    def drain() -> None:
        was_active = getattr(_in_pool, "active", False)
        _in_pool.active = True   # nested calls from the blocks run in place
        try:
            while not failed.is_set():
                with lock:
                    k = next(order, None)
                if k is None:
                    return
                try:
                    results[k] = task(blocks[k])
                except BaseException:
                    failed.set()
                    raise
        finally:
            _in_pool.active = was_active

    futures = [pool.submit(drain) for _ in range(helpers)]
    errors = []
    try:
        drain()
    except BaseException as err:   # noqa: BLE001 - re-raised below, once the helpers stop
        errors.append(err)
    for future in futures:
        try:
            future.result()
        except BaseException as err:   # noqa: BLE001 - re-raised below
            errors.append(err)
    if errors:
        raise errors[0]
    return results


_in_pool = threading.local()   # .active in a thread running blocks
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(usable_cpus() - 1, 1), thread_name_prefix="tnnquant")
        return _pool
