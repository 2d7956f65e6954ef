"""Normalization mappings against onnxruntime: LRN, InstanceNormalization, LayerNormalization
and GroupNormalization (ONNX's ops; their scale and bias go to the constant map), and the
arithmetic of BatchNorm folding."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_models import check, convert_error, layer_types, make_model, node

from tnnquant.convert import convert_onnx
from tnnquant.formats.rawbuffer import DataType

RNG = np.random.default_rng(3)


def w(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("size", [3, 5])   # onnxruntime takes odd sizes only
def test_lrn(tmp_path, size):
    model = make_model([node("LRN", ["x"], size=size, alpha=1e-3, beta=0.6, bias=1.5)],
                       {"x": (2, 7, 5, 6)})
    graph = check(model, tmp_path)
    assert layer_types(graph) == ["LRN"] and graph.layers[0].params.size == size


def test_instance_norm(tmp_path):
    model = make_model([node("InstanceNormalization", ["x", "s", "b"], epsilon=1e-3)],
                       {"x": (2, 4, 5, 6)}, consts={"s": w(4), "b": w(4)})
    graph = check(model, tmp_path, atol=1e-4)
    assert layer_types(graph) == ["InstBatchNormCxx"]
    assert graph.layers[0].params.channels == 4


@pytest.mark.parametrize("axis, with_bias", [(-1, True), (2, True), (-1, False)])
def test_layer_norm_opset17(tmp_path, axis, with_bias):
    inner = (5, 6) if axis == 2 else (6,)
    consts = {"s": w(*inner), **({"b": w(*inner)} if with_bias else {})}
    model = make_model([node("LayerNormalization", ["x", "s", "b" if with_bias else ""],
                             axis=axis, epsilon=1e-4)], {"x": (2, 4, 5, 6)}, consts=consts,
                       opset=17)
    graph = check(model, tmp_path, atol=1e-4)
    assert layer_types(graph) == ["LayerNorm"]
    assert graph.layers[0].params.reduce_dims_size == len(inner)
    assert set(graph.layers[0].inputs[1:]) <= set(graph.constants)


def test_layer_norm_scale_must_cover_the_normalized_dims(tmp_path):
    model = make_model([node("LayerNormalization", ["x", "s"], axis=2)], {"x": (1, 2, 3, 4)},
                       consts={"s": w(4)}, opset=17)
    assert "normalized dims" in convert_error(model, tmp_path)


@pytest.mark.parametrize("opset, per", [(18, "group"), (21, "channel")])
def test_group_norm(tmp_path, opset, per):
    groups, channels = 3, 6
    n = groups if per == "group" else channels
    model = make_model([node("GroupNormalization", ["x", "s", "b"], num_groups=groups,
                             epsilon=1e-3)], {"x": (2, channels, 4, 5)},
                       consts={"s": w(n), "b": w(n)}, opset=opset)
    graph = check(model, tmp_path, atol=1e-4)
    assert layer_types(graph) == ["GroupNorm"] and graph.layers[0].params.group == groups
    assert all(graph.constants[b].size == channels for b in graph.layers[0].inputs[1:])


def test_half_stores_constant_map_entries_as_fp16(tmp_path):
    model = make_model([node("LayerNormalization", ["x", "s", "b"])], {"x": (1, 3, 8)},
                       consts={"s": w(8), "b": w(8)}, opset=17)
    path = tmp_path / "m.onnx"
    import onnx
    onnx.save(model, str(path))
    graph = convert_onnx(path, half=True)
    assert {buf.data_type for buf in graph.constants.values()} == {DataType.HALF}


def test_batchnorm_scale_and_bias_in_double_as_tnn():
    # onnx2tnn computes gamma / sqrt(var + eps) and beta - gamma * mean / sqrt(var + eps) in
    # double and rounds once; float32 arithmetic differs in the last bit for some channels
    from tnnquant.convert.onnx.norm import scale_and_bias
    gamma, beta, mean, var = (w(1000) for _ in range(4))
    var = np.abs(var) + np.float32(0.1)
    scale, bias = scale_and_bias(gamma, beta, mean, var, 1e-5)
    wide = np.sqrt(var.astype(np.float64) + np.float64(np.float32(1e-5)))
    np.testing.assert_array_equal(scale, (gamma / wide).astype(np.float32))
    np.testing.assert_array_equal(bias, (beta - gamma * mean.astype(np.float64) / wide)
                                  .astype(np.float32))


def test_batchnorm_spatial_0_refused(tmp_path):
    model = make_model([node("BatchNormalization", ["x", "g", "b", "m", "v"], spatial=0)],
                       {"x": (1, 2, 3, 3)}, consts={k: np.ones(2, np.float32) for k in "gbmv"},
                       opset=7)
    assert "spatial=0" in convert_error(model, tmp_path)
