"""Zero points folded into biases (passes/zero_points.py): which blobs, what the int8 run then
computes (checked against the float model and a direct numpy formula), files, mixed precision."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tnnquant.config import QuantConfig
from tnnquant.exec.executor import Executor
from tnnquant.formats.io import load_model, save_model
from tnnquant.layers.convolution import ACT_RELU6
from tnnquant.passes.mixed_precision import set_float
from tnnquant.passes.runtime import runtime_graph
from tnnquant.passes.zero_points import shiftable_blobs
from tnnquant.quantize import quantize
from tnnquant.testing import GraphBuilder

f32 = np.float32
MINMAX = dict(blob_method="minmax", weight_method="minmax", scale_search=False,
              learned_rounding=False, bias_correction=False, fallback_check=False)


def net(dead_row: bool = False):
    """c1 (ReLU6) -> 1x1 pw (ReLU) -> padded dw (ReLU) -> unpadded 3x3 c3 (ReLU) -> fc."""
    b = GraphBuilder(3)
    x = b.input("data", (1, 3, 10, 10))
    c1 = b.conv(x, 8, 3, pad=1, activation=ACT_RELU6, name="c1")
    pw = b.conv(c1, 8, 1, activation=1, name="pw")
    dw = b.conv(pw, 8, 3, pad=1, group=8, activation=1, name="dw")
    c3 = b.conv(dw, 6, 3, pad=0, activation=1, name="c3")
    fc = b.inner_product(c3, 4, 6 * 8 * 8, name="fc")
    graph = b.build(fc)
    if dead_row:   # c1's output channel 2: all-zero weights (weight scale 0, spec int8 §8.3)
        res = graph.resources["c1"]      # and a positive bias, so its blob scale is not 0
        w = res.filter.data.copy().reshape(8, -1)
        w[2] = 0
        bias = res.bias.data.copy()
        bias[2] = 0.5
        graph.resources["c1"] = dataclasses.replace(
            res, filter=dataclasses.replace(res.filter, data=w.reshape(res.filter.data.shape)),
            bias=dataclasses.replace(res.bias, data=bias))
    return graph


def samples(n=8, seed=4):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1, (3, 10, 10)).astype(f32) for _ in range(n)]


def blobs_of(graph, xs):
    """Every blob of the simulated int8 run, dequantized, and the int8 codes."""
    ex = Executor(runtime_graph(graph), mode="int8")
    codes = {}
    ex.run({"data": np.stack(xs)}, hooks=[lambda n, a, _: codes.__setitem__(n, a)])
    return {n: ex.dequantize(n, a) for n, a in codes.items()}, codes


def sqnr_db(ref, test):
    ref, test = ref.astype(np.float64), test.astype(np.float64)
    return 10 * np.log10((ref ** 2).sum() / ((ref - test) ** 2).sum())


@pytest.fixture(scope="module")
def pair():
    g, xs = net(), samples()
    return g, xs, (quantize(g, xs, QuantConfig(fold_zero_points=False, **MINMAX)),
                   quantize(g, xs, QuantConfig(**MINMAX)))


def test_only_relu_blobs_read_without_padding_are_shifted(pair):
    g, xs, (plain, folded) = pair
    # c1 (read by the 1x1 pw), dw (by the unpadded c3), c3 (by the inner product): shifted;
    # pw is read by the padded depthwise conv
    shifted = {b for b, s in folded.graph.blob_scales.items() if s.folded_zero_point is not None}
    assert shifted == {"c1", "dw", "c3"}
    assert not any(s.folded_zero_point is not None for s in plain.graph.blob_scales.values())
    assert set(shiftable_blobs(plain.graph)) == shifted
    for name in ("c1", "dw", "c3"):
        assert folded.graph.layer(name).params.activation_type == 0   # saturation does it
        assert not folded.graph.blob_scales[name].zero_points.any()    # the file keeps 0
    assert folded.graph.layer("pw").params.activation_type == 1
    # a float reader (excluded layer) or a network output keeps the blob symmetric
    excluded = quantize(g, xs, QuantConfig(exclude=("pw",), **MINMAX))
    assert excluded.graph.blob_scales["c1"].folded_zero_point is None
    assert "zero points folded into biases: 3" in " ".join(folded.notes)


def test_shifted_blobs_use_all_256_codes_and_halve_the_step(pair):
    g, xs, (plain, folded) = pair
    ref = Executor(g).run({"data": np.stack(xs)}, keep=["c1", "dw", "c3"])
    values, codes = blobs_of(folded.graph, xs)
    plain_values, plain_codes = blobs_of(plain.graph, xs)
    for name in ("c1", "dw", "c3"):
        assert codes[name].min() == -128 and codes[name].max() > 100, name
        assert plain_codes[name].min() >= 0, name
        s_plain = plain.graph.blob_scales[name].scale
        s_folded = folded.graph.blob_scales[name].scale
        np.testing.assert_allclose(s_folded, s_plain * 127 / 255, rtol=1e-6)
        # the ReLU is the saturation: code -128 reads as exactly 0, nothing below it
        assert values[name].min() == 0, name
        np.testing.assert_array_equal(values[name][codes[name] == -128], 0)
        assert sqnr_db(ref[name], values[name]) > sqnr_db(ref[name], plain_values[name]), name
    assert values["c1"].max() <= 6.0       # ReLU6: code 127 is at most 6
    out = Executor(folded.graph, mode="int8").run({"data": np.stack(xs)})["fc"]
    out_plain = Executor(plain.graph, mode="int8").run({"data": np.stack(xs)})["fc"]
    ref_fc = Executor(g).run({"data": np.stack(xs)})["fc"]
    assert sqnr_db(ref_fc, out) > sqnr_db(ref_fc, out_plain)


def test_readers_accumulate_the_shifted_codes_plus_the_zero_point(pair):
    """pw (1x1) reads c1's codes q: its output equals a direct numpy evaluation with inputs
    q + 128 and the float bias rounded to its weight scale, rounded to its output grid."""
    g, xs, (_, folded) = pair
    _, codes = blobs_of(folded.graph, xs)
    res = folded.graph.resources["pw"]
    q_w = res.filter.data.astype(np.int64).reshape(8, 8)
    q_in = codes["c1"].astype(np.int64) + 128                    # codes 0..255
    acc = np.einsum("oc,nchw->nohw", q_w, q_in)
    s = res.scale.data.astype(np.float64)
    b = g.resources["pw"].bias.data.astype(np.float64) / s
    bq_unshifted = np.sign(b) * np.floor(np.abs(b) + 0.5)          # round half away
    s = s[None, :, None, None]
    y = np.maximum((acc + bq_unshifted[None, :, None, None]) * s, 0)    # real units, ReLU
    s_out = folded.graph.blob_scales["pw"].scale.astype(np.float64)
    s_out = s_out.reshape(1, -1, 1, 1) if s_out.size > 1 else s_out
    want = np.clip(np.sign(y / s_out) * np.floor(np.abs(y / s_out) + 0.5), -128, 127)
    # the kernels multiply in float32: a value at a rounding tie may land one code away
    assert np.abs(codes["pw"].astype(np.int64) - want).max() <= 1
    assert (codes["pw"] == want).mean() > 0.999


def test_a_dead_producer_row_writes_its_bias():
    """All-zero weights: TNN's own arithmetic loses the row's bias (weight scale 0, spec int8
    §8.3) and would write code 0, which the shift reads as 128 steps; the row is made constant
    instead and writes its float bias, what the float model computes there."""
    g, xs = net(dead_row=True), samples()
    r = quantize(g, xs, QuantConfig(**MINMAX))
    scale = r.graph.blob_scales["c1"]
    assert scale.folded_zero_point is not None and scale.scale[2] > 0
    values, codes = blobs_of(r.graph, xs)
    assert (codes["c1"][:, 2] == codes["c1"][0, 2, 0, 0]).all()
    np.testing.assert_allclose(values["c1"][:, 2], 0.5, atol=scale.scale[2] / 2 * 1.001)


def test_a_row_of_negligible_weights_is_made_constant():
    """Weights ~1e-30 (left by training): the bias term -128·s/S would overflow int32; the row
    is re-rounded to a weight scale of 1/65536 of its output step."""
    g, xs = net(dead_row=True), samples()
    res = g.resources["c1"]
    w = res.filter.data.copy().reshape(8, -1)
    w[2] = 1e-30
    g.resources["c1"] = dataclasses.replace(res, filter=dataclasses.replace(
        res.filter, data=w.reshape(res.filter.data.shape)))
    r = quantize(g, xs, QuantConfig(**MINMAX))
    assert r.graph.blob_scales["c1"].folded_zero_point is not None
    assert np.abs(r.graph.resources["c1"].bias.data.astype(np.int64)).max() < 2 ** 30
    values, _ = blobs_of(r.graph, xs)
    np.testing.assert_allclose(values["c1"][:, 2], 0.5,
                               atol=r.graph.blob_scales["c1"].scale[2] / 2 * 1.001)


def test_a_blob_whose_producer_cannot_write_the_zero_point_stays_symmetric():
    """A bias of -1e6 (a channel always off) is beyond int32 in units of its weight scale:
    the blob keeps codes 0..127, its readers' weight scales put back."""
    g, xs = net(), samples()
    res = g.resources["c1"]
    bias = res.bias.data.copy()
    bias[2] = -1e6
    g.resources["c1"] = dataclasses.replace(res, bias=dataclasses.replace(res.bias, data=bias))
    r = quantize(g, xs, QuantConfig(**MINMAX))
    assert r.graph.blob_scales["c1"].folded_zero_point is None
    assert r.graph.blob_scales["dw"].folded_zero_point is not None
    assert r.graph.layer("c1").params.activation_type == ACT_RELU6
    assert "1 kept 0..127" in " ".join(r.notes)
    plain = quantize(g, xs, QuantConfig(fold_zero_points=False, **MINMAX))
    ref = Executor(g).run({"data": np.stack(xs)}, keep=["c1"])
    values, codes = blobs_of(r.graph, xs)
    plain_values, _ = blobs_of(plain.graph, xs)
    assert codes["c1"].min() >= 0
    assert sqnr_db(ref["c1"], values["c1"]) > sqnr_db(ref["c1"], plain_values["c1"]) - 0.1
    feeds = {"data": np.stack(xs)}   # pw reads c1 with its weight scale put back
    ref_fc = Executor(g).run(feeds)["fc"]
    out = Executor(r.graph, mode="int8").run(feeds)["fc"]
    out_plain = Executor(plain.graph, mode="int8").run(feeds)["fc"]
    assert sqnr_db(ref_fc, out) > sqnr_db(ref_fc, out_plain) - 0.5


def test_default_recipe_folds_and_stays_close_to_float():
    g, xs = net(), samples()
    r = quantize(g, xs, QuantConfig())
    assert any(s.folded_zero_point is not None for s in r.graph.blob_scales.values())
    ref = Executor(g).run({"data": np.stack(xs)})["fc"]
    out = Executor(r.graph, mode="int8").run({"data": np.stack(xs)})["fc"]
    assert sqnr_db(ref, out) > 25


def test_files_keep_the_folded_zero_point_where_tnn_never_reads(pair, tmp_path):
    g, xs, (_, folded) = pair
    proto, model = tmp_path / "m.tnnproto", tmp_path / "m.tnnmodel"
    save_model(folded.graph, proto, model)
    loaded = load_model(proto, model)
    scale = loaded.blob_scales["c1"]
    assert not scale.zero_points.any() and (scale.bias == -128).all()
    feeds = {"data": np.stack(xs)}
    for device in ("x86", "naive"):   # NAIVE reads stored zero points: there are none
        a = Executor(folded.graph, mode="int8", device=device).run(feeds)["fc"]
        b = Executor(loaded, mode="int8", device=device).run(feeds)["fc"]
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("layer", ["c1", "pw", "c3", "fc"])
def test_a_layer_going_float_unshifts_its_blobs(pair, layer):
    g, xs, (plain, folded) = pair
    trial = set_float(folded.graph, {layer}, folded.float_graph)
    lay = trial.layer(layer)
    for blob in set(lay.inputs + lay.outputs) & {"c1", "dw", "c3"}:
        scale = trial.blob_scales[blob]
        assert scale.folded_zero_point is None, blob
        np.testing.assert_allclose(scale.scale, plain.graph.blob_scales[blob].scale, rtol=1e-6)
    assert trial.layer("c1").params.activation_type == ACT_RELU6 or \
        trial.blob_scales["c1"].folded_zero_point is not None
    feeds = {"data": np.stack(xs)}
    ref = Executor(g).run(feeds)["fc"]
    before = Executor(folded.graph, mode="int8").run(feeds)["fc"]
    after = Executor(trial, mode="int8").run(feeds)["fc"]
    # one layer float, the rest unshifted in place: as close to float as before, within noise
    assert sqnr_db(ref, after) > sqnr_db(ref, before) - 3


def test_network_outputs_read_as_tnn_reads_them_whatever_the_bias_buffer(pair):
    """TNN never reads a blob scale's bias buffer: a file from another tool holding something
    there must simulate exactly as TNN runs it."""
    g, xs, (_, folded) = pair
    graph = folded.graph.copy()
    scale = graph.blob_scales["fc"]
    graph.blob_scales["fc"] = dataclasses.replace(scale, bias=np.full(scale.scale.size, 7,
                                                                     np.int32))
    feeds = {"data": np.stack(xs)}
    np.testing.assert_array_equal(Executor(graph, mode="int8").run(feeds)["fc"],
                                  Executor(folded.graph, mode="int8").run(feeds)["fc"])


def test_mixed_precision_leaves_no_folded_blob_beside_a_float_layer():
    g, xs = net(), samples()
    r = quantize(g, xs, QuantConfig(target_cos=1.0, **MINMAX))   # unreachable: layers go float
    assert "kept float" in r.notes[-1]
    producers, consumers = r.graph.producers(), r.graph.consumers()
    for blob, scale in r.graph.blob_scales.items():
        if scale.folded_zero_point is not None:
            assert all(lay.quantized for lay in [producers[blob], *consumers[blob]]), blob
    for name in ("c1", "dw", "c3"):
        lay = r.graph.layer(name)
        if r.graph.blob_scales[name].folded_zero_point is None:
            assert lay.params.activation_type != 0, name    # its ReLU / ReLU6 is back


def test_compare_reads_the_folded_zero_point_from_the_files(pair, tmp_path):
    """`tnnquant compare` on saved files: a shifted blob dequantizes as s·(q + 128) (its SQNR
    as good as in memory) and its ReLU's zeros at code -128 do not count as saturated."""
    from tnnquant.report.compare import compare
    g, xs, (plain, folded) = pair
    proto, model = tmp_path / "m.tnnproto", tmp_path / "m.tnnmodel"
    save_model(folded.graph, proto, model)
    batches = [{"data": np.stack(xs)}]
    report = {b.blob: b for b in compare(g, load_model(proto, model), batches).blobs}
    plain_report = {b.blob: b for b in compare(g, plain.graph, batches).blobs}
    ref = Executor(g).run({"data": np.stack(xs)}, keep=["c1"])
    values, codes = blobs_of(folded.graph, xs)
    assert abs(report["c1"].sqnr_db - sqnr_db(ref["c1"], values["c1"])) < 0.01
    assert (codes["c1"] == -128).mean() > 0.2           # plenty of ReLU zeros
    assert report["c1"].saturated == pytest.approx((codes["c1"] == 127).mean())
    assert report["c1"].saturated <= plain_report["c1"].saturated + 0.01
