"""Per-input scales for a Concat whose output leaves int8 (passes/concat_scales.py): a
YOLO-like output concatenating box coordinates (hundreds) and class probabilities (0..1),
checked against the float model's outputs, on both devices and through the files."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_recipe_passes import cosine

from tnnquant.config import QuantConfig
from tnnquant.exec.executor import Executor
from tnnquant.formats.io import load_model, save_model
from tnnquant.formats.rawbuffer import RawBuffer
from tnnquant.passes.quantize_layers import flag_quantized_layers
from tnnquant.passes.scale_search import blob_groups
from tnnquant.quantize import quantize
from tnnquant.testing import GraphBuilder

f32 = np.float32
BOXES = 4


def net(classes_read_by_conv: bool = False):
    """c1 -> box conv (4 channels, values in the hundreds) and cls conv -> Sigmoid prob;
    Concat [box, prob] is the network output (or, with ``classes_read_by_conv``, read by an
    int8 1x1 conv)."""
    b = GraphBuilder(3)
    x = b.input("data", (1, 3, 8, 8))
    c1 = b.conv(x, 8, 3, pad=1, activation=1, name="c1")
    box = b.conv(c1, BOXES, 1, name="box")
    res = b.resources["box"]
    b.resources["box"] = dataclasses.replace(res, filter=RawBuffer.of(res.filter.data * f32(200)))
    cls = b.conv(c1, 6, 1, name="cls")
    prob = b.layer("Sigmoid", cls, name="prob")
    cat = b.layer("Concat", [box, prob], "1", name="cat", channels=BOXES + 6)
    if classes_read_by_conv:
        return b.build(b.conv(cat, 3, 1, name="after"))
    return b.build(cat)


def samples(n=8, seed=5):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1, (3, 8, 8)).astype(f32) for _ in range(n)]


def parts(graph, xs, device="x86"):
    """(box part, class part) of the int8 simulation's output."""
    out = Executor(graph, mode="int8", device=device).run({"data": np.stack(xs)})["cat"]
    return out[:, :BOXES], out[:, BOXES:]


@pytest.fixture(scope="module")
def built():
    g, xs = net(), samples()
    return (g, xs, quantize(g, xs, QuantConfig()),
            quantize(g, xs, QuantConfig(split_concat_scales=False)))


def test_the_output_concat_copies_each_inputs_codes_with_its_own_scale(built):
    _, _, split, _ = built
    scales = split.graph.blob_scales
    box, prob = scales["box"].scale, scales["prob"].scale
    assert box.size == BOXES and prob.size == 6
    assert len(set(box)) == 1 and len(set(prob)) == 1 and prob[0] < box[0] / 100
    np.testing.assert_array_equal(scales["cat"].scale, np.concatenate([box, prob]))
    assert not any(scales[b].zero_points.any() for b in ("box", "prob", "cat"))
    assert any(n.startswith("concat scales: 1 Concat") for n in split.notes)


def test_class_probabilities_survive_the_concat(built):
    g, xs, split, whole = built
    ref = Executor(g).run({"data": np.stack(xs)})["cat"]
    box, classes = parts(split.graph, xs)
    assert cosine(classes, ref[:, BOXES:]) > 0.999
    assert cosine(box, ref[:, :BOXES]) > 0.999
    # one scale for both: ~1.5 box units per code rounds every probability to 0
    _, lost = parts(whole.graph, xs)
    assert np.abs(lost).max() == 0


def test_files_and_both_devices(built, tmp_path):
    _, xs, split, _ = built
    save_model(split.graph, tmp_path / "m.tnnproto", tmp_path / "m.tnnmodel")
    loaded = load_model(tmp_path / "m.tnnproto", tmp_path / "m.tnnmodel")
    np.testing.assert_array_equal(loaded.blob_scales["cat"].scale,
                                  split.graph.blob_scales["cat"].scale)
    x86, naive = parts(loaded, xs), parts(loaded, xs, "naive")
    for a, b, step in zip(x86, naive, (split.graph.blob_scales["box"].scale[0],
                                       split.graph.blob_scales["prob"].scale[0])):
        assert np.abs(a - b).max() <= step * 1.0001   # x86 and NAIVE round alike but for ties


def test_left_alone_where_an_int8_layer_reads_the_concat_and_in_tnns_recipe():
    g, xs = net(classes_read_by_conv=True), samples()
    r = quantize(g, xs, QuantConfig())
    assert r.graph.layer("after").quantized
    assert not any(r.graph.blob_scales[b].per_channel for b in ("box", "prob", "cat"))
    tnn = quantize(net(), xs, QuantConfig.tnn())
    assert not any(n.startswith("concat scales") for n in tnn.notes)


def pooled_net():
    """Two conv(+ReLU) branches -> Concat -> max pool -> max pool -> 1x1 conv: GoogLeNet's
    inception outputs, whose max pools run int8 once scale merging flags them (§9)."""
    b = GraphBuilder(4)
    x = b.input("data", (1, 3, 12, 12))
    left = b.conv(x, 4, 3, pad=1, activation=1, name="left")
    right = b.conv(x, 6, 1, activation=1, name="right")
    cat = b.layer("Concat", [left, right], "1", name="cat", channels=10)
    p1 = b.layer("Pooling", cat, "0 3 3 2 2 0 0 -1 -1 -1 0 0 0 0", name="p1")
    p2 = b.layer("Pooling", p1, "0 3 3 1 1 1 1 -1 -1 -1 0 0 0 0", name="p2")
    return b.build(b.conv(p2, 5, 1, name="after"))


def concat_is_exact(graph, name: str) -> bool:
    """TNN's int8 Concat copies the codes when any input is per-channel, else requantizes
    them to the output's one scale (§12.6): a copy is right only if the output's scales are
    the inputs' scales, channel for channel."""
    layer = graph.layer(name)
    scales = [graph.blob_scales[b].scale for b in layer.inputs]
    out = graph.blob_scales[layer.outputs[0]].scale
    if all(s.size == 1 for s in scales):
        return out.size == 1
    return np.array_equal(out, np.concatenate(scales))


def test_a_concat_read_by_max_pools_keeps_one_scale_through_the_chain():
    """The max pools reading a Concat are int8 readers (merging flags them), so the Concat
    is not split; the scale search ties the Concat's output and every merged pool after it
    (a chain: the second pool's source is flagged by merging too), so the runtime's one
    scale is the one the search chose. Both went wrong on GoogLeNet: an int8 Concat copying
    codes into scales they were not made for (its output cosine 0.31 in-sample)."""
    g, xs = pooled_net(), samples(seed=6)
    xs = [np.abs(np.resize(x, (3, 12, 12))) for x in xs]
    r = quantize(g, xs, QuantConfig(fallback_check=False))
    assert not any(n.startswith("concat scales") for n in r.notes)
    assert r.graph.layer("p1").quantized and r.graph.layer("p2").quantized
    assert concat_is_exact(r.graph, "cat")
    calibrated = g.copy()   # as the scale search sees it: scales, layers flagged, not merged
    calibrated.blob_scales = dict(r.graph.blob_scales)
    groups, tensor_only = blob_groups(flag_quantized_layers(calibrated))
    group = next(grp for grp in groups if "cat" in grp)
    assert {"p1", "p2"} <= group and "cat" in tensor_only   # one rule, per-tensor
    y = Executor(g).run({"data": np.stack(xs)})["after"]
    y_q = Executor(r.graph, mode="int8").run({"data": np.stack(xs)})["after"]
    assert cosine(y_q, y) > 0.99


def relu_after_concat_net():
    """Two convs without activation -> Concat -> ReLU -> 1x1 conv (ShuffleNet's stride-2
    units): merging gives the Concat's output the ReLU's scales, which differ from its
    inputs' wherever a channel's negative values are larger than its positive ones."""
    b = GraphBuilder(5)
    x = b.input("data", (1, 3, 8, 8))
    cat = b.layer("Concat", [b.conv(x, 4, 3, pad=1, name="left"),
                             b.conv(x, 4, 1, name="right")], "1", name="cat", channels=8)
    return b.build(b.conv(b.layer("ReLU", cat, name="relu"), 3, 1, name="after"))


@pytest.mark.parametrize("config", [QuantConfig(scale_search=False, fallback_check=False),
                                    QuantConfig(blob_method="minmax", scale_search=False,
                                                learned_rounding=False, fallback_check=False),
                                    QuantConfig()])
def test_int8_concats_requantize_without_the_scale_search_too(config):
    """Without the scale search (an option, and the fallback check's recipe) the Concat's
    blobs are tied per-tensor by this step; TNN's recipe, and the step switched off, leave
    TNN's byte copy into the ReLU's scales, and the warning says so."""
    g, xs = relu_after_concat_net(), samples(seed=7)
    r = quantize(g, xs, config)
    assert concat_is_exact(r.graph, "cat")
    assert not [w for w in r.warnings if "int8 Concat 'cat' copies" in w]
    off = quantize(g, xs, dataclasses.replace(config, split_concat_scales=False))
    tnn = quantize(g, xs, QuantConfig.tnn())
    for broken in ([] if config.scale_search else [off]) + [tnn]:
        assert not concat_is_exact(broken.graph, "cat")
        assert [w for w in broken.warnings if "int8 Concat 'cat' copies" in w]


def test_an_exact_per_channel_concat_is_left_per_channel():
    """A Concat whose per-channel output scales are its inputs' (the same data calibrated
    alike, nothing merged after it) copies exactly: without the scale search it keeps them."""
    g, xs = net(classes_read_by_conv=True), samples()
    r = quantize(g, xs, QuantConfig(blob_method="minmax", scale_search=False,
                                    learned_rounding=False, fallback_check=False))
    assert r.graph.blob_scales["cat"].per_channel and concat_is_exact(r.graph, "cat")
    assert not any("made per-tensor" in n for n in r.notes)
