"""Conv / ConvTranspose / BatchNormalization mappings against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_models import check, convert_error, layer_types, make_model, node

RNG = np.random.default_rng(1)


def w(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("attrs, in_ch, group, x_hw", [
    (dict(pads=[1, 1, 1, 1]), 4, 1, (9, 9)),
    (dict(pads=[1, 2, 1, 2], strides=[2, 1]), 4, 1, (9, 8)),
    (dict(dilations=[2, 2], pads=[2, 2, 2, 2]), 4, 1, (11, 11)),
    (dict(group=4, pads=[1, 1, 1, 1]), 4, 4, (8, 8)),             # depthwise
    (dict(group=2, strides=[2, 2]), 4, 2, (9, 9)),                # grouped, no pads
    (dict(auto_pad="SAME_UPPER", strides=[2, 2]), 4, 1, (9, 10)),
    (dict(auto_pad="VALID", strides=[2, 2]), 4, 1, (9, 10)),
    (dict(pads=[0, 0, 1, 1], strides=[2, 2]), 4, 1, (8, 8)),      # asymmetric = TNN's SAME
    (dict(pads=[1, 0, 0, 2]), 4, 1, (7, 7)),                       # asymmetric: Pad, then conv
])
def test_conv(tmp_path, attrs, in_ch, group, x_hw):
    out_ch = 6 if group == 1 else 2 * group
    weight, bias = w(out_ch, in_ch // group, 3, 3), w(out_ch)
    model = make_model([node("Conv", ["x", "w", "b"], kernel_shape=[3, 3], **attrs)],
                       {"x": (1, in_ch, *x_hw)}, consts={"w": weight, "b": bias})
    graph = check(model, tmp_path)
    assert layer_types(graph)[-1] == "Convolution"
    assert layer_types(graph)[:-1] == (["Pad"] if attrs.get("pads") == [1, 0, 0, 2] else [])


def test_conv_without_bias_and_kernel_shape(tmp_path):
    model = make_model([node("Conv", ["x", "w"])], {"x": (2, 3, 7, 7)}, consts={"w": w(5, 3, 1, 1)})
    graph = check(model, tmp_path)
    assert graph.layers[0].params.bias == 0


def test_conv_bn_folds(tmp_path):
    c = 6
    model = make_model(
        [node("Conv", ["x", "w"], "t", pads=[1, 1, 1, 1]),
         node("BatchNormalization", ["t", "g", "be", "m", "v"], epsilon=1e-3)],
        {"x": (1, 3, 8, 8)},
        consts={"w": w(c, 3, 3, 3), "g": w(c), "be": w(c), "m": w(c),
                "v": np.abs(w(c)) + 0.5})
    graph = check(model, tmp_path, atol=1e-4)
    assert layer_types(graph) == ["Convolution"]
    assert graph.layers[0].outputs == ["y"]


def test_standalone_batchnorm(tmp_path):
    c = 3
    model = make_model([node("Relu", ["x"], "t"),
                        node("BatchNormalization", ["t", "g", "be", "m", "v"])],
                       {"x": (2, c, 5, 5)},
                       consts={"g": w(c), "be": w(c), "m": w(c), "v": np.abs(w(c)) + 0.5})
    graph = check(model, tmp_path)
    assert layer_types(graph) == ["ReLU", "BatchNormCxx"]


@pytest.mark.parametrize("attrs, group", [
    (dict(strides=[2, 2]), 1),
    (dict(strides=[2, 2], pads=[1, 1, 1, 1]), 1),
    (dict(strides=[2, 2], pads=[1, 1, 1, 1], group=2), 2),
    (dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]), 1),   # out = in * 2
])
def test_conv_transpose(tmp_path, attrs, group):
    model = make_model([node("ConvTranspose", ["x", "w", "b"], kernel_shape=[3, 3], **attrs)],
                       {"x": (1, 4, 5, 6)}, consts={"w": w(4, 6 // group, 3, 3), "b": w(6)})
    graph = check(model, tmp_path)
    assert layer_types(graph) == ["Deconvolution"]


@pytest.mark.parametrize("attrs, message", [
    (dict(auto_pad="SAME_LOWER"), "SAME_LOWER"),
    (dict(dilations=[1, 2]), "dilations"),
])
def test_conv_refusals(tmp_path, attrs, message):
    model = make_model([node("Conv", ["x", "w"], kernel_shape=[3, 3], **attrs)],
                       {"x": (1, 2, 8, 8)}, consts={"w": w(2, 2, 3, 3)})
    error = convert_error(model, tmp_path)
    assert message in error and "conv_y" in error and "Conv, opset 13" in error


def test_conv_weight_must_be_constant(tmp_path):
    model = make_model([node("Conv", ["x", "w"])], {"x": (1, 2, 4, 4), "w": (2, 2, 1, 1)})
    assert "must be a constant" in convert_error(model, tmp_path)


@pytest.mark.parametrize("attrs", [
    dict(strides=[2, 3], pads=[1, 1, 1, 1], output_padding=[1, 1]),   # PyTorch's decoders
    dict(strides=[3, 2], pads=[1, 0, 2, 1], output_padding=[1, 0]),
    dict(strides=[2, 2], pads=[1, 0, 0, 1]),
])
def test_conv_transpose_other_geometry_crops_the_canvas(tmp_path, attrs):
    model = make_model([node("ConvTranspose", ["x", "w", "b"], kernel_shape=[3, 3], **attrs)],
                       {"x": (1, 4, 5, 6)}, consts={"w": w(4, 3, 3, 3), "b": w(3)})
    graph = check(model, tmp_path)
    assert layer_types(graph) == ["Deconvolution", "StridedSliceV2"]
    assert graph.layers[0].params.pad_h == graph.layers[0].params.pad_w == 0


def test_conv_transpose_past_the_canvas_refused(tmp_path):
    # output_padding beyond the end pad asks for rows no kernel tap reaches
    model = make_model([node("ConvTranspose", ["x", "w"], strides=[2, 2],
                             output_padding=[1, 0])], {"x": (1, 2, 4, 4)},
                       consts={"w": w(2, 2, 3, 3)})
    assert "past the deconvolution's canvas" in convert_error(model, tmp_path)
