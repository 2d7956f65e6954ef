"""Executor contract: hooks see every blob, blobs are freed after their last use, kernel errors
say which layer failed."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from tnnquant.errors import InputError, UnsupportedError
from tnnquant.exec.executor import Executor
from tnnquant.testing import GraphBuilder


def small_net():
    """conv -> relu -> conv (+ skip from relu) -> add -> pool."""
    b = GraphBuilder(seed=1)
    x = b.input("data", (1, 3, 8, 8))
    c1 = b.conv(x, 4, 3, pad=1, name="c1")
    r1 = b.layer("ReLU", c1, name="r1")
    c2 = b.conv(r1, 4, 3, pad=1, name="c2")
    s = b.layer("Add", [c2, r1], "-1", name="s")
    y = b.layer("Pooling", s, "1 0 0 1 1 0 0 -1 -1 -1 0", name="gap")
    return b.build(y)


def test_hooks_see_inputs_then_every_layer_output_in_order():
    graph = small_net()
    seen = []
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    out = Executor(graph).run({"data": x}, hooks=[
        lambda name, a, layer: seen.append((name, a.shape, layer and layer.name))])
    assert seen == [("data", (2, 3, 8, 8), None), ("c1", (2, 4, 8, 8), "c1"),
                    ("r1", (2, 4, 8, 8), "r1"), ("c2", (2, 4, 8, 8), "c2"),
                    ("s", (2, 4, 8, 8), "s"), ("gap", (2, 4, 1, 1), "gap")]
    assert list(out) == ["gap"]


def test_keep_returns_intermediate_blobs():
    graph = small_net()
    x = np.ones((1, 3, 8, 8), np.float32)
    out = Executor(graph).run({"data": x}, keep=["r1"])
    assert set(out) == {"gap", "r1"}
    assert (out["r1"] >= 0).all()


def alive_tracker():
    """(hook, alive_when): alive_when[name] = the blobs still alive when ``name`` arrives."""
    refs = {}
    alive_when = {}

    def hook(name, array, layer):
        gc.collect()
        alive_when[name] = {b for b, r in refs.items() if r() is not None}
        refs[name] = weakref.ref(array)
    return hook, alive_when


def test_blobs_are_freed_after_their_last_consumer():
    graph = small_net()
    hook, alive_when = alive_tracker()
    Executor(graph, fp32="numpy").run({"data": np.ones((1, 3, 8, 8), np.float32)},
                                      hooks=[hook])
    # c1 is read only by r1; r1 is read by c2 and by the add
    assert "c1" not in alive_when["c2"]
    assert "r1" in alive_when["c2"]
    assert {"r1", "c2"}.isdisjoint(alive_when["gap"])


def test_onnxruntime_releases_each_observed_blob_after_its_hooks():
    """onnxruntime returns every observed blob of a batch at once; each is dropped as soon as
    the hooks have seen it, so hooks that allocate do not add to all of them."""
    graph = small_net()
    hook, alive_when = alive_tracker()
    executor = Executor(graph)
    executor.run({"data": np.ones((1, 3, 8, 8), np.float32)}, hooks=[hook])
    assert executor.backend == "onnxruntime"
    assert alive_when["gap"] <= {"data"}


def test_outputs_nobody_reads_are_freed_at_once():
    b = GraphBuilder()
    x = b.input("data", (1, 2, 4, 4))
    used, unused = b.layer("SplitV", x, "1 2 1 1", n_out=2, name="split")
    y = b.layer("ReLU", used, name="relu")
    refs = {}
    alive_at_relu = []

    def hook(name, array, layer):
        if name == "relu":
            gc.collect()
            alive_at_relu.append(refs[unused]() is not None)
        refs[name] = weakref.ref(array)

    Executor(b.build(y)).run({"data": np.ones((1, 2, 4, 4), np.float32)}, hooks=[hook])
    assert alive_at_relu == [False]


def test_kernel_errors_name_the_layer():
    b = GraphBuilder()
    x = b.input("data", (1, 2, 2, 2))
    y = b.conv(x, 2, 3, pad=0, pad_type=1, name="too_big")
    with pytest.raises(UnsupportedError, match="Convolution 'too_big': .*too small"):
        Executor(b.build(y)).run({"data": np.zeros((1, 2, 2, 2), np.float32)})


def test_inputs_of_the_wrong_shape_are_rejected():
    with pytest.raises(InputError, match="expects \\(N, 3, 8, 8\\)"):
        Executor(small_net()).run({"data": np.zeros((1, 3, 8, 9), np.float32)})
