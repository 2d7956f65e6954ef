"""synthesize_weights: resources of the right shapes for a proto-only graph."""
from __future__ import annotations

import numpy as np
import pytest

from tnnquant.errors import UnsupportedError
from tnnquant.exec.executor import Executor
from tnnquant.synth import synthesize_weights
from tnnquant.testing import GraphBuilder


def proto_only_graph():
    b = GraphBuilder()
    x = b.input("data", (1, 6, 10, 10))
    c = b.layer("Convolution", x, "2 3 8 3 3 1 1 1 1 1 -1 1 1 1", name="conv")
    d = b.layer("Convolution", c, "8 1 8 3 3 2 2 1 1 0 -1 1 1 0", name="dw")
    m = b.layer("Mul", d, "1", name="bn_mul")
    a = b.layer("Add", m, "1", name="bn_add")
    p = b.layer("PReLU", a, "0 0", name="prelu")
    f = b.layer("Flatten", p, "1", name="flat")
    y = b.layer("InnerProduct", f, "5 1 0 1", name="fc")
    return b.build(y)


def test_weights_get_the_shapes_the_inputs_need():
    graph = synthesize_weights(proto_only_graph())
    res = graph.resources
    assert res["conv"].filter.dims == (8, 3, 3, 3) and res["conv"].bias.dims == (8,)
    assert res["dw"].filter.dims == (8, 1, 3, 3) and res["dw"].bias is None
    assert res["bn_mul"].element.dims == (1, 8, 1, 1)
    assert res["prelu"].slope.size == 8
    assert res["fc"].weight.dims == (5, 8 * 5 * 5) and res["fc"].bias.size == 5
    y = Executor(graph).run({"data": np.ones((2, 6, 10, 10), np.float32)})["fc"]
    assert y.shape == (2, 5) and np.isfinite(y).all()


def test_same_seed_same_weights():
    a = synthesize_weights(proto_only_graph(), seed=3).resources["conv"].filter.data
    b = synthesize_weights(proto_only_graph(), seed=3).resources["conv"].filter.data
    c = synthesize_weights(proto_only_graph(), seed=4).resources["conv"].filter.data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_convolution_output_is_normalized_to_unit_std():
    graph = synthesize_weights(proto_only_graph(), seed=0)
    x = np.random.default_rng(0).standard_normal((1, 6, 10, 10)).astype(np.float32)
    out = Executor(graph).run({"data": x}, keep=["dw"])
    assert 0.5 < float(np.std(out["dw"])) < 2.0


def test_existing_resources_are_kept():
    b = GraphBuilder()
    x = b.input("data", (1, 3, 8, 8))
    y = b.conv(x, 4, 3, pad=1, name="conv")
    graph = b.build(y)
    assert synthesize_weights(graph).resources["conv"] is graph.resources["conv"]


def test_layer_types_without_a_synthesizer_are_reported():
    b = GraphBuilder()
    x = b.input("data", (1, 3, 4, 4))
    y = b.layer("Const", [], "1 4", name="c")
    with pytest.raises(UnsupportedError, match="Const 'c': cannot synthesize"):
        synthesize_weights(b.build([x, y]))
