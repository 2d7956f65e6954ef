"""The default recipe's passes on small in-memory models: biases, scale search groups, mixed
precision and the float stand-ins of int8 layers, with the simulator as judge."""
from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from tnnquant.config import QuantConfig, ablations, preset
from tnnquant.exec import int8_math
from tnnquant.exec.executor import Executor
from tnnquant.formats.rawbuffer import DataType, RawBuffer
from tnnquant.layers.convolution import ACT_SIGMOID_MUL
from tnnquant.passes.fake_quant import fake_quantize, float_resource
from tnnquant.passes.mixed_precision import reformat_count
from tnnquant.passes.runtime import runtime_graph
from tnnquant.passes.scale_search import blob_groups
from tnnquant.quantize import quantize
from tnnquant.testing import GraphBuilder

f32 = np.float32


def net(seed: int = 0):
    """conv+relu -> conv -> add(skip) -> relu -> dw conv -> concat(with a 1x1 conv) -> conv
    -> sigmoid*mul (swish) -> gap -> fc."""
    b = GraphBuilder(seed)
    x = b.input("data", (1, 3, 12, 12))
    c1 = b.conv(x, 8, 3, pad=1, name="conv1")
    r1 = b.layer("ReLU", c1, name="relu1")
    c2 = b.conv(r1, 8, 3, pad=1, name="conv2")
    a = b.layer("Add", [c2, r1], "-1", name="add")
    r2 = b.layer("ReLU", a, name="relu2")
    dw = b.conv(r2, 8, 3, pad=1, group=8, name="dw")
    pw = b.conv(r2, 4, 1, name="pw")
    cat = b.layer("Concat", [dw, pw], "1", name="cat", channels=12)
    c3 = b.conv(cat, 6, 1, name="conv3")
    s = b.layer("Sigmoid", c3, name="sig")
    m = b.layer("Mul", [c3, s], "-1", name="mul")
    gap = b.layer("Pooling", m, "1 0 0 1 1 0 0 -1 -1 -1 0 0 0 0", name="gap")
    fc = b.inner_product(gap, 5, 6, name="fc")
    return b.build(fc)


def samples(n=6, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1, (3, 12, 12)).astype(f32) for _ in range(n)]


def cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return a @ b / np.linalg.norm(a) / np.linalg.norm(b)


@pytest.fixture(scope="module")
def results():
    g = net()
    xs = samples()
    return g, xs, quantize(g, xs, QuantConfig()), quantize(g, xs, QuantConfig.tnn())


def test_presets_and_ablations():
    assert QuantConfig.tnn() == QuantConfig.from_tnn(0, 0, 0) == preset("tnn")
    assert preset("default") == QuantConfig()
    offs = ablations(QuantConfig())
    assert len(offs) >= 7 and all(c != QuantConfig() for c in offs.values())
    assert ablations(QuantConfig.tnn()) == {}


def test_default_recipe_keeps_tnns_int8_layers_and_avoids_broken_constructs(results):
    g, xs, default, tnn = results
    quantized = {lay.name for lay in default.graph.layers if lay.quantized and
                 lay.kind.quantizable}
    assert quantized == {lay.name for lay in tnn.graph.layers if lay.quantized and
                         lay.kind.quantizable}
    for lay in default.graph.layers:
        if lay.type == "Convolution":
            assert lay.params.activation_type != ACT_SIGMOID_MUL      # TNN's int8 conv ignores it
        assert not (lay.quantized and lay.type == "ReLU6")          # int8 ReLU6 clamps codes
        if lay.quantized and lay.type == "Pooling":
            assert lay.params.pool_type == 0                        # avg pooling wraps int16
    # Add: never mix per-channel and per-tensor (spec int8 §12.5); Concat: per-tensor or equal
    scales = default.graph.blob_scales
    for lay in default.graph.layers:
        if lay.quantized and lay.type == "Add":
            assert len({scales[b].per_channel for b in lay.inputs + lay.outputs}) == 1
        if lay.quantized and lay.type == "Concat":
            assert not any(scales[b].per_channel for b in lay.inputs + lay.outputs)
    out = Executor(default.graph, mode="int8").run({"data": np.stack(xs)})
    ref = Executor(g).run({"data": np.stack(xs)})
    assert cosine(out["fc"], ref["fc"]) > 0.99


def test_rounded_biases_are_rhaz_of_b_over_s():
    g = net()
    r = quantize(g, samples(), QuantConfig(bias_correction=False, learned_rounding=False))
    for lay in r.graph.layers:
        if lay.quantized and lay.type == "Convolution":
            res = r.graph.resources[lay.name]
            b = g.resources[lay.name].bias.data.astype(np.float64)
            s = res.scale.data.astype(np.float64)
            want = np.sign(b / s) * np.floor(np.abs(b / s) + 0.5)
            np.testing.assert_array_equal(res.bias.data, want, err_msg=lay.name)


def mean_conv_error(graph, float_graph, xs, name):
    """Mean per channel of the int8 conv's dequantized output minus the float conv on the same
    dequantized input, both read from the simulator's blobs (no activation in these convs)."""
    blobs = {}
    ex = Executor(runtime_graph(graph), mode="int8")
    ex.run({"data": np.stack(xs)}, hooks=[lambda n, a, _: blobs.__setitem__(n, a)])
    lay = graph.layer(name)
    x = ex.dequantize(lay.inputs[0], blobs[lay.inputs[0]])
    y_q = ex.dequantize(lay.outputs[0], blobs[lay.outputs[0]])
    y = lay.kind.forward(lay.params, float_graph.resources[name], x)
    return (y_q - y).mean(axis=(0, 2, 3))


def test_bias_correction_removes_the_mean_error_it_measures():
    g = net()
    xs = samples(8)
    before = quantize(g, xs, QuantConfig(bias_correction=False))
    after = quantize(g, xs, QuantConfig())
    for name in ("conv2", "dw"):
        e0 = mean_conv_error(before.graph, before.float_graph, xs, name)
        e1 = mean_conv_error(after.graph, after.float_graph, xs, name)
        step = after.graph.resources[name].scale.data
        assert np.abs(e1).mean() <= np.abs(e0).mean() + step.mean(), name


def test_float_resource_reproduces_the_int8_conv_before_rounding(results):
    g, xs, default, _ = results
    ex = Executor(runtime_graph(default.graph), mode="int8")
    blobs = {}
    ex.run({"data": np.stack(xs)}, hooks=[lambda n, a, _: blobs.__setitem__(n, a)])
    for name in ("conv1", "dw", "conv3"):
        lay = default.graph.layer(name)
        in_scale = default.graph.blob_scales[lay.inputs[0]]
        x = ex.dequantize(lay.inputs[0], blobs[lay.inputs[0]])
        y = lay.kind.forward(lay.params, float_resource(lay, default.graph.resources[name],
                                                        in_scale.scale), x)
        out = default.graph.blob_scales[lay.outputs[0]]
        got = ex.dequantize(lay.outputs[0], blobs[lay.outputs[0]])
        # the simulator's output is y rounded to the output grid: at most one step away
        step = int8_math.channel_view(out.scale, 4)
        assert (np.abs(fake_quantize(y, out) - got) <= step * 1.001).all(), name


def test_scale_groups_tie_add_blobs_and_make_concat_per_tensor(results):
    g, xs, default, _ = results
    flagged = default.graph
    groups, tensor_only = blob_groups(flagged)
    add = flagged.layer("add")
    together = [grp for grp in groups if add.outputs[0] in grp][0]
    assert set(add.inputs) <= together
    assert set(flagged.layer("cat").inputs) <= tensor_only


def test_target_cos_keeps_layers_float_and_reports_reformats():
    g = net()
    xs = samples()
    none = quantize(g, xs, QuantConfig(target_cos=0.5))
    assert "every layer int8" in none.notes[-1]
    some = quantize(g, xs, QuantConfig(target_cos=1.0))      # unreachable: all go float
    assert "kept float" in some.notes[-1] and "Reformat" in some.notes[-1]
    float_layers = [lay.name for lay in some.graph.layers
                    if not lay.quantized and lay.kind.quantizable]
    assert float_layers
    # a ReLU / max pool never stays int8 behind a float producer (spec int8 §9)
    producers = some.graph.producers()
    for lay in some.graph.layers:
        if lay.quantized and lay.type == "ReLU":
            assert producers[lay.inputs[0]].quantized
    assert reformat_count(some.graph) >= 0
    if some.graph.is_quantized:
        Executor(some.graph, mode="int8").run({"data": np.stack(xs)})


def depthwise_net():
    b = GraphBuilder(5)
    x = b.input("data", (1, 4, 10, 10))
    dw = b.conv(x, 4, 3, pad=1, group=4, name="dw")
    return b.build(b.conv(dw, 4, 1, name="pw"))


def test_scale_search_keeps_per_channel_scales_when_channel_ranges_are_stable():
    rng = np.random.default_rng(6)
    spread = np.array([10, 1, 0.1, 0.01], f32)[:, None, None]
    xs = [(rng.normal(size=(4, 10, 10)) * spread).astype(f32) for _ in range(8)]
    r = quantize(depthwise_net(), xs, QuantConfig())
    assert r.graph.blob_scales["data"].per_channel       # read by a depthwise conv only


def test_scale_search_avoids_per_channel_scales_that_do_not_generalize():
    """A channel silent in half of the samples: per-channel scales fitted on the other half give
    it scale 0 (its values lost), so the held-out error rejects plain per-channel scales."""
    rng = np.random.default_rng(7)
    xs = []
    for i in range(8):
        x = rng.normal(size=(4, 10, 10)).astype(f32)
        x[3] *= 0.0 if i % 2 else 5.0
        xs.append(x)
    r = quantize(depthwise_net(), xs, QuantConfig(blob_method="minmax"))
    chosen = r.graph.blob_scales["data"].scale
    plain = np.abs(np.stack(xs)).max(axis=(0, 2, 3)) / 127
    # the samples alternate between the two folds, so channel 3 is silent in one of them
    assert chosen.size == 1 or not any(np.allclose(chosen, m * plain, rtol=1e-3)
                                       for m in (1, 2))


def test_first_equal_maps_each_candidate_to_the_first_with_the_same_scales():
    from tnnquant.ir.graph import BlobScale
    from tnnquant.passes.scale_search import _first_equal
    scales = {"tensor": [2], "channel": [1, 2], "floor 1/4": [1, 2], "floor 1/16": [1, 2],
              "channel x2": [2, 4], "floor 1/4 x2": [2, 3], "floor 1/16 x2": [2, 4],
              "floor 1/64": [np.nan, 2], "floor 1/64 x2": [np.nan, 2]}
    options = {label: BlobScale(np.array(v, f32)) for label, v in scales.items()}
    assert _first_equal(options) == {
        "tensor": "tensor", "channel": "channel", "floor 1/4": "channel",
        "floor 1/16": "channel", "channel x2": "channel x2", "floor 1/4 x2": "floor 1/4 x2",
        "floor 1/16 x2": "channel x2",
        "floor 1/64": "floor 1/64", "floor 1/64 x2": "floor 1/64 x2"}   # NaN: never equal


def test_scale_search_scores_equal_candidates_once(monkeypatch):
    """Candidates whose scales coincide in a fold (a floor no channel falls below) are scored
    once and share the errors: the same errors as scoring each, fewer fake-quantizations."""
    from tnnquant.passes import scale_search
    errors, calls = {}, []
    real_best, real_fake_quantize = scale_search._Errors.best, scale_search.fake_quantize

    def best(self, groups):
        errors[mode] = {b: e.copy() for b, e in self.err.items()}
        return real_best(self, groups)

    def counted(x, scale):
        calls.append(mode)
        return real_fake_quantize(x, scale)

    monkeypatch.setattr(scale_search._Errors, "best", best)
    monkeypatch.setattr(scale_search, "fake_quantize", counted)
    g, xs = net(), samples()
    for mode in ("once", "each"):
        if mode == "each":
            monkeypatch.setattr(scale_search, "_first_equal", lambda options: {
                label: label for label in options})
        quantize(g, xs, QuantConfig(fallback_check=False))
    assert errors["once"].keys() == errors["each"].keys()
    for blob, err in errors["each"].items():
        assert np.array_equal(errors["once"][blob], err), blob
    assert 0 < calls.count("once") < calls.count("each")


def test_recipe_output_does_not_depend_on_the_thread_count(monkeypatch):
    """The scale search scores its candidates on threads; candidates sharing weights share the
    first candidate's, as one thread makes them: the files are the same on 1 or 4 threads."""
    from tnnquant import parallel
    from tnnquant.formats.io import format_model, format_proto
    g, xs = net(), samples()
    written = []
    for cpus in (1, 4):
        monkeypatch.setattr(parallel, "usable_cpus", lambda cpus=cpus: cpus)
        r = quantize(g, xs, QuantConfig())
        written.append(format_proto(r.graph) + format_model(r.graph))
    assert written[0] == written[1]


def _run_sizes(monkeypatch, run_bytes: int) -> dict[str, set[int]]:
    """Batch sizes of the executor runs of a default-recipe quantize (batches of 4 of 6
    samples), by the pass module that asked, with ``RUN_BYTES`` set to ``run_bytes``."""
    import sys
    from tnnquant.passes import context
    monkeypatch.setattr(context, "RUN_BYTES", run_bytes)
    seen: dict[str, set[int]] = {}
    real = Executor.run

    def run(self, feeds, *args, **kwargs):
        caller = sys._getframe(1).f_globals["__name__"].rpartition(".")[2]
        seen.setdefault(caller, set()).add(len(next(iter(feeds.values()))))
        return real(self, feeds, *args, **kwargs)

    monkeypatch.setattr(Executor, "run", run)
    r = quantize(net(), samples(6), QuantConfig(batch_size=4))
    assert any(note.startswith("fallback check: output cosine") for note in r.notes)
    return seen


def test_recipe_runs_the_whole_network_in_runs_of_bounded_memory(monkeypatch):
    """The scale search, bias correction, learned rounding (which still draws its input windows
    per batch) and the fallback check run the network in runs whose blobs fit ``RUN_BYTES``
    (one sample when even one does not), whatever ``--batch`` says."""
    tight = _run_sizes(monkeypatch, 1)
    assert tight["scale_search"] == tight["bias"] == tight["mixed_precision"] == {1}
    assert tight["learned_rounding"] == {1}
    roomy = _run_sizes(monkeypatch, 1 << 40)   # small samples keep their batches
    assert roomy["scale_search"] == roomy["learned_rounding"] == {4, 2}
    assert max(roomy["bias"]) == max(roomy["mixed_precision"]) == 4


def test_runs_split_batches_to_the_memory_bound_in_order():
    from tnnquant.passes.context import RUN_BYTES, PassContext
    x = np.arange(7 * 2, dtype=np.float32).reshape(7, 2)
    batches = lambda: iter([{"x": x[:5], "y": -x[:5]}, {"x": x[5:], "y": -x[5:]}])  # noqa: E731
    ctx = PassContext(QuantConfig(), net(), batches, None, sample_bytes=RUN_BYTES // 2)
    runs = ctx.runs()
    for _ in range(2):   # re-iterable, as the passes' batches are
        got = list(runs())
        assert [len(r["x"]) for r in got] == [2, 2, 1, 2]
        assert np.array_equal(np.concatenate([r["x"] for r in got]), x)
        assert np.array_equal(np.concatenate([r["y"] for r in got]), -x)
    assert [len(r["x"]) for r in PassContext(QuantConfig(), net(), batches, None).runs()()] == \
        [5, 2]


def _blas_threads() -> list[int]:
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_recipe_passes_run_with_one_blas_thread(monkeypatch):
    """The passes after calibration run with BLAS limited to one thread (OpenBLAS's waiting
    threads spin a core; quantize.py), and the limit is lifted afterwards."""
    if not _blas_threads():
        pytest.skip("numpy's BLAS is not visible to threadpoolctl")
    quantize_module = importlib.import_module("tnnquant.quantize")
    seen = []

    def probe(graph, ctx):
        seen.append(_blas_threads())
        return graph

    real = quantize_module.recipe
    monkeypatch.setattr(quantize_module, "recipe", lambda config: real(config) + [probe])
    before = _blas_threads()
    quantize(net(), samples(2), QuantConfig(learned_rounding=False))
    assert seen and all(n == quantize_module.RECIPE_BLAS_THREADS for n in seen[0])
    assert _blas_threads() == before


def test_biases_keep_the_accumulator_inside_int32():
    """A row whose float bias is huge for its weight scale (weights near zero, bias 50): its
    int32 bias leaves room for every accumulator, where TNN's saturated bias lets TNN's
    wrapping int32 sum carry the output to the other sign; TNN's recipe keeps TNN's bias."""
    g = net()
    res = g.resources["conv2"]
    res.filter.data.reshape(8, -1)[3] *= np.float32(1e-5)
    res.bias.data[3] = 50.0
    xs = samples()
    q = quantize(g, xs, QuantConfig()).graph
    for lay in q.layers:
        if lay.quantized and lay.type in ("Convolution", "InnerProduct"):
            qres = q.resources[lay.name]
            w = (qres.filter if lay.type == "Convolution" else qres.weight).data
            bq = qres.bias.data.astype(np.int64)
            reach = 128 * np.abs(w.reshape(len(bq), -1).astype(np.int64)).sum(axis=1)
            assert (bq - reach >= -2**31).all() and (bq + reach <= 2**31 - 1).all(), lay.name

    def conv2_codes(graph):
        blobs = {}
        Executor(runtime_graph(graph), mode="int8").run(
            {"data": np.stack(xs)}, hooks=[lambda n, a, _: blobs.setdefault(n, a)])
        return blobs["conv2"][:, 3]

    saturated = q.copy()
    bias = saturated.resources["conv2"].bias.data.copy()
    bias[3] = 2**31 - 1
    saturated.resources["conv2"] = dataclasses.replace(
        saturated.resources["conv2"], bias=RawBuffer.of(bias, DataType.INT32))
    assert (conv2_codes(q) > 0).all() and (conv2_codes(saturated) < 0).any()
    assert quantize(g, xs, QuantConfig.tnn()).graph.resources["conv2"].bias.data[3] == 2**31 - 1
