import threading
import time

import pytest

from tnnquant import parallel
from tnnquant.parallel import map_blocks


def test_map_blocks_keeps_the_order_when_later_blocks_finish_first(monkeypatch):
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 3)

    def task(k: int) -> int:
        time.sleep(0.02 if k % 2 == 0 else 0.0)   # even blocks finish after their successors
        return k * k

    assert map_blocks(task, list(range(9))) == [k * k for k in range(9)]


def test_map_blocks_shares_the_blocks_with_this_thread_and_runs_nested_calls_in_place(
        monkeypatch):
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 2)
    both = threading.Barrier(2, timeout=10)   # blocks 0 and 1 can only finish side by side

    def inner(k: int) -> int:
        return threading.get_ident()

    def outer(k: int) -> tuple[int, set[int]]:
        if k < 2:
            both.wait()
        # a nested call queued on the pool could wait forever for a thread busy with an outer
        # block: it runs in the thread that runs the block
        return threading.get_ident(), set(map_blocks(inner, list(range(4))))

    found = map_blocks(outer, list(range(6)))
    assert all(nested == {here} for here, nested in found)
    assert threading.get_ident() in {here for here, _ in found}   # the caller took blocks
    assert len({here for here, _ in found[:2]}) == 2


def test_run_blocks_calls_every_block_once_on_the_threads_asked_for():
    both = threading.Barrier(2, timeout=10)
    seen: list[tuple[int, int]] = []

    def task(k: int) -> None:
        if k < 2:
            both.wait()
        seen.append((k, threading.get_ident()))

    parallel.run_blocks(task, list(range(7)), threads=2)
    assert sorted(k for k, _ in seen) == list(range(7))
    assert len({thread for _, thread in seen}) == 2

    def failing(k: int) -> None:
        if k == 4:
            raise ValueError("block 4")

    with pytest.raises(ValueError, match="block 4"):
        parallel.run_blocks(failing, list(range(7)), threads=2)


def test_map_blocks_runs_in_this_thread_on_one_cpu_or_when_told(monkeypatch):
    here = {threading.get_ident()}
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 2)
    assert set(map_blocks(lambda k: threading.get_ident(), list(range(5)), False)) == here
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 1)
    assert set(map_blocks(lambda k: threading.get_ident(), list(range(5)))) == here


def test_map_blocks_raises_the_task_error(monkeypatch):
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 2)

    def task(k: int) -> int:
        if k == 3:
            raise ValueError("block 3")
        return k

    with pytest.raises(ValueError, match="block 3"):
        map_blocks(task, list(range(6)))
