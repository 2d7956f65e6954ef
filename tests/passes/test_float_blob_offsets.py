"""Zero points of blobs float layers write (passes/zero_points.py, ``offset_float_blobs``): a
float Add before TNN's Reformat, the readers' int32 biases (checked against a direct numpy
formula), files, both devices, mixed precision."""
from __future__ import annotations

import numpy as np
import pytest

from tnnquant.config import QuantConfig
from tnnquant.exec.executor import Executor
from tnnquant.formats.io import load_model, save_model
from tnnquant.ir.graph import BlobScale
from tnnquant.passes.mixed_precision import set_float
from tnnquant.passes.runtime import REFORMAT_SUFFIX, runtime_graph
from tnnquant.passes.zero_points import shifted, shiftable_blobs
from tnnquant.quantize import quantize
from tnnquant.testing import GraphBuilder

f32 = np.float32
MINMAX = dict(blob_method="minmax", weight_method="minmax", scale_search=False,
              learned_rounding=False, bias_correction=False, fallback_check=False,
              offset_float_blobs=True)
HARD_SWISH = "0.166667 0.5"   # onnx2tnn's HardSwish (spec model-format §3.3.18): min -0.375
GLOBAL_AVERAGE = "1 0 0 1 1 0 0 -1 -1 -1 0 0 0 0"


def net():
    """c1 -> HardSwish hs -> 1x1 pw -> HardSwish hs2 -> padded dw (ReLU) -> global average gap
    -> fc:
    hs and gap are written by float layers and read by unpadded int8 layers; hs2 is read by a
    padded depthwise conv."""
    b = GraphBuilder(5)
    x = b.input("data", (1, 3, 10, 10))
    c1 = b.conv(x, 8, 3, pad=1, name="c1")
    hs = b.layer("HardSwish", c1, HARD_SWISH, name="hs")
    pw = b.conv(hs, 8, 1, name="pw")
    hs2 = b.layer("HardSwish", pw, HARD_SWISH, name="hs2")
    dw = b.conv(hs2, 8, 3, pad=1, group=8, activation=1, name="dw")
    gap = b.layer("Pooling", dw, GLOBAL_AVERAGE, name="gap")
    return b.build(b.inner_product(gap, 4, 8, name="fc"))


def samples(n=8, seed=4):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1, (3, 10, 10)).astype(f32) for _ in range(n)]


def feeds(xs):
    return {"data": np.stack(xs)}


def sqnr_db(ref, test):
    ref, test = ref.astype(np.float64), test.astype(np.float64)
    return 10 * np.log10((ref ** 2).sum() / ((ref - test) ** 2).sum())


def reformat_codes(graph, xs, blob):
    """The int8 codes TNN's Reformat writes for ``blob`` and their dequantized values."""
    ex = Executor(runtime_graph(graph), mode="int8")
    seen = {}
    name = blob + REFORMAT_SUFFIX
    ex.run(feeds(xs), hooks=[lambda n, a, _: seen.__setitem__(n, a)], observe=[name])
    return seen[name], ex.dequantize(name, seen[name])


@pytest.fixture(scope="module")
def per_channel():
    g, xs = net(), samples()
    return g, xs, (quantize(g, xs, QuantConfig(**{**MINMAX, "offset_float_blobs": False})),
                   quantize(g, xs, QuantConfig(**MINMAX)))


def test_an_add_shifts_float_blobs_read_without_padding(per_channel):
    g, xs, (plain, shifted) = per_channel
    q = shifted.graph
    adds = [lay for lay in q.layers if lay.type == "Add"]
    assert [(a.inputs, a.outputs) for a in adds] == [(["hs"], ["hs_zero_point"]),
                                                     (["gap"], ["gap_zero_point"])]
    assert q.layer("pw").inputs == ["hs_zero_point"] and "hs" not in q.blob_scales
    assert q.layer("fc").inputs == ["gap_zero_point"]
    assert q.layer("dw").inputs == ["hs2"]            # padded reader: hs2 stays symmetric
    assert q.blob_scales["hs2"].folded_zero_point is None
    scale = q.blob_scales["hs_zero_point"]
    z = scale.folded_zero_point
    assert z.shape == (8,) and not scale.zero_points.any()   # the file keeps zero point 0
    # HardSwish's minimum is -0.375: some of each channel's steps sit below zero
    assert (z > -128).all() and (z < -32).all()
    # m = z + 128 steps below zero reach twice the blob's calibrated minimum, the same for
    # every channel (the margin new data need); with m - 1 steps below zero (the top kept at
    # code 127) they would not
    low = 2 * Executor(g).run(feeds(xs), keep=["hs"])["hs"].min()
    m = z + 128
    top = (255 - m) * scale.scale.astype(np.float64)
    assert (-m * scale.scale <= low * (1 + 1e-6)).all()
    assert (-(m - 1) * top / (256 - m) > low).all()
    offset = q.resources["hs_zero_point"].element
    assert offset.dims == (1, 8, 1, 1)
    np.testing.assert_allclose(offset.data, z * scale.scale, rtol=1e-6)
    assert q.resources["gap_zero_point"].element.dims == (1,)   # an inner product's input
    assert not [lay for lay in plain.graph.layers if lay.type == "Add"]
    assert "zero points of 2 blob(s) written by float layers" in " ".join(shifted.notes)


def test_the_reformat_codes_span_the_range_with_a_finer_step(per_channel):
    g, xs, (plain, shifted) = per_channel
    ref = Executor(g).run(feeds(xs), keep=["hs"])["hs"]
    codes, values = reformat_codes(shifted.graph, xs, "hs_zero_point")
    plain_codes, plain_values = reformat_codes(plain.graph, xs, "hs")
    assert codes.max() == 127
    # the calibrated minimum sits halfway down the room below zero: code ~ z - m/2 in the
    # channel that reaches it
    z = shifted.graph.blob_scales["hs_zero_point"].folded_zero_point
    lowest = codes.min(axis=(0, 2, 3)).astype(np.int64)
    assert (lowest >= z - (z + 128) / 2 - 1).all()
    assert (np.abs(lowest - (z - (z + 128) / 2)) <= 1).any()
    assert plain_codes.min() > -20                      # symmetric: the low half unused
    assert sqnr_db(ref, values) > sqnr_db(ref, plain_values) + 1


def test_the_reader_accumulates_codes_minus_the_zero_point(per_channel):
    """pw's output codes equal a direct numpy evaluation: its int8 weights times the shifted
    codes minus z, plus its float bias rounded to its weight scale."""
    g, xs, (_, shifted) = per_channel
    q = shifted.graph
    codes, _ = reformat_codes(q, xs, "hs_zero_point")
    z = q.blob_scales["hs_zero_point"].folded_zero_point.astype(np.int64)
    res = q.resources["pw"]
    q_w = res.filter.data.astype(np.int64).reshape(8, 8)
    acc = np.einsum("oc,nchw->nohw", q_w, codes.astype(np.int64) - z[None, :, None, None])
    s = res.scale.data.astype(np.float64)
    b = g.resources["pw"].bias.data.astype(np.float64) / s
    bq = np.sign(b) * np.floor(np.abs(b) + 0.5)                  # round half away
    y = (acc + bq[None, :, None, None]) * s[None, :, None, None]
    s_out = q.blob_scales["pw"].scale.astype(np.float64).reshape(1, -1, 1, 1)
    want = np.clip(np.sign(y / s_out) * np.floor(np.abs(y / s_out) + 0.5), -128, 127)
    ex = Executor(runtime_graph(q), mode="int8")
    got = {}
    ex.run(feeds(xs), hooks=[lambda n, a, _: got.__setitem__(n, a)], observe=["pw"])
    # the kernels multiply in float32: a value at a rounding tie may land one code away
    assert np.abs(got["pw"].astype(np.int64) - want).max() <= 1
    assert (got["pw"] == want).mean() > 0.999


def test_files_round_trip_and_both_devices_agree(per_channel, tmp_path):
    g, xs, (_, shifted) = per_channel
    proto, model = tmp_path / "m.tnnproto", tmp_path / "m.tnnmodel"
    save_model(shifted.graph, proto, model)
    loaded = load_model(proto, model)
    assert loaded.layer("hs_zero_point").type == "Add"
    assert not loaded.layer("hs_zero_point").quantized
    scale = loaded.blob_scales["hs_zero_point"]
    assert not scale.zero_points.any()
    np.testing.assert_array_equal(scale.bias, shifted.graph.blob_scales["hs_zero_point"].bias)
    out = {}
    for device in ("x86", "naive"):   # NAIVE reads stored zero points: there are none
        out[device] = Executor(loaded, mode="int8", device=device).run(feeds(xs))["fc"]
        np.testing.assert_array_equal(
            out[device], Executor(shifted.graph, mode="int8", device=device).run(feeds(xs))["fc"])
    ref = Executor(g).run(feeds(xs))["fc"]
    assert sqnr_db(ref, out["naive"]) > sqnr_db(ref, out["x86"]) - 1


def test_per_channel_zero_points_only_before_convolutions(per_channel):
    """The Add's per-channel constant is [1, C, 1, 1]: an inner product may read a 2-D blob,
    so a per-channel scale there stays symmetric; a per-tensor one is shifted."""
    _, _, (plain, _) = per_channel
    site = shiftable_blobs(plain.graph, relu=False,
                           minima={"gap": np.linspace(-0.3, 0, 8), "hs": np.full(8, -0.375)})
    assert site["gap"].minimum == -0.3             # the whole blob's, for every channel
    assert not site["gap"].per_channel and site["hs"].per_channel
    per_channel = BlobScale(np.full(8, 0.01, np.float32))
    assert shifted(per_channel, site["gap"]) is per_channel
    assert shifted(per_channel, site["hs"]).folded_zero_point is not None
    per_tensor = shifted(BlobScale(np.float32([0.01])), site["gap"])
    # 1.27 on top, twice 0.3 below zero: m = ceil(255·0.6/1.87) = 82 steps, z = 82 - 128
    assert per_tensor.folded_zero_point.tolist() == [-46]
    np.testing.assert_allclose(per_tensor.scale, 1.27 / (255 - 82), rtol=1e-6)


@pytest.mark.parametrize("layer", ["pw", "c1"])
def test_a_reader_going_float_removes_the_add(per_channel, layer):
    g, xs, (plain, shifted) = per_channel
    trial = set_float(shifted.graph, {layer}, shifted.float_graph)
    if layer == "c1":   # the float producer's side: nothing to undo
        assert trial.layer("hs_zero_point").type == "Add"
        return
    assert "hs_zero_point" not in {lay.name for lay in trial.layers}
    assert trial.layer("pw").inputs == ["hs"] and "hs_zero_point" not in trial.blob_scales
    ref = Executor(g).run(feeds(xs))["fc"]
    before = Executor(shifted.graph, mode="int8").run(feeds(xs))["fc"]
    after = Executor(trial, mode="int8").run(feeds(xs))["fc"]
    assert sqnr_db(ref, after) > sqnr_db(ref, before) - 3


def test_the_option_on_the_default_recipe_shifts_and_stays_close_to_float():
    """Opt-in (``--with float-blob-offsets``): off in the default recipe."""
    g, xs = net(), samples()
    assert not any(lay.type == "Add" for lay in quantize(g, xs, QuantConfig()).graph.layers)
    r = quantize(g, xs, QuantConfig(offset_float_blobs=True))
    assert any(lay.type == "Add" for lay in r.graph.layers)
    ref = Executor(g).run(feeds(xs))["fc"]
    out = Executor(r.graph, mode="int8").run(feeds(xs))["fc"]
    assert sqnr_db(ref, out) > 25


def test_the_fallback_checks_folds_see_only_their_own_minima(monkeypatch):
    """The fallback check scores its recipe held out: each fold's build must take the blobs'
    minima from the samples outside the fold (sample i is in fold i % 2), not from all."""
    import tnnquant.quantize as q
    seen = {}

    def record(graph, ctx):
        seen["ctx"] = ctx
        return graph

    monkeypatch.setattr(q, "check_fallback", record)
    g, xs = net(), samples()
    q.quantize(g, xs, QuantConfig(**{**MINMAX, "fallback_check": True, "scale_search": True}))
    ctx = seen["ctx"]
    per_sample = Executor(g).run(feeds(xs), keep=["hs"])["hs"].min(axis=(2, 3))   # (N, C)
    np.testing.assert_array_equal(ctx.minima["hs"], per_sample.min(axis=0))
    assert len(ctx.held_out_minima) == 2
    for fold, minima in enumerate(ctx.held_out_minima):
        outside = np.arange(len(xs)) % 2 != fold
        np.testing.assert_array_equal(minima["hs"], per_sample[outside].min(axis=0))
