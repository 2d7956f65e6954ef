"""Activation mappings (and the Swish / HardSwish fusions) against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_models import check, convert_error, layer_types, make_model, node

X = {"x": (2, 4, 5, 6)}


@pytest.mark.parametrize("op, attrs, tnn", [
    ("Relu", {}, "ReLU"),
    ("Sigmoid", {}, "Sigmoid"),
    ("Tanh", {}, "Tanh"),
    ("LeakyRelu", dict(alpha=0.1), "PReLU"),
    ("LeakyRelu", {}, "PReLU"),
    ("HardSigmoid", dict(alpha=0.25, beta=0.4), "HardSigmoid"),
    ("HardSigmoid", {}, "HardSigmoid"),
    ("HardSwish", {}, "HardSwish"),
    ("Elu", dict(alpha=0.7), "Elu"),
    ("Elu", {}, "Elu"),
    ("Abs", {}, "Abs"),
])
def test_unary(tmp_path, op, attrs, tnn):
    opset = 14 if op == "HardSwish" else 13
    graph = check(make_model([node(op, ["x"], **attrs)], X, opset=opset), tmp_path)
    assert layer_types(graph) == [tnn]


@pytest.mark.parametrize("low, high, tnn", [
    (0.0, 6.0, "ReLU6"), (-1.0, 1.5, "Clip"), (0.0, None, "ReLU"), (None, 0.5, "Clip")])
def test_clip(tmp_path, low, high, tnn):
    consts = {k: np.float32(v) for k, v in (("lo", low), ("hi", high)) if v is not None}
    inputs = ["x", "lo" if low is not None else "", "hi" if high is not None else ""]
    graph = check(make_model([node("Clip", inputs)], X, consts=consts), tmp_path)
    assert layer_types(graph) == [tnn]


def test_clip_opset6_attributes(tmp_path):
    # opset 7..10: min/max are attributes
    graph = check(make_model([node("Clip", ["x"], min=0.0, max=6.0)], X, opset=9), tmp_path)
    assert layer_types(graph) == ["ReLU6"]


@pytest.mark.parametrize("slope_shape, shared", [((4, 1, 1), 0), ((1, 4, 1, 1), 0), ((1,), 1)])
def test_prelu(tmp_path, slope_shape, shared):
    slope = np.random.default_rng(2).standard_normal(slope_shape).astype(np.float32)
    graph = check(make_model([node("PRelu", ["x", "s"])], X, consts={"s": slope}), tmp_path)
    assert layer_types(graph) == ["PReLU"] and graph.layers[0].params.channel_shared == shared


def test_prelu_other_slope_refused(tmp_path):
    slope = np.ones((5, 6), np.float32)
    model = make_model([node("PRelu", ["x", "s"])], X, consts={"s": slope})
    assert "one per channel" in convert_error(model, tmp_path)


@pytest.mark.parametrize("axis, opset", [(1, 13), (-1, 13), (3, 11), (-1, 11)])
def test_softmax(tmp_path, axis, opset):
    graph = check(make_model([node("Softmax", ["x"], axis=axis)], X, opset=opset), tmp_path)
    assert layer_types(graph) == ["SoftmaxCaffe"]


def test_softmax_opset11_over_flattened_dims(tmp_path):
    # before opset 13 the normalization runs over dims 1.. flattened: Reshape, Softmax, Reshape
    graph = check(make_model([node("Softmax", ["x"], axis=1)], X, opset=11), tmp_path)
    assert layer_types(graph) == ["Reshape", "SoftmaxCaffe", "Reshape"]


def test_swish_fused_when_adjacent(tmp_path):
    model = make_model([node("Sigmoid", ["x"], "s"), node("Mul", ["x", "s"])], X)
    assert layer_types(check(model, tmp_path)) == ["Swish"]


def test_swish_left_when_interleaved(tmp_path):
    # onnx2tnn fuses only a Mul that directly follows its Sigmoid (YOLOv8's heads)
    model = make_model([node("Sigmoid", ["x"], "s"), node("Relu", ["x"], "r"),
                        node("Mul", ["x", "s"], "m"), node("Add", ["m", "r"])], X)
    assert layer_types(check(model, tmp_path)) == ["Sigmoid", "ReLU", "Mul", "Add"]


def test_hard_swish_fused(tmp_path):
    model = make_model([node("HardSigmoid", ["x"], "h", alpha=1 / 6, beta=0.5),
                        node("Mul", ["h", "x"])], X)
    assert layer_types(check(model, tmp_path)) == ["HardSwish"]
