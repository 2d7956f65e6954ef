"""MaxPool / AveragePool / global pooling / ReduceMean mappings against onnxruntime."""
from __future__ import annotations

import pytest
from onnx_models import check, convert_error, layer_types, make_model, node


@pytest.mark.parametrize("op, attrs", [
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2])),
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
    ("MaxPool", dict(kernel_shape=[5, 5], strides=[1, 1], pads=[2, 2, 2, 2])),
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="VALID")),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2])),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])),
    ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], count_include_pad=1)),
])
def test_pool(tmp_path, op, attrs):
    graph = check(make_model([node(op, ["x"], **attrs)], {"x": (2, 3, 9, 9)}), tmp_path)
    assert layer_types(graph) == ["Pooling"]


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pool(tmp_path, op):
    graph = check(make_model([node(op, ["x"])], {"x": (2, 3, 7, 5)}), tmp_path)
    assert layer_types(graph) == ["Pooling"]


@pytest.mark.parametrize("axes, keepdims, expected", [
    ([2, 3], 1, "Pooling"),     # onnx2tnn's FuseGlobalAveragePool
    ([-1], 0, "ReduceMean"),
    ([1], 1, "ReduceMean"),
])
def test_reduce_mean(tmp_path, axes, keepdims, expected):
    model = make_model([node("ReduceMean", ["x"], axes=axes, keepdims=keepdims)],
                       {"x": (2, 3, 4, 5)})
    assert layer_types(check(model, tmp_path)) == [expected]


def test_reduce_mean_axes_input_opset18(tmp_path):
    import numpy as np
    model = make_model([node("ReduceMean", ["x", "axes"], keepdims=1)], {"x": (1, 3, 4, 5)},
                       consts={"axes": np.array([2, 3], np.int64)}, opset=18)
    assert layer_types(check(model, tmp_path)) == ["Pooling"]


@pytest.mark.parametrize("pads", [[1, 1, 1, 1], [0, 1, 2, 1]])
def test_count_include_pad_with_pads_is_pad_then_pool(tmp_path, pads):
    model = make_model([node("AveragePool", ["x"], kernel_shape=[3, 3], pads=pads,
                             count_include_pad=1)], {"x": (1, 2, 5, 6)})
    assert layer_types(check(model, tmp_path)) == ["Pad", "Pooling"]


def test_count_include_pad_with_ceil_mode_refused(tmp_path):
    model = make_model([node("AveragePool", ["x"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                             strides=[2, 2], count_include_pad=1, ceil_mode=1)],
                       {"x": (1, 1, 6, 6)})
    assert "count_include_pad" in convert_error(model, tmp_path)


def test_maxpool_indices_refused(tmp_path):
    model = make_model([node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2])],
                       {"x": (1, 1, 4, 4)}, outputs=["y", "i"])
    assert "Indices" in convert_error(model, tmp_path)


@pytest.mark.parametrize("op, attrs", [
    ("ReduceSum", dict(axes=[1], keepdims=0)),
    ("ReduceSum", dict(axes=[-1, 2])),
    ("ReduceMax", dict(axes=[1, 2, 3], keepdims=0)),
    ("ReduceMax", {}),
])
def test_reduce_sum_max(tmp_path, op, attrs):
    opset = 11   # axes as an attribute for both
    graph = check(make_model([node(op, ["x"], **attrs)], {"x": (2, 3, 4, 5)}, opset=opset),
                  tmp_path)
    assert layer_types(graph) == [op]


def test_reduce_sum_axes_input_opset13(tmp_path):
    import numpy as np
    model = make_model([node("ReduceSum", ["x", "a"], keepdims=1)], {"x": (2, 3, 4, 5)},
                       consts={"a": np.array([1, 3], np.int64)})
    assert layer_types(check(model, tmp_path)) == ["ReduceSum"]


@pytest.mark.parametrize("op", ["AveragePool", "MaxPool"])
def test_one_window_over_the_whole_map_is_global_pooling(tmp_path, op):
    # Caffe's global pooling as Caffe2 exported it (Inception v1): a 7x7 kernel over a 6x6 map
    # with pads 0, 0, 1, 1 -- one window, every input inside it
    model = make_model([node(op, ["x"], kernel_shape=[7, 7], pads=[0, 0, 1, 1])],
                       {"x": (1, 3, 6, 6)}, opset=9)
    graph = check(model, tmp_path)
    assert layer_types(graph) == ["Pooling"] and graph.layers[0].params.kernel_h == 0
