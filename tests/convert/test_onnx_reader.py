"""The ONNX reader and the whole pipeline: opsets 7 to current on one small CNN, dynamic dims,
external-data weights, fp16 weights, and one-line errors for bad input."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import external_data_helper
from onnx_models import check, convert_error, layer_types, make_model, node, save

import tnnquant
from tnnquant.convert import convert_onnx
from tnnquant.errors import TnnQuantError
from tnnquant.formats.rawbuffer import DataType

RNG = np.random.default_rng(5)
F32 = np.float32


def small_cnn(opset: int) -> onnx.ModelProto:
    """Conv+BN+Relu, MaxPool, a residual Add, Concat, Upsample/Resize, GlobalAveragePool,
    Flatten, Gemm, Softmax: written in the operator forms of ``opset``."""
    c = 4
    consts = {"w1": RNG.standard_normal((c, 3, 3, 3)).astype(F32),
              "w2": RNG.standard_normal((c, c, 3, 3)).astype(F32), "b2": np.zeros(c, F32),
              "g": np.ones(c, F32), "be": RNG.standard_normal(c).astype(F32),
              "m": RNG.standard_normal(c).astype(F32), "v": np.full(c, 2.0, F32),
              "fc": RNG.standard_normal((5, 2 * c)).astype(F32),
              "fb": RNG.standard_normal(5).astype(F32)}
    nodes = [node("Conv", ["x", "w1"], "c1", pads=[1, 1, 1, 1]),
             node("BatchNormalization", ["c1", "g", "be", "m", "v"], "bn"),
             node("Relu", ["bn"], "r1"),
             node("MaxPool", ["r1"], "p1", kernel_shape=[2, 2], strides=[2, 2]),
             node("Conv", ["p1", "w2", "b2"], "c2", pads=[1, 1, 1, 1]),
             node("Add", ["c2", "p1"], "a1"),
             node("Concat", ["a1", "p1"], "cat", axis=1)]
    if opset < 10:
        up_inputs = ["cat"] if opset < 9 else ["cat", "sc"]
        up_attrs = {"scales": [1.0, 1.0, 2.0, 2.0]} if opset < 9 else {}
        nodes.append(node("Upsample", up_inputs, "up", mode="nearest", **up_attrs))
    elif opset < 11:
        nodes.append(node("Resize", ["cat", "sc"], "up", mode="nearest"))
    elif opset < 13:   # Resize-11 and -12 need the roi input
        consts["roi"] = np.array([], F32)
        nodes.append(node("Resize", ["cat", "roi", "sc"], "up", mode="nearest"))
    else:
        nodes.append(node("Resize", ["cat", "", "sc"], "up", mode="nearest"))
    if opset >= 9:
        consts["sc"] = np.array([1, 1, 2, 2], F32)
    nodes += [node("GlobalAveragePool", ["up"], "gap"),
              node("Flatten", ["gap"], "flat"),
              node("Gemm", ["flat", "fc", "fb"], "fc_out", transB=1),
              node("Softmax", ["fc_out"], axis=1)]
    return make_model(nodes, {"x": ("batch", 3, 8, 8)}, consts=consts, opset=opset)


OPSETS = [7, 9, 10, 11, 12, 13, 17, 21]


@pytest.mark.parametrize("opset", OPSETS)
def test_small_cnn_every_opset(tmp_path, opset):
    graph = check(small_cnn(opset), tmp_path, atol=1e-5)
    assert layer_types(graph) == ["Convolution", "ReLU", "Pooling", "Convolution", "Add",
                                  "Concat", "Upsample", "Pooling", "Flatten", "InnerProduct",
                                  "SoftmaxCaffe"]
    assert graph.inputs[0].dims == (1, 3, 8, 8)   # a dynamic batch becomes 1, as onnx2tnn


def test_input_shape_option(tmp_path):
    graph = check(small_cnn(13), tmp_path, input_shapes={"x": (3, 3, 8, 8)})
    assert graph.inputs[0].dims == (3, 3, 8, 8)


def test_dynamic_dims_named(tmp_path):
    model = make_model([node("Relu", ["x"])], {"x": ("N", 3, "H", "W")})
    message = convert_error(model, tmp_path)
    assert "x [1, 3, H, W]" in message and "--input-shape" in message


def test_input_shape_for_unknown_input(tmp_path):
    model = make_model([node("Relu", ["x"])], {"x": (1, 3)})
    assert "not an input" in convert_error(model, tmp_path, input_shapes={"z": (1, 3)})


def test_unsupported_op_names_node_type_and_opset(tmp_path):
    model = make_model([node("Relu", ["x"], "r"), node("Erf", ["r"])], {"x": (1, 3)}, opset=15)
    message = convert_error(model, tmp_path)
    assert "node 'erf_y' (Erf, opset 15): unsupported ONNX op" in message


def test_other_domain_refused(tmp_path):
    model = make_model([node("Relu", ["x"])], {"x": (1, 3)})
    model.graph.node[0].domain = "com.microsoft"
    model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    assert "domain 'com.microsoft'" in convert_error(model, tmp_path)


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"\x00\x01garbage\xff" * 10, "not an ONNX model"),
    (b'"1 2 1 4206624772 ,"\n', "TNN .tnnproto"),
])
def test_not_onnx(tmp_path, data, message):
    path = tmp_path / "bad.onnx"
    path.write_bytes(data)
    with pytest.raises(TnnQuantError, match=message) as info:
        convert_onnx(path)
    assert str(info.value).startswith(str(path))


def test_truncated_file(tmp_path):
    path = save(small_cnn(13), tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(TnnQuantError):
        convert_onnx(path)


def test_old_opset_refused(tmp_path):
    model = make_model([node("Relu", ["x"])], {"x": (1, 3)}, opset=5)
    assert "opset 5 is not supported (ONNX opsets 6 to" in convert_error(model, tmp_path)


def test_tensor_dims_larger_than_data(tmp_path):
    model = make_model([node("Add", ["x", "c"])], {"x": (1, 3)},
                       consts={"c": np.ones(3, F32)})
    model.graph.initializer[0].dims[:] = [100000, 100000]
    assert "tensor 'c'" in convert_error(model, tmp_path)
    model.graph.initializer[0].dims[:] = [5]
    assert "need 5 values, the file holds 3" in convert_error(model, tmp_path)


def test_external_data(tmp_path):
    model = small_cnn(13)
    external_data_helper.convert_model_to_external_data(model, location="weights.bin",
                                                        size_threshold=64)
    path = tmp_path / "ext.onnx"
    onnx.save(model, str(path))
    assert (tmp_path / "weights.bin").exists()
    graph = convert_onnx(path)
    assert len(graph.layers) == 11
    x = RNG.standard_normal((1, 3, 8, 8)).astype(F32)
    from onnx_models import ort_run
    np.testing.assert_allclose(tnnquant.api.run(graph, x)["y"], ort_run(path, {"x": x})["y"],
                               atol=1e-5)


def model_with_external_weight(location: str, offset: int, length: int) -> onnx.ModelProto:
    model = make_model([node("Add", ["x", "c"])], {"x": (1, 4)}, consts={"c": np.ones(4, F32)})
    tensor = model.graph.initializer[0]
    external_data_helper.set_external_data(tensor, location=location, offset=offset,
                                           length=length)
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.ClearField("raw_data")
    return model


def test_external_data_outside_the_folder_refused(tmp_path):
    model = model_with_external_weight("../secret.bin", 0, 16)
    assert "model's folder" in convert_error(model, tmp_path)


def test_external_data_too_short(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"\0" * 12)
    model = model_with_external_weight("w.bin", 8, 16)
    assert "asks for 16 at offset 8" in convert_error(model, tmp_path)


def test_half_weights(tmp_path):
    path = save(small_cnn(13), tmp_path)
    graph = convert_onnx(path, half=True)
    buffers = [b for _, b in graph.iter_weights()]
    assert buffers and all(b.data_type == DataType.HALF for b in buffers)
    x = RNG.standard_normal((1, 3, 8, 8)).astype(F32)
    full = tnnquant.api.run(convert_onnx(path), x)["y"]
    np.testing.assert_allclose(tnnquant.api.run(graph, x)["y"], full, atol=1e-2)


def test_constant_output_refused(tmp_path):
    model = make_model([node("Relu", ["x"], "r"), node("Identity", ["c"], "y")], {"x": (1, 2)},
                       outputs=["r", "y"], consts={"c": np.ones(2, F32)})
    assert "is a constant" in convert_error(model, tmp_path)


@pytest.mark.parametrize("name", ["a\nb", "tab\there", "line\u2028break"])
def test_names_with_control_characters_refused(tmp_path, name):
    # found by mutation fuzzing: a newline in a name made every message naming it two lines
    model = make_model([node("Relu", ["x"], name), node("Relu", [name])], {"x": (1, 3)})
    message = convert_error(model, tmp_path)
    assert "holds a control character" in message and repr(name)[1:-1] in message
