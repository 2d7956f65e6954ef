"""Run one ONNX operator in onnxruntime: the independent reference for kernel tests."""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper


@functools.lru_cache(maxsize=None)
def unreadable(ir_version: int, opset: int) -> str | None:
    """Why the installed onnx or onnxruntime cannot take a model of this IR version and
    opset (None when they can): the oldest versions pyproject.toml allows predate the newest
    opsets, which the tests also cover."""
    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        return f"onnx {onnx.__version__} defines ONNX opsets up to {newest}, not {opset}"
    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["x_out"])], "probe", [value],
                              [helper.make_tensor_value_info("x_out", TensorProto.FLOAT, [1])])
    probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    probe.ir_version = ir_version
    try:
        ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception:   # noqa: BLE001 - onnxruntime's own exception types
        return f"onnxruntime {ort.__version__} cannot run IR version {ir_version}, opset {opset}"
    return None


def skip_unless_readable(model: onnx.ModelProto) -> None:
    """Skip the test, saying why, when this onnx or onnxruntime cannot take ``model``."""
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                default=1)
    reason = unreadable(model.ir_version, opset)
    if reason:
        pytest.skip(reason)


class Const:
    """An operator input given as an initializer (a weight) rather than a graph input."""

    def __init__(self, value: np.ndarray) -> None:
        self.value = np.asarray(value)

def run_onnx_op(op_type: str, *inputs: Any, opset: int = 17, **attrs: Any) -> np.ndarray:
    """``inputs``: arrays (graph inputs), ``Const`` (initializers) or None (omitted optional
    input). Returns the operator's single output."""
    names, graph_inputs, initializers, feeds = [], [], [], {}
    for i, value in enumerate(inputs):
        if value is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        if isinstance(value, Const):
            initializers.append(numpy_helper.from_array(value.value, name))
        else:
            value = np.asarray(value)
            elem = helper.np_dtype_to_tensor_dtype(value.dtype)
            graph_inputs.append(helper.make_tensor_value_info(name, elem, value.shape))
            feeds[name] = value
    node = helper.make_node(op_type, names, ["out"], **attrs)
    output = helper.make_tensor_value_info("out", TensorProto.FLOAT, None)
    graph = helper.make_graph([node], "single_op", graph_inputs, [output], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    skip_unless_readable(model)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]
