"""Add / Sub / Mul / Div / Sum / Max / Min / Pow mappings (blob and constant operands,
broadcasting) against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_models import check, layer_types, make_model, node

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("b_shape", [(2, 3, 4, 5), (1, 3, 1, 1), (5,), (1, 1, 4, 1)])
def test_two_blobs_broadcast(tmp_path, op, b_shape):
    feeds = {"a": RNG.standard_normal((2, 3, 4, 5)).astype(np.float32),
             "b": (RNG.random(b_shape) + 0.5).astype(np.float32)}
    model = make_model([node(op, ["a", "b"])], {"a": (2, 3, 4, 5), "b": b_shape})
    graph = check(model, tmp_path, feeds=feeds)
    assert layer_types(graph) == [op] and graph.layers[0].params.weight_input_index == -1


@pytest.mark.parametrize("op, tnn", [("Add", "Add"), ("Sub", "Sub"), ("Mul", "Mul"),
                                     ("Div", "Mul")])
@pytest.mark.parametrize("const_shape", [(), (3, 1, 1), (1, 3, 4, 5), (5,)])
@pytest.mark.parametrize("const_first", [False, True])
def test_constant_operand(tmp_path, op, tnn, const_shape, const_first):
    const = (RNG.random(const_shape) + 0.5).astype(np.float32)
    inputs = ["c", "x"] if const_first else ["x", "c"]
    model = make_model([node(op, inputs)], {"x": (2, 3, 4, 5)}, consts={"c": const})
    graph = check(model, tmp_path, atol=1e-5, rtol=1e-5)
    expected = op if const_first else tnn     # only x / c becomes x * (1 / c)
    assert layer_types(graph) == [expected]
    assert graph.layers[0].params.weight_input_index == (0 if const_first else 1)
    stored = graph.resources[graph.layers[0].name].element
    assert len(stored.dims) == 4        # onnx2tnn pads the dims to the blob's rank


def test_integer_constant_becomes_float(tmp_path):
    model = make_model([node("Mul", ["x", "c"])], {"x": (1, 2, 3)},
                       consts={"c": np.array(3, np.int64)})
    # onnxruntime refuses float * int64, so compare with numpy
    from onnx_models import save
    from tnnquant.api import run
    from tnnquant.convert import convert_onnx
    graph = convert_onnx(save(model, tmp_path))
    x = RNG.standard_normal((1, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(run(graph, x)["y"], x * 3)


@pytest.mark.parametrize("op, tnn", [("Sum", "Add"), ("Max", "Maximum"), ("Min", "Minimum")])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_variadic(tmp_path, op, tnn, n):
    inputs = {f"x{i}": (2, 3, 4, 5) if i else (3, 1, 5) for i in range(n)}
    relus = [node("Relu", [x], f"r{x}") for x in inputs]
    graph = check(make_model(relus + [node(op, [f"r{x}" for x in inputs])], inputs), tmp_path)
    # one operand: an identity, removed (its producer writes the output)
    assert layer_types(graph) == ["ReLU"] * n + ([tnn] if n > 1 else [])


@pytest.mark.parametrize("op, tnn", [("Max", "Maximum"), ("Min", "Minimum")])
def test_max_min_with_a_constant(tmp_path, op, tnn):
    model = make_model([node(op, ["x", "c"])], {"x": (2, 3, 4, 5)},
                       consts={"c": RNG.standard_normal((3, 1, 1)).astype(np.float32)})
    assert layer_types(check(model, tmp_path)) == [tnn]


@pytest.mark.parametrize("exponent", [2.0, 0.5, 3.0])
def test_pow_by_a_constant_is_power(tmp_path, exponent):
    x = np.abs(RNG.standard_normal((2, 3, 4, 5))).astype(np.float32) + 0.1
    model = make_model([node("Pow", ["x", "e"])], {"x": x.shape},
                       consts={"e": np.array(exponent, np.float32)})
    graph = check(model, tmp_path, feeds={"x": x})
    assert layer_types(graph) == ["Power"] and graph.layers[0].params.exponent == exponent
