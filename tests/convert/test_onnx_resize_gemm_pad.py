"""Resize / Upsample, Gemm / MatMul and Pad mappings against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_models import check, convert_error, layer_types, make_model, node

RNG = np.random.default_rng(4)
F32 = np.float32


@pytest.mark.parametrize("mode, coord, nearest, scales", [
    ("nearest", "asymmetric", "floor", [1, 1, 2, 2]),
    ("nearest", None, None, [1, 1, 2, 3]),                   # ONNX defaults, whole scales
    ("nearest", "half_pixel", "round_prefer_floor", [1, 1, 3, 2]),
    ("linear", None, None, [1, 1, 2, 2]),                    # half_pixel
    ("linear", "align_corners", None, [1, 1, 2, 1.5]),
    ("linear", "pytorch_half_pixel", None, [1, 1, 1.5, 2]),
])
def test_resize_scales(tmp_path, mode, coord, nearest, scales):
    attrs = {"mode": mode}
    if coord:
        attrs["coordinate_transformation_mode"] = coord
    if nearest:
        attrs["nearest_mode"] = nearest
    model = make_model([node("Resize", ["x", "", "s"], **attrs)], {"x": (1, 2, 4, 6)},
                       consts={"s": np.array(scales, F32)})
    assert layer_types(check(model, tmp_path)) == ["Upsample"]


def test_resize_sizes(tmp_path):
    model = make_model([node("Resize", ["x", "", "", "sz"], mode="linear")],
                       {"x": (1, 2, 4, 6)}, consts={"sz": np.array([1, 2, 7, 9], np.int64)})
    graph = check(model, tmp_path)
    assert (graph.layers[0].params.output_h, graph.layers[0].params.output_w) == (7, 9)


@pytest.mark.parametrize("opset", [7, 9])
def test_upsample(tmp_path, opset):
    if opset == 7:
        model = make_model([node("Upsample", ["x"], mode="nearest", scales=[1.0, 1.0, 2.0, 2.0])],
                           {"x": (1, 2, 3, 4)}, opset=7)
    else:
        model = make_model([node("Upsample", ["x", "s"], mode="nearest")], {"x": (1, 2, 3, 4)},
                           consts={"s": np.array([1, 1, 2, 2], F32)}, opset=9)
    assert layer_types(check(model, tmp_path)) == ["Upsample"]


@pytest.mark.parametrize("mode, coord, scales, message", [
    ("cubic", "half_pixel", [1, 1, 2, 2], "no TNN Upsample form"),
    ("nearest", "half_pixel", [1, 1, 1.5, 1.5], "no TNN Upsample form"),
    ("linear", "asymmetric", [1, 1, 2, 2], "no TNN Upsample form"),
    ("nearest", "asymmetric", [1, 2, 2, 2], "resizes N or C"),
])
def test_resize_refusals(tmp_path, mode, coord, scales, message):
    model = make_model([node("Resize", ["x", "", "s"], mode=mode,
                             coordinate_transformation_mode=coord)], {"x": (1, 2, 4, 4)},
                       consts={"s": np.array(scales, F32)})
    assert message in convert_error(model, tmp_path)


@pytest.mark.parametrize("attrs, b_shape, c_shape", [
    (dict(transB=1), (5, 8), (5,)),
    ({}, (8, 5), (5,)),
    (dict(alpha=0.5, beta=2.0), (8, 5), (1, 5)),
    (dict(transB=1), (5, 8), None),
])
def test_gemm(tmp_path, attrs, b_shape, c_shape):
    consts = {"b": RNG.standard_normal(b_shape).astype(F32)}
    inputs = ["x", "b"]
    if c_shape is not None:
        consts["c"] = RNG.standard_normal(c_shape).astype(F32)
        inputs.append("c")
    model = make_model([node("Gemm", inputs, **attrs)], {"x": (3, 8)}, consts=consts)
    assert layer_types(check(model, tmp_path)) == ["InnerProduct"]


def test_gemm_trans_a_refused(tmp_path):
    model = make_model([node("Gemm", ["x", "b"], transA=1)], {"x": (8, 3)},
                       consts={"b": np.ones((8, 5), F32)})
    assert "transA" in convert_error(model, tmp_path)


def test_matmul_add_fused_to_inner_product(tmp_path):
    consts = {"w": RNG.standard_normal((8, 5)).astype(F32),
              "b": RNG.standard_normal(5).astype(F32)}
    model = make_model([node("MatMul", ["x", "w"], "t"), node("Add", ["t", "b"])],
                       {"x": (3, 8)}, consts=consts)
    assert layer_types(check(model, tmp_path)) == ["InnerProduct"]


def test_matmul_2d_is_inner_product(tmp_path):
    model = make_model([node("MatMul", ["x", "w"])], {"x": (3, 8)},
                       consts={"w": RNG.standard_normal((8, 5)).astype(F32)})
    assert layer_types(check(model, tmp_path)) == ["InnerProduct"]


def test_matmul_higher_rank_stays_matmul(tmp_path):
    consts = {"w": RNG.standard_normal((8, 5)).astype(F32),
              "b": RNG.standard_normal(5).astype(F32)}
    model = make_model([node("MatMul", ["x", "w"], "t"), node("Add", ["t", "b"])],
                       {"x": (2, 3, 8)}, consts=consts)
    assert layer_types(check(model, tmp_path)) == ["MatMul", "Add"]


def test_matmul_of_two_blobs(tmp_path):
    model = make_model([node("MatMul", ["a", "b"])], {"a": (2, 3, 4), "b": (2, 4, 5)})
    assert layer_types(check(model, tmp_path)) == ["MatMul"]


@pytest.mark.parametrize("mode, pads, value", [
    ("constant", [0, 0, 1, 2, 0, 0, 3, 0], 0.5),
    ("constant", [0, 1, 0, 0, 0, 2, 1, 1], 0.0),
    ("reflect", [0, 0, 1, 2, 0, 0, 2, 1], None),
    ("edge", [0, 0, 2, 0, 0, 0, 1, 3], None),
])
def test_pad(tmp_path, mode, pads, value):
    consts = {"p": np.array(pads, np.int64)}
    inputs = ["x", "p"]
    if value is not None:
        consts["v"] = np.array(value, F32)
        inputs.append("v")
    model = make_model([node("Pad", inputs, mode=mode)], {"x": (1, 2, 4, 5)}, consts=consts)
    assert layer_types(check(model, tmp_path)) == ["Pad"]


def test_pad_opset9_attributes(tmp_path):
    model = make_model([node("Pad", ["x"], pads=[0, 0, 1, 1, 0, 0, 1, 1], value=2.0)],
                       {"x": (1, 2, 3, 3)}, opset=9)
    assert layer_types(check(model, tmp_path)) == ["Pad"]


@pytest.mark.parametrize("pads, message", [
    ([1, 0, 0, 0, 0, 0, 0, 0], "batch"),
    ([0, 0, -1, 0, 0, 0, 0, 0], "negative"),
])
def test_pad_refusals(tmp_path, pads, message):
    model = make_model([node("Pad", ["x", "p"])], {"x": (1, 2, 4, 5)},
                       consts={"p": np.array(pads, np.int64)})
    assert message in convert_error(model, tmp_path)


@pytest.mark.parametrize("c_shape, beta", [(None, 1.0), ((4,), 1.0), ((4,), 0.5), ((1, 4), 0.0)])
def test_gemm_of_two_blobs(tmp_path, c_shape, beta):
    # PyTorch's mm / addmm of two tensors: B is a blob
    consts = {"c": RNG.standard_normal(c_shape).astype(F32)} if c_shape else {}
    inputs = ["a", "b", "c"] if c_shape else ["a", "b"]
    model = make_model([node("Gemm", inputs, beta=beta)], {"a": (2, 3), "b": (3, 4)},
                       consts=consts)
    graph = check(model, tmp_path)
    assert layer_types(graph) == (["MatMul", "Add"] if c_shape and beta else ["MatMul"])


def test_gemm_of_two_blobs_with_a_blob_bias(tmp_path):
    model = make_model([node("Gemm", ["a", "b", "c"])], {"a": (2, 3), "b": (3, 4), "c": (2, 4)})
    assert layer_types(check(model, tmp_path)) == ["MatMul", "Add"]


def test_gemm_of_two_blobs_transposed_refused(tmp_path):
    model = make_model([node("Gemm", ["a", "b"], transB=1)], {"a": (2, 3), "b": (4, 3)})
    assert "transB=0" in convert_error(model, tmp_path)
