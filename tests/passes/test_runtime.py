"""TNN's load-time rewrites of quantized graphs (spec int8 §11.2): conv+add fusion with its
order flag, the conv+activation pass around it, Reformat insertion with TNN's names."""
from __future__ import annotations

import numpy as np
import pytest

from tnnquant.errors import TnnQuantError
from tnnquant.exec.int8_math import FUSION_ACT_ADD, FUSION_ADD_ACT
from tnnquant.ir.graph import BlobScale
from tnnquant.layers.convolution import FusedConvParams
from tnnquant.passes.runtime import runtime_graph
from tnnquant.testing import GraphBuilder

CONV_1x1 = "1 4 4 1 1 1 1 0 0 1 -1 1 1 {act}"
CONV_3x3 = "1 4 4 3 3 1 1 1 1 1 -1 1 1 0"


def with_scales(graph, skip=()):
    for b in graph.referenced_blobs() | {i.name for i in graph.inputs}:
        if b not in skip:
            graph.blob_scales[b] = BlobScale(np.full(4, 0.1, np.float32))
    return graph


def residual(conv=CONV_1x1.format(act=0), add="QuantizedAdd", after=None, extra_user=False):
    """x -> qconv a -> qconv b; add(b, a) [-> after]"""
    b = GraphBuilder()
    x = b.input("x", (1, 4, 8, 8))
    a = b.layer("QuantizedConvolution", x, CONV_3x3, name="a", channels=4)
    c = b.layer("QuantizedConvolution", a, conv, name="b", channels=4)
    s = b.layer(add, [c, a], "-1", name="add")
    out = [b.layer(after, s, "", name="after")] if after else [s]
    if extra_user:
        out.append(b.layer("QuantizedReLU", c, "", name="late"))
    return with_scales(b.build(out))


def layer_names(graph):
    return [lay.name for lay in graph.layers]


@pytest.mark.parametrize("act, fusion", [(0, FUSION_ADD_ACT), (1, FUSION_ACT_ADD),
                                         (2, FUSION_ACT_ADD)])
def test_conv_add_fusion_order_flag(act, fusion):
    g = runtime_graph(residual(CONV_1x1.format(act=act)))
    assert layer_names(g) == ["a", "b"]
    conv = g.layers[1]
    assert conv.inputs == ["a", "a"] and conv.outputs == ["add"]
    assert isinstance(conv.params, FusedConvParams) and conv.params.fusion == fusion
    assert conv.params.activation_type == act


def test_a_relu_after_the_add_fuses_into_the_conv():
    g = runtime_graph(residual(after="QuantizedReLU"))
    conv = g.layers[1]
    assert layer_names(g) == ["a", "b"] and conv.outputs == ["after"]
    assert conv.params.fusion == FUSION_ADD_ACT and conv.params.activation_type == 1


@pytest.mark.parametrize("conv", ["1 4 4 3 3 1 1 1 1 1 -1 1 1 0",   # 3x3
                                  "1 4 4 1 1 2 2 0 0 1 -1 1 1 0",   # stride 2
                                  "2 2 4 1 1 1 1 0 0 1 -1 1 1 0",   # grouped
                                  "1 4 4 1 1 1 1 1 1 1 -1 1 1 0"])  # padded
def test_only_plain_pointwise_convs_absorb_an_add(conv):
    assert "add" in layer_names(runtime_graph(residual(conv)))


def test_no_fusion_with_a_float_add_or_a_later_user():
    g = runtime_graph(residual(add="Add"))
    assert "add" in layer_names(g) and "b_int8_reformat" in layer_names(g)
    assert "add" in layer_names(runtime_graph(residual(extra_user=True)))


def test_the_writer_sees_a_plain_conv():
    conv = runtime_graph(residual()).layers[1]
    assert conv.params.format() == "1 4 4 1 1 1 1 0 0 1 -1 1 1 0".split()


def mixed_graph():
    """x feeds a quantized conv and a float Sigmoid; a float SplitV feeds quantized layers with
    both outputs; the quantized conv output feeds a float layer and is also a network output."""
    b = GraphBuilder()
    x = b.input("x", (1, 4, 8, 8))
    c = b.layer("QuantizedConvolution", x, CONV_3x3, name="conv", channels=4)
    s = b.layer("Sigmoid", x, "", name="sig")
    p, q = b.layer("SplitV", s, "1 2 2 2", n_out=2, name="split")
    cat = b.layer("QuantizedConcat", [p, q, c], "1", name="cat")
    f = b.layer("Tanh", c, "", name="tanh")
    return b.build([cat, f, c])


def test_reformats_have_tnn_names_and_places():
    g = with_scales(mixed_graph())
    r = runtime_graph(g)
    assert layer_names(r) == ["x_int8_reformat__from_model_input__", "conv",
                              "conv_int8_reformat", "sig", "split", "split_int8_reformat",
                              "cat", "tanh"]
    by_name = {lay.name: lay for lay in r.layers}
    assert by_name["x_int8_reformat__from_model_input__"].outputs == ["x_int8_reformat"]
    assert by_name["conv"].inputs == ["x_int8_reformat"] and by_name["sig"].inputs == ["x"]
    assert by_name["conv_int8_reformat"].inputs == ["conv"]
    assert by_name["tanh"].inputs == ["conv_int8_reformat"]
    assert by_name["split_int8_reformat"].inputs == ["split_out0", "split_out1"]
    assert by_name["cat"].inputs == ["split_out0_int8_reformat", "split_out1_int8_reformat",
                                     "conv"]
    # the fp32 -> int8 side takes a copy of the scale of the blob it quantizes
    assert r.blob_scales["split_out1_int8_reformat"] is g.blob_scales["split_out1"]
    assert r.blob_scales["x_int8_reformat"] is g.blob_scales["x"]
    assert "conv_int8_reformat" not in r.blob_scales
    assert layer_names(g)[0] == "conv"                    # the input graph is not touched
    assert layer_names(runtime_graph(r)) == layer_names(r)  # idempotent


def test_a_float_blob_without_scale_feeding_a_quantized_layer_is_an_error():
    g = with_scales(mixed_graph(), skip={"split_out1"})
    with pytest.raises(TnnQuantError, match="'split_out1' feeds a quantized layer but has no "
                                            "scale"):
        runtime_graph(g)


def test_float_graphs_are_unchanged():
    b = GraphBuilder()
    x = b.input("x", (1, 4, 8, 8))
    g = b.build(b.layer("ReLU", b.conv(x, 4, 1), "", name="r"))
    assert layer_names(runtime_graph(g)) == layer_names(g)
