"""The ONNX writer against the onnx package: what it writes loads, passes the checker and
holds the values given."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tnnquant.exec.onnx_model import OnnxGraph


def test_model_passes_the_checker_and_runs():
    import onnxruntime as ort
    g = OnnxGraph()
    w = g.const(np.arange(6, dtype=np.float32).reshape(2, 3))
    y = g.node("MatMul", ["x", w])
    g.node("Clip", [y, g.const(np.float32(-1.5)), g.const(np.float32(20.0))], "out")
    g.node("Gather", ["x", g.ints([1, 0])], "gathered", axis=-1)
    data = g.model([("x", np.float32, ("N", 2))],
                   [("out", np.float32, (None, None)), ("gathered", np.float32, ("N", 2))])
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    x = np.array([[1, 2], [3, -4], [5, 6]], np.float32)
    out, gathered = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(
        None, {"x": x})
    np.testing.assert_array_equal(out, np.clip(x @ np.arange(6, dtype=np.float32)
                                               .reshape(2, 3), -1.5, 20))
    np.testing.assert_array_equal(gathered, x[:, ::-1])


def test_external_initializers_are_read_in_place(rng):
    import onnxruntime as ort
    g = OnnxGraph()
    big = rng.standard_normal((64, 32)).astype(np.float32)   # 8 KiB
    w = g.const(big)
    g.node("MatMul", [g.node("Add", ["x", g.const(np.float32(1))]), w], "y")
    weights = g.large_initializers(4096)
    assert list(weights) == [w] and np.shares_memory(weights[w], big)   # no copy
    data = g.model([("x", np.float32, ("N", 64))], [("y", np.float32, ("N", 32))],
                   external=weights)
    assert len(data) < big.nbytes
    stored = {t.name: t for t in onnx.load_from_string(data).graph.initializer}
    assert stored[w].data_location == onnx.TensorProto.EXTERNAL and not stored[w].raw_data
    options = ort.SessionOptions()
    values = [ort.OrtValue.ortvalue_from_numpy(a) for a in weights.values()]
    options.add_external_initializers(list(weights), values)
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    x = rng.standard_normal((3, 64)).astype(np.float32)
    embedded = ort.InferenceSession(g.model([("x", np.float32, ("N", 64))],
                                            [("y", np.float32, ("N", 32))]),
                                    providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"x": x})[0],
                                  embedded.run(None, {"x": x})[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.uint8, np.int16,
                                   np.int32, np.int64, np.bool_, np.float16])
def test_initializers_round_trip(rng, dtype):
    g = OnnxGraph()
    value = (rng.standard_normal((2, 3, 4)) * 50).astype(dtype)
    name = g.const(value)
    g.node("Identity", [name], "y")
    model = onnx.load_from_string(g.model([], [("y", dtype, (2, 3, 4))]))
    got = numpy_helper.to_array(model.graph.initializer[0])
    assert got.dtype == value.dtype and got.shape == value.shape
    np.testing.assert_array_equal(got, value)


def test_attributes_of_every_kind():
    g = OnnxGraph()
    g.node("Custom", ["x"], "y", i=-3, f=0.25, s="same", ints=[1, -2, 3], floats=[0.5, 2.0],
           t=np.array([1.5, 2.5], np.float32), absent=None)
    node = onnx.load_from_string(g.model([("x", np.float32, (1,))],
                                         [("y", np.float32, (1,))])).graph.node[0]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["i"] == -3 and attrs["f"] == 0.25 and attrs["s"] == b"same"
    assert list(attrs["ints"]) == [1, -2, 3] and list(attrs["floats"]) == [0.5, 2.0]
    np.testing.assert_array_equal(numpy_helper.to_array(attrs["t"]), [1.5, 2.5])
    assert "absent" not in attrs and node.op_type == "Custom" and list(node.input) == ["x"]


def test_value_infos_and_fresh_names():
    g = OnnxGraph()
    g.prefix = "layer"
    a, b = g.node("Split", ["x"], 2, axis=0)
    assert a != b and a.startswith("layer::") and b.startswith("layer::")
    g.node("Add", [a, b], "y")
    model = onnx.load_from_string(g.model([("x", np.float32, ("N", 4))],
                                          [("y", np.int8, ("N", None))]))
    (x,), (y,) = model.graph.input, model.graph.output
    assert [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim] == ["N", 4]
    assert y.type.tensor_type.elem_type == onnx.TensorProto.INT8
    assert not y.type.tensor_type.shape.dim[1].HasField("dim_value")
    assert model.opset_import[0].version == 17
