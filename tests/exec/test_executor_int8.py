"""The executor in int8 mode (spec int8 §11): it runs the graph TNN's runtime builds, hands every
blob to the hooks as stored (int8 codes or float32), frees blobs after their last use and
returns the outputs dequantized; simulate() is the public entry point."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import tnnquant
from tnnquant.errors import ConfigError, TnnQuantError, UnsupportedError
from tnnquant.exec.executor import Executor
from tnnquant.exec.int8_math import rhaz
from tnnquant.formats.rawbuffer import DataType, RawBuffer
from tnnquant.ir.graph import BlobScale
from tnnquant.layers._resources import ConvResource
from tnnquant.layers.inner_product import InnerProductResource
from tnnquant.testing import GraphBuilder

f32 = np.float32


def float_net():
    """conv3x3+ReLU -> 1x1 conv -> Add (residual) -> ReLU -> global avg pool -> FC."""
    b = GraphBuilder(seed=5)
    x = b.input("data", (1, 3, 12, 12))
    c1 = b.conv(x, 8, 3, pad=1, activation=1, name="c1")
    c2 = b.conv(c1, 8, 1, name="c2")
    s = b.layer("Add", [c2, c1], "-1", name="add")
    r = b.layer("ReLU", s, "", name="relu")
    p = b.layer("Pooling", r, "1 0 0 1 1 0 0 -1 -1 -1 0", name="gap")
    return b.build(b.inner_product(p, 5, 8, name="fc"))


def quantize_by_hand(graph, calib):
    """Per-tensor max/127 blob scales, per-channel weights folded with the input scale, as
    TNN's tool lays them out (spec int8 §7-9); enough for the executor's contract."""
    seen = {}
    Executor(graph).run({"data": calib}, hooks=[lambda n, a, lay: seen.setdefault(n, a)])
    q = graph.copy()
    for name, value in seen.items():
        q.blob_scales[name] = BlobScale([f32(np.abs(value).max() / 127)], [0])
    q.blob_scales["add"] = q.blob_scales["relu"]             # ReLU scale merging (§9)
    for lay in q.layers:
        if lay.type not in ("Convolution", "Add", "InnerProduct", "ReLU"):
            continue
        lay.quantized = True
        if lay.type in ("Convolution", "InnerProduct"):
            res = q.resources[lay.name]
            w = res.filter.data if lay.type == "Convolution" else res.weight.data
            n_out = lay.params.output_channel if lay.type == "Convolution" else 5
            w = (w.reshape(n_out, -1) * q.blob_scales[lay.inputs[0]].scale[0]).astype(f32)
            scale = (np.abs(w).max(axis=1) / 127).astype(f32)
            codes = RawBuffer.of(rhaz(w / scale[:, None]).astype(np.int8))
            bias = res.bias.data if lay.type == "Convolution" else res.bias.data
            bq = RawBuffer.of(np.trunc(bias / scale).astype(np.int32), DataType.INT32)
            zp, s = RawBuffer.of(np.zeros(n_out, np.int8)), RawBuffer.of(scale)
            q.resources[lay.name] = (ConvResource(lay.name, 1, codes, bq, zp, s)
                                     if lay.type == "Convolution" else
                                     InnerProductResource(lay.name, codes, bq, zp, s))
    return q


@pytest.fixture(scope="module")
def nets():
    rng = np.random.default_rng(0)
    graph = float_net()
    return graph, quantize_by_hand(graph, rng.normal(0, 1, (8, 3, 12, 12)).astype(f32))


def feeds(seed=1, n=2):
    return {"data": np.random.default_rng(seed).normal(0, 1, (n, 3, 12, 12)).astype(f32)}


def test_simulate_is_close_to_float(nets):
    graph, qgraph = nets
    want = Executor(graph).run(feeds())["fc"]
    got = tnnquant.simulate(qgraph, feeds())["fc"]
    assert got.dtype == np.float32 and got.shape == want.shape
    cos = np.sum(got * want) / np.linalg.norm(got) / np.linalg.norm(want)
    assert cos > 0.99


def test_hooks_see_every_blob_as_stored(nets):
    _, qgraph = nets
    ex = Executor(qgraph, mode="int8")
    seen = []
    out = ex.run(feeds(), hooks=[lambda n, a, lay: seen.append(
        (n, a.dtype.name, lay and lay.name))])
    # the input only quantized layers read is quantized by the blob converter (§11.4); c2
    # absorbed the Add and the ReLU (§11.2); Reformats bracket the float pooling
    assert seen == [("data", "int8", None), ("c1", "int8", "c1"), ("relu", "int8", "c2"),
                    ("relu_int8_reformat", "float32", "c2_int8_reformat"),
                    ("gap", "float32", "gap"), ("gap_int8_reformat", "int8", "gap_int8_reformat"),
                    ("fc", "int8", "fc")]
    assert ex.graph.layer("c2").inputs == ["c1", "c1"]
    # outputs come back dequantized: code * scale
    codes = {}
    ex.run(feeds(), hooks=[lambda n, a, lay: codes.setdefault(n, a)])
    np.testing.assert_array_equal(
        out["fc"], codes["fc"].astype(f32) * qgraph.blob_scales["fc"].scale[0])
    np.testing.assert_array_equal(out["fc"], ex.dequantize("fc", codes["fc"]))
    np.testing.assert_array_equal(
        out["fc"], tnnquant.dequantize(ex.graph.blob_scales["fc"], codes["fc"]))


def test_int8_blobs_are_freed_after_their_last_consumer(nets):
    _, qgraph = nets
    refs, alive_when = {}, {}

    def hook(name, array, layer):
        gc.collect()
        alive_when[name] = {b for b, r in refs.items() if r() is not None}
        refs[name] = weakref.ref(array)

    Executor(qgraph, mode="int8").run(feeds(), hooks=[hook])
    assert "data" not in alive_when["relu"] and "c1" in alive_when["relu"]
    assert {"c1", "relu"}.isdisjoint(alive_when["gap"])


def test_naive_device_runs(nets):
    _, qgraph = nets
    x86 = tnnquant.simulate(qgraph, feeds())["fc"]
    naive = tnnquant.simulate(qgraph, feeds(), device="naive")["fc"]
    assert np.abs(x86 - naive).max() <= 2 * qgraph.blob_scales["fc"].scale[0]


def test_configuration_errors(nets):
    graph, qgraph = nets
    with pytest.raises(ConfigError, match="unknown executor mode 'int4'"):
        Executor(qgraph, mode="int4")
    with pytest.raises(ConfigError, match="unknown device 'arm'"):
        Executor(qgraph, mode="int8", device="arm")
    with pytest.raises(ConfigError, match="no quantized layer"):
        tnnquant.simulate(graph, feeds())


def test_missing_scales_and_kernels_are_reported(nets):
    _, qgraph = nets
    broken = qgraph.copy()
    del broken.blob_scales["c1"]
    with pytest.raises(TnnQuantError, match="Convolution 'c1': int8 blob 'c1' has no scale"):
        Executor(broken, mode="int8")
    odd = qgraph.copy()
    odd.layers[-2].quantized = True      # the average pooling: fine, TNN has an int8 path
    Executor(odd, mode="int8")
    b = GraphBuilder()
    x = b.input("data", (1, 2, 2, 2))
    g = b.build(b.layer("Sigmoid", x, "", name="s"))
    g.layers[0].quantized = True
    g.blob_scales.update(data=BlobScale([1.0]), s=BlobScale([1.0]))
    with pytest.raises(UnsupportedError, match="QuantizedSigmoid has no int8 kernel"):
        Executor(g, mode="int8")
