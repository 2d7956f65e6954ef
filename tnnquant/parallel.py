"""Independent blocks of NumPy work on threads (NumPy releases the GIL in its loops)."""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# NumPy work per block (array elements touched) below which map_blocks' threads cost more than
# they save: small calls hold the GIL most of their time, and two threads queue for it
PARALLEL_MIN_ELEMS = 1 << 18


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not on Linux
        return os.cpu_count() or 1


def run_blocks(task: Callable[[T], None], blocks: Sequence[T], threads: int | None = None
               ) -> None:
    """Call ``task`` on every block, on ``threads`` threads (default: the usable CPUs), this
    thread one of them: it takes blocks too, so its own malloc heap, which holds what the
    earlier passes freed, serves their arrays (a waiting caller left that memory idle while
    each worker's heap grew)."""
    workers = min(threads or usable_cpus(), len(blocks))
    if workers <= 1:
        for block in blocks:
            task(block)
        return
    pending = iter(blocks)
    lock = threading.Lock()
    failed = threading.Event()

    def drain() -> None:
        while not failed.is_set():
            with lock:
                block = next(pending, _DONE)
            if block is _DONE:
                return
            try:
                task(block)
            except BaseException:
                failed.set()
                raise

    with ThreadPoolExecutor(workers - 1) as pool:
        helpers = [pool.submit(drain) for _ in range(workers - 1)]
        drain()
        for helper in helpers:
            helper.result()


_DONE = object()   # run_blocks: no block left


def map_blocks(task: Callable[[T], R], blocks: Sequence[T], parallel: bool = True) -> list[R]:
    """``[task(b) for b in blocks]``, the calls spread over the usable CPUs (one shared pool of
    threads: the recipe's passes call this thousands of times on small blocks). The results
    keep the blocks' order, so a caller that combines them in that order gets the same
    numbers on any thread count. Called from one of the pool's tasks, it runs in that thread
    (a task waiting for the pool it occupies could wait forever). ``parallel=False`` runs
    them in this thread: for small blocks, threads cost more than they save."""
    if not parallel or len(blocks) <= 1 or usable_cpus() <= 1 \
            or getattr(_in_pool, "active", False):
        return [task(block) for block in blocks]
    return list(_shared_pool().map(task, blocks))


_in_pool = threading.local()   # .active in the shared pool's threads
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(usable_cpus(), thread_name_prefix="tnnquant",
                                       initializer=_mark_pool_thread)
        return _pool


def _mark_pool_thread() -> None:
    _in_pool.active = True
