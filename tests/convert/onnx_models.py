"""Build small ONNX models with onnx.helper, convert them with tnnquant and check the converted
TNN graph, run by tnnquant's fp32 executor, against onnxruntime on the original ONNX."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_ops import skip_unless_readable

import tnnquant
from tnnquant.convert import convert_onnx
from tnnquant.errors import TnnQuantError
from tnnquant.ir.graph import Graph


def node(op: str, inputs: Sequence[str], outputs: Sequence[str] | str = "y",
         **attrs: Any) -> onnx.NodeProto:
    outputs = [outputs] if isinstance(outputs, str) else list(outputs)
    return helper.make_node(op, list(inputs), outputs, name=f"{op.lower()}_{outputs[0]}",
                            **attrs)


def make_model(nodes: Sequence[onnx.NodeProto], inputs: Mapping[str, Sequence[Any]],
               outputs: Sequence[str] = ("y",), consts: Mapping[str, np.ndarray] | None = None,
               opset: int = 13) -> onnx.ModelProto:
    """A model with float32 graph inputs of the given shapes (ints or names for dynamic
    dims) and initializers ``consts``."""
    graph = helper.make_graph(
        list(nodes), "test",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (consts or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8)   # onnxruntime reads IR 8 everywhere
    skip_unless_readable(model)
    return model


def save(model: onnx.ModelProto, folder: Path, name: str = "model.onnx") -> Path:
    path = folder / name
    onnx.save(model, str(path))
    return path


def ort_run(path: Path, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    skip_unless_readable(onnx.load(str(path), load_external_data=False))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, dict(feeds))))


def random_feeds(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {s.name: rng.standard_normal(s.dims).astype(np.float32) for s in graph.inputs}


def check(model: onnx.ModelProto, tmp_path: Path, *, atol: float = 1e-5, rtol: float = 1e-4,
          feeds: Mapping[str, np.ndarray] | None = None, **convert: Any) -> Graph:
    """Convert ``model``, run both, assert every output agrees in shape and value."""
    path = save(model, tmp_path)
    graph = convert_onnx(path, **convert)
    feeds = dict(feeds) if feeds is not None else random_feeds(graph)
    expected = ort_run(path, feeds)
    actual = tnnquant.api.run(graph, feeds)
    assert set(actual) == set(expected)
    for name, want in expected.items():
        got = actual[name]
        assert got.shape == want.shape, (name, got.shape, want.shape)
        np.testing.assert_allclose(got, want, atol=atol, rtol=rtol, err_msg=name)
    return graph


def convert_error(model: onnx.ModelProto, tmp_path: Path, **convert: Any) -> str:
    path = save(model, tmp_path)
    with pytest.raises(TnnQuantError) as info:
        convert_onnx(path, **convert)
    message = str(info.value)
    assert "\n" not in message
    return message


def layer_types(graph: Graph) -> list[str]:
    return [layer.type for layer in graph.layers]
