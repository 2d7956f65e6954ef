"""Regenerate examples/tiny/tiny.onnx: the small CNN of make_tiny.py, as PyTorch would export
it to ONNX (Conv + BatchNormalization, Clip as ReLU6, a dynamic batch dim), for the README's
ONNX quick start. Uses the same calibration folder, examples/tiny/calib.

    python examples/make_tiny_onnx.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent / "tiny"


def tiny_onnx() -> onnx.ModelProto:
    rng = np.random.default_rng(11)
    consts: dict[str, np.ndarray] = {}
    nodes: list[onnx.NodeProto] = []

    def const(name: str, value: np.ndarray) -> str:
        consts[name] = np.asarray(value, np.float32)
        return name

    def conv(x: str, name: str, c_in: int, c_out: int, k: int, stride: int = 1,
             group: int = 1, bn: bool = True) -> str:
        fan_in = c_in // group * k * k
        w = const(f"{name}.weight", rng.standard_normal((c_out, c_in // group, k, k))
                  * np.sqrt(2 / fan_in))
        inputs = [x, w] if bn else [x, w, const(f"{name}.bias", rng.normal(0, 0.1, c_out))]
        nodes.append(helper.make_node("Conv", inputs, [f"{name}_out"], name=name,
                                      kernel_shape=[k, k], strides=[stride, stride],
                                      pads=[k // 2] * 4, group=group))
        if not bn:
            return f"{name}_out"
        params = [const(f"{name}.bn.{p}", v) for p, v in (
            ("gamma", rng.uniform(0.5, 1.5, c_out)), ("beta", rng.normal(0, 0.1, c_out)),
            ("mean", rng.normal(0, 0.1, c_out)), ("var", rng.uniform(0.5, 1.5, c_out)))]
        nodes.append(helper.make_node("BatchNormalization", [f"{name}_out", *params],
                                      [f"{name}_bn"], name=f"{name}/bn"))
        return f"{name}_bn"

    def act(x: str, op: str, name: str) -> str:
        inputs = [x, "zero", "six"] if op == "Clip" else [x]
        nodes.append(helper.make_node(op, inputs, [f"{name}_out"], name=name))
        return f"{name}_out"

    const("zero", np.float32(0))
    const("six", np.float32(6))
    y = act(conv("data", "stem", 3, 16, 3, stride=2), "Relu", "stem_relu")
    nodes.append(helper.make_node("MaxPool", [y], ["pool_out"], name="pool",
                                  kernel_shape=[2, 2], strides=[2, 2]))
    r = act(conv("pool_out", "block_conv1", 16, 16, 3), "Clip", "block_relu6")
    r = conv(r, "block_conv2", 16, 16, 3)
    nodes.append(helper.make_node("Add", ["pool_out", r], ["block_add_out"], name="block_add"))
    y = act("block_add_out", "Relu", "block_relu")
    y = conv(y, "dw", 16, 16, 3, group=16)
    y = act(conv(y, "pw", 16, 32, 1), "Relu", "pw_relu")
    nodes.append(helper.make_node("GlobalAveragePool", [y], ["gap_out"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gap_out"], ["flat_out"], name="flatten"))
    fc_w = const("fc.weight", rng.standard_normal((10, 32)) * np.sqrt(1 / 32))
    fc_b = const("fc.bias", rng.normal(0, 0.1, 10))
    nodes.append(helper.make_node("Gemm", ["flat_out", fc_w, fc_b], ["logits"], name="fc",
                                  transB=1))
    nodes.append(helper.make_node("Softmax", ["logits"], ["prob"], name="prob", axis=1))
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 64, 64])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="tnnquant examples/make_tiny_onnx.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    onnx.save(tiny_onnx(), str(HERE / "tiny.onnx"))


if __name__ == "__main__":
    main()
