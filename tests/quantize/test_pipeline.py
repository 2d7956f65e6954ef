"""The quantizer's graph rules (spec int8 §2, §4, §7-§9) on small in-memory models, each checked
against a direct formula or rule written here."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tnnquant.config import QuantConfig
from tnnquant.errors import ConfigError, InputError
from tnnquant.exec.executor import Executor
from tnnquant.formats.io import load_model, save_model
from tnnquant.formats.rawbuffer import RawBuffer
from tnnquant.passes.fuse_activation import fuse_conv_activation
from tnnquant.quantize import quantize
from tnnquant.testing import GraphBuilder

f32 = np.float32


def minmax_scale(absmax: np.ndarray) -> np.ndarray:
    """spec int8 §6.1: f32(((double)2047 + 0.5) / (double)f32(2048 / max) / 127.0)"""
    interval = (f32(2048) / np.asarray(absmax, f32)).astype(f32)
    return ((2047.5 / interval.astype(np.float64)) / 127.0).astype(f32)


def rhaz(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x.astype(np.float64)) + 0.5)


def samples(shape, n=4, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1, shape).astype(f32) for _ in range(n)]


def tiny_net(seed: int = 0):
    """conv(+relu) -> maxpool -> conv -> add(skip) -> relu -> conv(depthwise) -> gap -> fc."""
    b = GraphBuilder(seed)
    x = b.input("data", (1, 3, 16, 16))
    c1 = b.conv(x, 8, 3, pad=1, name="conv1")
    r1 = b.layer("ReLU", c1, name="relu1")
    p1 = b.layer("Pooling", r1, "0 2 2 2 2 0 0 -1 -1 -1 0 0 0 0", name="pool1")
    c2 = b.conv(p1, 8, 3, pad=1, name="conv2")
    a = b.layer("Add", [c2, p1], "-1", name="add")
    r2 = b.layer("ReLU", a, name="relu2")
    dw = b.conv(r2, 8, 3, pad=1, group=8, name="dw")
    gap = b.layer("Pooling", dw, "1 0 0 1 1 0 0 -1 -1 -1 0 0 0 0", name="gap")
    fc = b.inner_product(gap, 5, 8, name="fc")
    return b.build(fc)


def run_stats(graph, xs):
    """Float activations of the fused graph for every blob, stacked over the samples."""
    from tnnquant.exec.executor import Executor
    blobs: dict[str, np.ndarray] = {}
    # one batch, as the quantizer runs these few samples (BLAS sums depend on the batch)
    Executor(fuse_conv_activation(graph)).run(
        {graph.inputs[0].name: np.stack(xs)}, hooks=[lambda n, a, _: blobs.setdefault(n, a)])
    return blobs


def per_channel_absmax(a: np.ndarray) -> np.ndarray:
    a = a.reshape(a.shape[0], a.shape[1], -1)
    return np.abs(a).max(axis=(0, 2))


def test_fusion_matches_tnn_rules():
    g = tiny_net()
    fused = fuse_conv_activation(g)
    names = [layer.name for layer in fused.layers]
    assert "relu1" not in names                      # conv1 + ReLU fused (spec §2)
    assert "relu2" in names                          # ReLU after an Add is not fused
    conv1 = fused.layer("conv1")
    assert conv1.params.activation_type == 1 and conv1.outputs == ["relu1"]


def test_no_fusion_when_conv_output_is_reused_later():
    b = GraphBuilder()
    x = b.input("data", (1, 3, 8, 8))
    c = b.conv(x, 4, 3, pad=1, name="conv")
    r = b.layer("ReLU6", c, name="act")
    a = b.layer("Add", [r, c], "-1", name="add")     # uses the pre-activation blob again
    fused = fuse_conv_activation(b.build(a))
    assert [layer.name for layer in fused.layers] == ["conv", "act", "add"]


def test_sigmoid_mul_fuses_into_swish_activation():
    b = GraphBuilder()
    x = b.input("data", (1, 3, 8, 8))
    c = b.conv(x, 4, 3, pad=1, name="conv")
    s = b.layer("Sigmoid", c, name="sig")
    m = b.layer("Mul", [c, s], "-1", name="mul")
    fused = fuse_conv_activation(b.build(m))
    assert [layer.name for layer in fused.layers] == ["conv"]
    assert fused.layers[0].params.activation_type == 256 and fused.layers[0].outputs == ["mul"]


def test_minmax_scales_per_channel_and_fallbacks():
    g = tiny_net()
    xs = samples((3, 16, 16))
    result = quantize(g, xs, QuantConfig.tnn())
    acts = run_stats(g, xs)
    scales = result.float_graph.blob_scales
    # every blob of Convolution/Add/Concat/InnerProduct/ReLU/Pooling layers (spec §4)
    expected = {"data", "relu1", "pool1", "conv2", "add", "relu2", "dw", "gap", "fc"}
    assert set(result.plans) == expected
    for name in ["data", "relu1", "conv2", "add", "dw"]:
        np.testing.assert_array_equal(scales[name].scale,
                                      minmax_scale(per_channel_absmax(acts[name])), err_msg=name)
    # InnerProduct inputs and outputs are per tensor (spec §4)
    for name in ["gap", "fc"]:
        assert result.plans[name].per_tensor
        np.testing.assert_array_equal(scales[name].scale,
                                      minmax_scale(np.abs(acts[name]).max()[None]))


def test_kl_falls_back_to_minmax_on_small_maps_and_inputs():
    g = tiny_net()
    result = quantize(g, samples((3, 16, 16)), QuantConfig.tnn(blob_method="kl"))
    assert result.plans["data"].method == "minmax"          # network input (spec §4)
    assert result.plans["relu1"].method == "kl"             # 16x16 = 256 >= 100
    assert result.plans["pool1"].method == "minmax"         # 8x8 = 64 < 100


def test_merge_type_one_makes_blobs_per_tensor():
    g = tiny_net()
    xs = samples((3, 16, 16))
    result = quantize(g, xs, QuantConfig.tnn(merge_type=1))
    acts = run_stats(g, xs)
    assert all(p.per_tensor for p in result.plans.values())
    np.testing.assert_array_equal(result.float_graph.blob_scales["relu1"].scale,
                                  minmax_scale(np.abs(acts["relu1"]).max()[None]))


def test_quantized_layers_and_scale_merging():
    g = tiny_net()
    result = quantize(g, samples((3, 16, 16)), QuantConfig.tnn())
    q = {layer.name: layer.quantized for layer in result.graph.layers}
    assert q == {"conv1": True, "pool1": True, "conv2": True, "add": True, "relu2": True,
                 "dw": True, "gap": False, "fc": True}
    scales = result.graph.blob_scales
    # max pool after a quantized conv: its input shares its output's scale (spec §9) ...
    assert scales["relu1"] is scales["pool1"]
    # ... and the ReLU after the quantized Add merges likewise
    assert scales["add"] is scales["relu2"]


def test_weights_folded_with_input_scale_and_truncated_bias():
    g = tiny_net()
    xs = samples((3, 16, 16))
    result = quantize(g, xs, QuantConfig.tnn())
    float_scales = result.float_graph.blob_scales
    layer = result.graph.layer("conv2")
    res, src = result.graph.resources["conv2"], g.resources["conv2"]
    s_in = float_scales["pool1"].scale                       # scale before merging (spec §8.6)
    w = src.filter.data.reshape(8, 8, 9)
    folded = (w * s_in[None, :, None]).astype(f32)
    a = np.abs(folded).reshape(8, -1).max(axis=1)
    scale = (a / f32(127)).astype(f32)
    inv = (f32(1) / scale).astype(f32)
    q = np.clip(rhaz((folded.reshape(8, -1) * inv[:, None]).astype(f32)), -127, 127)
    np.testing.assert_array_equal(res.filter.data.reshape(8, -1), q.astype(np.int8))
    np.testing.assert_array_equal(res.scale.data, scale)
    bias = np.trunc((src.bias.data / scale).astype(f32)).astype(np.int32)   # trunc, not round
    np.testing.assert_array_equal(res.bias.data, bias)
    assert layer.params.activation_type == 0


def test_depthwise_scale_multiplied_after_quantization():
    g = tiny_net()
    result = quantize(g, samples((3, 16, 16)), QuantConfig.tnn())
    s_in = result.float_graph.blob_scales["relu2"].scale
    w = g.resources["dw"].filter.data.reshape(8, 9)
    a = np.abs(w).max(axis=1)
    expected = ((a / f32(127)).astype(f32) * s_in).astype(f32)   # spec §8.1 depthwise
    np.testing.assert_array_equal(result.graph.resources["dw"].scale.data, expected)


def test_add_with_constant_stays_float():
    b = GraphBuilder()
    x = b.input("data", (1, 3, 8, 8))
    c = b.conv(x, 4, 3, pad=1, name="conv")
    from tnnquant.formats.rawbuffer import RawBuffer
    from tnnquant.layers._resources import ElementResource
    const = ElementResource(RawBuffer.of(np.ones((1, 4, 1, 1), f32), dims=(1, 4, 1, 1)))
    a = b.layer("Add", c, "1", const, name="bias_add")
    result = quantize(b.build(a), samples((3, 8, 8)), QuantConfig.tnn())
    assert not result.graph.layer("bias_add").quantized
    assert result.graph.layer("conv").quantized


def test_stale_scale_fold_and_its_fix():
    """A blob merged through ReLU that also feeds a conv: TNN folds that conv's weights with
    the pre-merge scale (spec §9); --fix-merged-scales folds with the merged one."""
    b = GraphBuilder(3)
    x = b.input("data", (1, 3, 12, 12))
    c1 = b.conv(x, 4, 3, pad=1, name="conv1")
    a = b.layer("Add", [c1, c1], "-1", name="add")
    r = b.layer("ReLU", a, name="relu")
    c2 = b.conv(a, 4, 1, name="branch")               # reads the merged blob 'add'
    out = b.layer("Concat", [r, c2], "1", name="cat")
    g = b.build(out)
    xs = samples((3, 12, 12))
    tnn = quantize(g, xs, QuantConfig.tnn())
    fixed = quantize(g, xs, QuantConfig.tnn(fold_merged_scales=True))
    before = tnn.float_graph.blob_scales["add"].scale
    merged = tnn.graph.blob_scales["add"].scale
    assert tnn.graph.blob_scales["add"] is tnn.graph.blob_scales["relu"]
    assert not np.array_equal(before, merged)
    w = g.resources["branch"].filter.data.reshape(4, 4)

    def weight_scale(s_in):
        return (np.abs((w * s_in[None, :]).astype(f32)).max(axis=1) / f32(127)).astype(f32)

    np.testing.assert_array_equal(tnn.graph.resources["branch"].scale.data, weight_scale(before))
    np.testing.assert_array_equal(fixed.graph.resources["branch"].scale.data,
                                  weight_scale(merged))


def test_exclude_keeps_layer_float():
    g = tiny_net()
    result = quantize(g, samples((3, 16, 16)), QuantConfig.tnn(exclude=("conv2",)))
    assert not result.graph.layer("conv2").quantized
    assert result.graph.resources["conv2"] is g.resources["conv2"]
    with pytest.raises(ConfigError, match="no layer named 'nope'"):
        quantize(g, samples((3, 16, 16)), QuantConfig.tnn(exclude=("nope",)))


def test_written_model_reads_back(tmp_path):
    g = tiny_net()
    result = quantize(g, samples((3, 16, 16)), QuantConfig.from_tnn(2, 1, 0))
    result.save(tmp_path / "q.tnnproto", tmp_path / "q.tnnmodel")
    back = load_model(tmp_path / "q.tnnproto", tmp_path / "q.tnnmodel")
    assert [layer.proto_type for layer in back.layers] == \
        [layer.proto_type for layer in result.graph.layers]
    for name, bs in result.graph.blob_scales.items():
        if name in back.blob_scales:
            np.testing.assert_array_equal(back.blob_scales[name].scale, bs.scale)
    # ModelPacker order: input scales, then the layer's record, then its output scales
    assert back.resources["conv1"].filter.data.dtype == np.int8


def test_folder_calibration_matches_arrays(tmp_path):
    g = tiny_net()
    xs = samples((3, 16, 16))
    for i, x in enumerate(xs):
        np.save(tmp_path / f"{i:02d}.npy", x)
    (tmp_path / "notes.md").write_text("not a sample")
    warnings = []
    from_folder = quantize(g, tmp_path, QuantConfig.tnn(), warn=warnings.append)
    from_arrays = quantize(g, [x[None] for x in xs], QuantConfig.tnn())
    assert any("notes.md" in w for w in warnings)
    for name, bs in from_arrays.graph.blob_scales.items():
        np.testing.assert_array_equal(from_folder.graph.blob_scales[name].scale, bs.scale)


def test_batch_size_barely_changes_results():
    """Streaming batches of any size gives the same statistics up to the float rounding of
    BLAS, whose summation order depends on the batch size."""
    g = tiny_net()
    xs = samples((3, 16, 16), n=5)
    one = quantize(g, [x[None] for x in xs], QuantConfig.tnn(batch_size=1, blob_method="kl"))
    many = quantize(g, [np.stack(xs)], QuantConfig.tnn(batch_size=8, blob_method="kl"))
    for name, bs in one.graph.blob_scales.items():
        np.testing.assert_allclose(many.graph.blob_scales[name].scale, bs.scale, rtol=1e-5)


def test_onnxruntime_calibration_loads_one_sample_at_a_time(tmp_path):
    """onnxruntime runs the calibration sample by sample, so the samples are read that way
    too (a batch of 8 only held more inputs in memory); the numpy kernels still get the
    configured batches."""
    g = tiny_net()
    for i, x in enumerate(samples((3, 16, 16), n=5)):
        np.save(tmp_path / f"{i:02d}.npy", x)
    for fp32, ranges in (("fast", [1, 2, 3, 4, 5]), ("naive", [5])):
        seen = []
        quantize(g, tmp_path, QuantConfig.tnn(batch_size=8, fp32=fp32),
                 progress=lambda stage, done: seen.append(done) if stage == "ranges" else None)
        assert seen == ranges, fp32


def test_warns_when_an_int8_concat_copies_codes_into_other_scales():
    """YOLOv8's head concatenates reshaped per-channel blobs along a spatial axis; TNN's int8
    Concat then copies the bytes (spec int8 §12.6) while the output's channel scales are the
    larger of the inputs': the smaller input's values come out rescaled. TNN's recipe gets the
    warning (and its simulated output shows the error); the default recipe, whose Concat
    blobs are per-tensor, is exact."""
    b = GraphBuilder(2)
    x = b.input("data", (1, 3, 8, 8))
    small = b.conv(x, 4, 1, name="small")
    large = b.conv(x, 4, 1, name="large")
    res = b.resources["large"]
    b.resources["large"] = dataclasses.replace(res, filter=RawBuffer.of(res.filter.data * f32(5)))
    parts = [b.layer("Reshape", y, "0 3 3 1 4 -1 0", name=f"r_{y}") for y in (small, large)]
    g = b.build(b.layer("Concat", parts, "2", name="cat"))
    xs = samples((3, 8, 8))
    y = Executor(g).run({"data": np.stack(xs)})["cat"][..., :64]   # the small part
    for config, warned in ((QuantConfig.tnn(), True), (QuantConfig(), False)):
        r = quantize(g, xs, config)
        said = [w for w in r.warnings if "int8 Concat 'cat' copies" in w]
        assert bool(said) == warned, r.warnings
        y_q = Executor(r.graph, mode="int8").run({"data": np.stack(xs)})["cat"][..., :64]
        relative = np.abs(y_q - y).max() / np.abs(y).max()
        assert (relative > 1) if warned else (relative < 0.2), (config, relative)


def test_says_when_calibration_runs_on_the_numpy_kernels():
    """A layer onnxruntime cannot run (an even-size LRN) sends the calibration to the numpy
    kernels, several times slower: the result's notes say so and name the layer; a graph
    that runs in onnxruntime, or the numpy kernels asked for (--exact), get no such note."""
    xs = samples((3, 16, 16))
    plain = tiny_net()
    b = GraphBuilder()
    y = b.conv(b.input("data", (1, 3, 16, 16)), 8, 3, pad=1)
    y = b.conv(b.layer("LRN", y, "0.0001 0.75 1.0 4", name="lrn"), 8, 3, pad=1)
    with_lrn = b.build(y)
    config = QuantConfig.tnn()
    said = [n for n in quantize(with_lrn, xs, config).notes if "numpy kernels" in n]
    assert len(said) == 1 and "'lrn'" in said[0] and "no ONNX export" in said[0], said
    for graph, fp32 in ((plain, "fast"), (with_lrn, "naive")):
        notes = quantize(graph, xs, QuantConfig.tnn(fp32=fp32)).notes
        assert not [n for n in notes if "numpy kernels" in n], (fp32, notes)


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(InputError):
        quantize(tiny_net(), tmp_path, QuantConfig.tnn())


def test_already_quantized_model_is_rejected(tmp_path):
    result = quantize(tiny_net(), samples((3, 16, 16)), QuantConfig.tnn())
    with pytest.raises(ConfigError, match="already quantized"):
        quantize(result.graph, samples((3, 16, 16)), QuantConfig.tnn())


def test_warnings(tmp_path):
    b = GraphBuilder()
    x = b.input("data", (1, 3, 8, 8))
    c = b.conv(x, 4, 3, pad=1, name="conv")
    z = b.layer("Mul", [c, c], "-1", name="sq")            # float layer between int8 layers
    c2 = b.conv(z, 4, 1, name="conv2")
    result = quantize(b.build(c2), samples((3, 8, 8)), QuantConfig.from_tnn(3, 0, 0))
    text = "\n".join(result.warnings)
    assert "NAIVE" in text                                  # asymmetric modes
    assert "sq" in text                                     # float island
    save_model(result.graph, tmp_path / "a.tnnproto", tmp_path / "a.tnnmodel")


def test_histogram_groups_under_a_memory_budget_give_the_same_scales():
    """KL histograms filled in several groups (one float pass each) equal one big group."""
    b = GraphBuilder(5)
    x = b.input("data", (1, 3, 16, 16))
    y = b.conv(x, 4, 3, pad=1, activation=1, name="c1")
    y = b.conv(y, 4, 3, pad=1, activation=1, name="c2")
    g = b.build(b.conv(y, 4, 3, pad=1, name="c3"))
    xs = samples((3, 16, 16))
    one = quantize(g, xs, QuantConfig.tnn(blob_method="kl"))
    from tnnquant.calib.collect import StatsCollector
    collector = StatsCollector(fuse_conv_activation(g), "kl", False, hist_budget_bytes=1)
    groups = list(collector.run(lambda: iter([{"data": np.stack(xs)}])))
    hist_groups = [grp for grp in groups if any(s.histogram is not None for s in grp.values())]
    assert len(hist_groups) == sum(p.method == "kl" for p in collector.plans.values()) > 1
    from tnnquant.calib.collect import blob_scales
    for grp in groups:
        for name, bs in blob_scales(collector.plans, grp).items():
            np.testing.assert_array_equal(bs.scale, one.float_graph.blob_scales[name].scale)


def test_warns_when_an_input_channel_quantizes_to_zero():
    """TNN issue #187: an input channel whose calibration values stay within 1e-5 gets scale 0
    and reaches the int8 network as zeros."""
    xs = samples((3, 16, 16))
    for x in xs:
        x[1] *= 1e-6
    result = quantize(tiny_net(), xs, QuantConfig.tnn())
    assert any("input 'data' channel(s) 1 " in w and "#187" in w for w in result.warnings)
    np.testing.assert_array_equal(result.graph.blob_scales["data"].scale[1], 0)
