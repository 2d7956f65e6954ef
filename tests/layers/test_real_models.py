"""The layers of the real TNN models in ../shared/models, run with their own parameters and
resources, and the whole models against the real TNN's fp32 outputs."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

import numpy as np
import pytest
from conftest import MODEL_NAMES, MODELS, need_shared

from tnnquant.exec.executor import Executor, has_kernel
from tnnquant.formats.io import load_model, load_proto
from tnnquant.ir.graph import Graph
from tnnquant.testing import run_layer


@lru_cache(maxsize=None)
def model(name: str) -> Graph:
    folder = need_shared("models", name)
    return load_model(folder / f"{name}.tnnproto", folder / f"{name}.tnnmodel")


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x.astype(np.float64) - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def constant(graph: Graph, layer: str) -> np.ndarray:
    buf = graph.resources[layer].element
    return buf.data.reshape(buf.dims)


def slope(graph: Graph, layer: str) -> np.ndarray:
    return graph.resources[layer].slope.data


# (model, layer name, input shapes, reference(graph, *inputs) -> output or list of outputs)
CASES: list[tuple[str, str, list[tuple[int, ...]], Callable]] = [
    ("yolov8n", "/model.22/Concat_6", [(1, 82, 1600), (1, 82, 400), (1, 82, 100)],
     lambda g, *xs: np.concatenate(xs, axis=2)),
    ("yolov8n", "/model.22/Split_1", [(1, 82, 2100)], lambda g, x: [x[:, :64], x[:, 64:]]),
    ("yolov8n", "/model.22/dfl/Reshape", [(1, 64, 2100)], lambda g, x: x.reshape(1, 4, 16, 2100)),
    ("yolov8n", "/model.22/dfl/Transpose", [(1, 4, 16, 2100)],
     lambda g, x: x.transpose(0, 2, 1, 3)),
    ("yolov8n", "/model.22/dfl/Softmax", [(1, 16, 4, 2100)], lambda g, x: softmax(x, 1)),
    ("yolov8n", "/model.22/dfl/Reshape_1", [(1, 1, 4, 2100)], lambda g, x: x.reshape(1, 4, 2100)),
    ("yolov8n", "/model.22/Slice", [(1, 4, 2100)], lambda g, x: x[:, 0:2]),
    ("yolov8n", "/model.22/Slice_1", [(1, 4, 2100)], lambda g, x: x[:, 2:4]),
    # weight_input_index 0: anchors - x, anchors + x; constant dims [1, 2, 2100]
    ("yolov8n", "/model.22/Sub", [(1, 2, 2100)],
     lambda g, x: constant(g, "/model.22/Sub") - x),
    ("yolov8n", "/model.22/Add_10", [(1, 2, 2100)],
     lambda g, x: constant(g, "/model.22/Add_10") + x),
    ("yolov8n", "/model.22/Add_11", [(1, 2, 2100), (1, 2, 2100)], lambda g, a, b: a + b),
    ("yolov8n", "/model.22/Sub_1", [(1, 2, 2100), (1, 2, 2100)], lambda g, a, b: a - b),
    ("yolov8n", "/model.22/Div_1", [(1, 2, 2100)], lambda g, x: x * np.float32(0.5)),
    ("yolov8n", "/model.22/Mul_5", [(1, 4, 2100)],   # strides, constant dims [1, 1, 2100]
     lambda g, x: x * constant(g, "/model.22/Mul_5")),
    ("yolov8n", "/model.0/act/Mul", [(1, 16, 8, 8)], lambda g, x: x / (1 + np.exp(-x))),
    ("yolov8n", "/model.22/Sigmoid", [(1, 18, 2100)], lambda g, x: 1 / (1 + np.exp(-x))),
    ("pplcnet", "Mul.2", [(1, 16, 7, 7), (1, 16, 1, 1)],   # two-input HardSwish gate
     lambda g, a, b: a * np.clip(b * 0.166667 + 0.5, 0, 1)),
    ("pplcnet", "HardSwish.0", [(1, 16, 8, 8)],
     lambda g, x: x * np.clip(x * 0.166667 + 0.5, 0, 1)),
    ("pplcnet", "Mul.4", [(1, 1280, 1, 1)], lambda g, x: x * np.float32(0.8)),
    ("pplcnet", "Reshape.4", [(1, 1280, 1, 1)], lambda g, x: x.reshape(1, 1280)),
    ("pplcnet", "Softmax.0", [(1, 4)], lambda g, x: softmax(x, -1)),
    ("pplcnet", "Relu.1", [(1, 8, 1, 1)], lambda g, x: np.maximum(x, 0)),
    ("mtcnn_onet", "Transpose9", [(1, 48, 48, 3)], lambda g, x: x.transpose(0, 3, 1, 2)),
    ("mtcnn_onet", "p_re_lu_7", [(1, 32, 23, 23)],   # slope dims [1, 32, 1, 1]
     lambda g, x: np.where(x > 0, x, x * slope(g, "p_re_lu_7").reshape(32, 1, 1))),
    ("mtcnn_onet", "p_re_lu_11", [(1, 256)],   # after the InnerProduct, slope dims [256]
     lambda g, x: np.where(x > 0, x, x * slope(g, "p_re_lu_11"))),
    ("mtcnn_onet", "PushTranspose_17", [(1, 128, 3, 3)], lambda g, x: x.transpose(0, 2, 3, 1)),
    ("mtcnn_onet", "flatten_1", [(1, 3, 3, 128)], lambda g, x: x.reshape(1, -1)),
    ("mtcnn_onet", "softmax_2", [(1, 2)], lambda g, x: softmax(x, 1)),
    ("mobilenetv2", "/features/features.3/Add", [(1, 24, 56, 56), (1, 24, 56, 56)],
     lambda g, a, b: a + b),
    ("mobilenetv2", "/Flatten", [(1, 1280, 1, 1)], lambda g, x: x.reshape(1, 1280)),
]


@pytest.mark.parametrize("name, layer_name, shapes, reference", CASES,
                         ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_real_layer(name, layer_name, shapes, reference):
    graph = model(name)
    layer = next(lay for lay in graph.layers if lay.name == layer_name)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s, dtype=np.float32) * 3 for s in shapes]
    ys = run_layer(layer.proto_type, layer.params, *xs, resource=graph.resources.get(layer.name),
                   n_out=len(layer.outputs))
    refs = reference(graph, *xs)
    ys, refs = (ys, refs) if len(layer.outputs) > 1 else ([ys], [refs])
    for y, ref in zip(ys, refs):
        assert y.dtype == np.float32 and y.shape == ref.shape
        np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)


# the 4 converted models and TNN's 15 benchmark protos (an empty list skips without ../shared)
PROTOS = sorted(str(p.relative_to(MODELS)) for p in MODELS.glob("*/*.tnnproto"))


@pytest.mark.parametrize("proto", PROTOS)
def test_every_layer_of_the_real_protos_has_an_fp32_kernel(proto):
    graph = load_proto(MODELS / proto)
    missing = sorted({lay.proto_type for lay in graph.layers if not has_kernel(lay.kind)})
    assert not missing


def blob_file(blob: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", blob) + ".npy"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_whole_model_matches_tnn_fp32(name):
    """Every kernel together, against the real TNN x86 fp32 outputs (expect ~1e-6 relative,
    not bits: int8 §14)."""
    graph = model(name)
    executor = Executor(graph)
    folder = need_shared("models", name)
    for path in sorted((folder / "inputs").glob("*.npy")):
        outputs = executor.run({graph.inputs[0].name: np.load(path)})
        for blob, y in outputs.items():
            golden = np.load(folder / "float" / path.stem / blob_file(blob))
            assert y.shape == golden.shape
            np.testing.assert_allclose(y, golden, rtol=0, atol=2e-5 * np.abs(golden).max())
