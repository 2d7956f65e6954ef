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


def test_map_blocks_uses_other_threads_and_runs_nested_calls_in_place(monkeypatch):
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 2)
    caller = threading.get_ident()

    def inner(k: int) -> int:
        return threading.get_ident()

    def outer(k: int) -> tuple[int, set[int]]:
        # every pool thread busy with an outer block: a nested call queued on the pool
        # would wait forever, so it runs in the calling pool thread
        time.sleep(0.01)
        return threading.get_ident(), set(map_blocks(inner, list(range(4))))

    found = map_blocks(outer, list(range(4)))
    assert all(here != caller and nested == {here} for here, nested in found)


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
