"""Add / Sub / Mul / Div mappings (blob and constant operands, broadcasting) against
onnxruntime."""
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
