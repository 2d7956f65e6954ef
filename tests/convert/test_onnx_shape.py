"""Concat, Split, Slice, Flatten, Reshape, Transpose, Squeeze, Unsqueeze mappings and the
folding of Shape arithmetic, against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_models import check, convert_error, layer_types, make_model, node

I64 = np.int64


@pytest.mark.parametrize("axis", [1, -1, 0])
def test_concat(tmp_path, axis):
    model = make_model([node("Concat", ["a", "b"], axis=axis)],
                       {"a": (2, 3, 4), "b": (2, 3, 4)})
    assert layer_types(check(model, tmp_path)) == ["Concat"]


@pytest.mark.parametrize("opset, sizes", [(11, [2, 4]), (13, [1, 5]), (13, None), (18, None)])
def test_split(tmp_path, opset, sizes):
    attrs, consts, inputs = {"axis": 1}, {}, ["x"]
    if sizes is not None and opset < 13:
        attrs["split"] = sizes
    elif sizes is not None:
        consts["s"] = np.array(sizes, I64)
        inputs.append("s")
    if opset >= 18 and sizes is None:
        attrs["num_outputs"] = 2
    model = make_model([node("Split", inputs, ["y0", "y1"], **attrs)], {"x": (1, 6, 3)},
                       outputs=["y0", "y1"], consts=consts, opset=opset)
    assert layer_types(check(model, tmp_path)) == ["SplitV"]


@pytest.mark.parametrize("starts, ends, axes, steps", [
    ([1], [3], [1], None),
    ([0, 1], [2, 9223372036854775807], [2, 3], None),
    ([-3], [-1], [-1], None),
    ([4], [0], [3], [-1]),
    ([0], [6], [3], [2]),
    ([5], [-9223372036854775807], [3], [-2]),
])
def test_slice(tmp_path, starts, ends, axes, steps):
    consts = {"s": np.array(starts, I64), "e": np.array(ends, I64), "a": np.array(axes, I64)}
    inputs = ["x", "s", "e", "a"]
    if steps is not None:
        consts["t"] = np.array(steps, I64)
        inputs.append("t")
    model = make_model([node("Slice", inputs)], {"x": (1, 3, 4, 6)}, consts=consts)
    assert layer_types(check(model, tmp_path)) == ["StridedSliceV2"]


def test_slice_opset9_attributes(tmp_path):
    model = make_model([node("Slice", ["x"], starts=[1], ends=[3], axes=[2])],
                       {"x": (1, 3, 4, 6)}, opset=9)
    assert layer_types(check(model, tmp_path)) == ["StridedSliceV2"]


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_flatten(tmp_path, axis):
    model = make_model([node("Flatten", ["x"], axis=axis)], {"x": (2, 3, 4, 5)})
    assert layer_types(check(model, tmp_path)) == ["Flatten"]


@pytest.mark.parametrize("shape", [[2, -1], [0, 3, 20], [2, 12, 5, 1], [-1]])
def test_reshape(tmp_path, shape):
    model = make_model([node("Reshape", ["x", "s"])], {"x": (2, 3, 4, 5)},
                       consts={"s": np.array(shape, I64)})
    assert layer_types(check(model, tmp_path)) == ["Reshape"]


@pytest.mark.parametrize("perm", [[0, 2, 3, 1], [0, 3, 1, 2], [3, 2, 1, 0], None])
def test_transpose(tmp_path, perm):
    attrs = {} if perm is None else {"perm": perm}
    model = make_model([node("Transpose", ["x"], **attrs)], {"x": (2, 3, 4, 5)})
    assert layer_types(check(model, tmp_path)) == ["Permute"]


@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_unsqueeze(tmp_path, opset):
    if opset < 13:
        nodes = [node("Squeeze", ["x"], "s", axes=[1, -1]), node("Unsqueeze", ["s"], axes=[0])]
        consts = {}
    else:
        nodes = [node("Squeeze", ["x", "a"], "s"), node("Unsqueeze", ["s", "b"])]
        consts = {"a": np.array([1, -1], I64), "b": np.array([0], I64)}
    model = make_model(nodes, {"x": (2, 1, 4, 1)}, consts=consts, opset=opset)
    assert layer_types(check(model, tmp_path)) == ["Squeeze", "Unsqueeze"]


def test_squeeze_without_axes(tmp_path):
    model = make_model([node("Squeeze", ["x"])], {"x": (2, 1, 4, 1)})
    assert layer_types(check(model, tmp_path)) == ["Squeeze"]


def test_shape_arithmetic_folds_to_a_constant_reshape(tmp_path):
    # x.view(x.size(0), -1) as PyTorch exports it: Shape -> Gather -> Unsqueeze -> Concat
    model = make_model(
        [node("Shape", ["x"], "shape"),
         node("Gather", ["shape", "zero"], "n", axis=0),
         node("Unsqueeze", ["n", "axes0"], "n1"),
         node("Concat", ["n1", "minus1"], "target", axis=0),
         node("Reshape", ["x", "target"])],
        {"x": (2, 3, 4, 5)},
        consts={"zero": np.array(0, I64), "axes0": np.array([0], I64),
                "minus1": np.array([-1], I64)})
    graph = check(model, tmp_path)
    assert layer_types(graph) == ["Reshape"]
    assert graph.layers[0].params.shape == (0, -1)   # batch written as "copy" like onnx2tnn


def test_shapes_after_folding_are_inferred_again(tmp_path):
    # Paddle's flatten: Shape -> Slice -> Cast -> Concat as a Reshape target; ONNX's data
    # propagation stops at the Cast, so the Softmax after it has no rank until the folded
    # target is seen by a second shape inference
    model = make_model(
        [node("Shape", ["x"], "shape"),
         node("Slice", ["shape", "start", "end"], "n"),
         node("Cast", ["n"], "n32", to=6),
         node("Cast", ["minus1"], "m32", to=6),
         node("Concat", ["n32", "m32"], "target32", axis=0),
         node("Cast", ["target32"], "target", to=7),
         node("Reshape", ["x", "target"], "flat"),
         node("Softmax", ["flat"], axis=1)],
        {"x": (2, 3, 4, 5)},
        consts={"start": np.array([0], I64), "end": np.array([1], I64),
                "minus1": np.array([-1], I64)}, opset=11)
    assert layer_types(check(model, tmp_path)) == ["Reshape", "SoftmaxCaffe"]


def test_identity_and_dropout_removed(tmp_path):
    model = make_model([node("Identity", ["x"], "a"), node("Relu", ["a"], "b"),
                        node("Dropout", ["b"], "c"), node("Identity", ["c"])], {"x": (1, 4)})
    graph = check(model, tmp_path)
    assert layer_types(graph) == ["ReLU"] and graph.layers[0].outputs == ["y"]


def test_constant_concat_operand_refused(tmp_path):
    model = make_model([node("Concat", ["x", "c"], axis=1)], {"x": (1, 2)},
                       consts={"c": np.ones((1, 2), np.float32)})
    assert "constant Concat operand" in convert_error(model, tmp_path)


def test_reshape_of_runtime_shape_refused(tmp_path):
    model = make_model([node("Reshape", ["x", "s"])], {"x": (2, 6), "s": (2,)})
    message = convert_error(model, tmp_path)
    assert "must be a constant" in message or "dynamic" in message


def test_tile(tmp_path):
    model = make_model([node("Tile", ["x", "r"])], {"x": (1, 2, 3, 4)},
                       consts={"r": np.array([2, 1, 3, 1], I64)})
    assert layer_types(check(model, tmp_path)) == ["Tile"]


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 1, 5), (1, 1, 1, 1, 5)])
def test_expand(tmp_path, shape):
    model = make_model([node("Expand", ["x", "s"])], {"x": (3, 1, 5)},
                       consts={"s": np.array(shape, I64)})
    assert layer_types(check(model, tmp_path)) == ["Expand"]


@pytest.mark.parametrize("indices, axis", [(np.array(1, I64), 1), (np.array([2, -1, 0], I64), 2),
                                           (np.array([[0, 1], [1, 0]], I64), 0)])
def test_gather_constant_indices(tmp_path, indices, axis):
    # x[:, 1] (a 0-d index drops the axis), negative indices, several dims of indices
    model = make_model([node("Gather", ["x", "i"], axis=axis)], {"x": (2, 3, 4)},
                       consts={"i": indices})
    graph = check(model, tmp_path)
    assert layer_types(graph) == ["Gather"]
    assert graph.resources[graph.layers[0].name].indices.data.min() >= 0


def test_gather_constant_table_is_an_embedding(tmp_path):
    table = np.random.default_rng(6).standard_normal((10, 4)).astype(np.float32)
    model = make_model([node("Relu", ["x"], "r"), node("Gather", ["t", "idx"], "g"),
                        node("Add", ["g", "r"])], {"x": (1, 3, 4), "idx": (1, 3)},
                       consts={"t": table})
    model.graph.input[1].type.tensor_type.elem_type = onnx_int64()
    feeds = {"x": np.zeros((1, 3, 4), np.float32), "idx": np.array([[7, 0, 9]], I64)}
    graph = check(model, tmp_path, feeds=feeds)
    assert layer_types(graph) == ["ReLU", "Gather", "Add"]


def onnx_int64() -> int:
    from onnx import TensorProto
    return TensorProto.INT64
