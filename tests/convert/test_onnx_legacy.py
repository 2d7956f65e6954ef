"""Old files: opset 6 (legacy ``broadcast``/``axis`` binary ops, per-channel PRelu slopes),
opset-9 folding, IR 3 initializers that are not graph inputs. onnxruntime has no opset-6 Add,
so those are checked against numpy."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx_models import check, layer_types, make_model, node, save

import tnnquant
from tnnquant.convert import convert_onnx

RNG = np.random.default_rng(7)
A = (2, 3, 4, 5)


def run(model: onnx.ModelProto, tmp_path, feeds):
    graph = convert_onnx(save(model, tmp_path))
    return graph, tnnquant.api.run(graph, feeds)["y"]


@pytest.mark.parametrize("op, fn", [("Add", np.add), ("Sub", np.subtract), ("Mul", np.multiply),
                                    ("Div", np.divide)])
@pytest.mark.parametrize("b_shape, axis", [((3,), 1), ((3, 4), 1), ((4, 5), None), ((5,), None),
                                           ((2, 3), 0)])
@pytest.mark.parametrize("b_is_constant", [True, False])
def test_opset6_broadcast_from_axis(tmp_path, op, fn, b_shape, axis, b_is_constant):
    a = RNG.standard_normal(A).astype(np.float32)
    b = RNG.uniform(0.5, 2, b_shape).astype(np.float32)
    attrs = dict(broadcast=1) if axis is None else dict(broadcast=1, axis=axis)
    inputs = {"a": A} if b_is_constant else {"a": A, "b": b_shape}
    model = make_model([node(op, ["a", "b"], **attrs)], inputs,
                       consts={"b": b} if b_is_constant else {}, opset=6)
    feeds = {"a": a} if b_is_constant else {"a": a, "b": b}
    graph, y = run(model, tmp_path, feeds)
    start = 4 - len(b_shape) if axis is None else axis   # B's dims are A's from ``start`` on
    expected = fn(a, b.reshape(b_shape + (1,) * (4 - start - len(b_shape))))
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
    moved = b_is_constant or b_shape == A[-len(b_shape):]
    assert layer_types(graph)[-1] in (op, "Mul") and len(graph.layers) == (1 if moved else 2)


def test_opset6_prelu_slope_is_per_channel(tmp_path):
    x = RNG.standard_normal(A).astype(np.float32)
    slope = RNG.standard_normal(3).astype(np.float32)
    model = make_model([node("PRelu", ["x", "s"])], {"x": A}, consts={"s": slope}, opset=6)
    graph, y = run(model, tmp_path, {"x": x})
    np.testing.assert_allclose(y, np.where(x > 0, x, x * slope.reshape(3, 1, 1)), rtol=1e-6)
    assert graph.layers[0].params.channel_shared == 0


def test_opset6_batchnorm_is_test_attribute(tmp_path):
    c = 3
    model = make_model([node("BatchNormalization", ["x", "g", "b", "m", "v"], is_test=1)],
                       {"x": A}, consts={"g": np.full(c, 2, np.float32), "b": np.ones(c, np.float32),
                                         "m": np.zeros(c, np.float32), "v": np.ones(c, np.float32)},
                       opset=6)
    x = RNG.standard_normal(A).astype(np.float32)
    _, y = run(model, tmp_path, {"x": x})
    np.testing.assert_allclose(y, 2 * x / np.sqrt(1 + 1e-5) + 1, rtol=1e-5, atol=1e-6)


def test_folding_evaluates_the_files_opset(tmp_path):
    # Unsqueeze-1..12 takes axes as an attribute; folding must not run Unsqueeze-13 on it
    model = make_model([node("Unsqueeze", ["s"], "s3", axes=[1, 2]), node("Mul", ["x", "s3"])],
                       {"x": A}, consts={"s": RNG.standard_normal(3).astype(np.float32)},
                       opset=9)
    assert layer_types(check(model, tmp_path)) == ["Mul"]


def test_ir3_initializers_that_are_not_inputs(tmp_path):
    # Caffe2 and early PyTorch files; shape inference ignores such initializers at IR 3
    model = make_model([node("Conv", ["x", "w"], "c"), node("Relu", ["c"])], {"x": (1, 2, 5, 5)},
                       consts={"w": RNG.standard_normal((3, 2, 3, 3)).astype(np.float32)}, opset=9)
    model.ir_version = 3
    x = RNG.standard_normal((1, 2, 5, 5)).astype(np.float32)
    graph, y = run(model, tmp_path, {"x": x})
    assert layer_types(graph) == ["Convolution", "ReLU"] and y.shape == (1, 3, 3, 3)
