"""Run one ONNX operator in onnxruntime: the independent reference for kernel tests."""
from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


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
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]
