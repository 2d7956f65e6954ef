"""Bounded mutation fuzzing of the ONNX reader and converter: a damaged .onnx file converts or
fails with a TnnQuantError (one line), never another exception, and never allocates beyond the
reader's limits."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx_models import make_model, node

from tnnquant.convert import convert_onnx
from tnnquant.errors import TnnQuantError


def _seed_bytes() -> bytes:
    rng = np.random.default_rng(6)
    f32 = np.float32
    model = make_model(
        [node("Conv", ["x", "w", "b"], "c", pads=[1, 1, 1, 1]), node("Relu", ["c"], "r"),
         node("MaxPool", ["r"], "p", kernel_shape=[2, 2], strides=[2, 2]),
         node("Shape", ["p"], "s"), node("Gather", ["s", "zero"], "n", axis=0),
         node("Unsqueeze", ["n", "ax"], "n1"), node("Concat", ["n1", "m1"], "t", axis=0),
         node("Reshape", ["p", "t"], "f"), node("Gemm", ["f", "fc"], transB=1)],
        {"x": (1, 2, 4, 4)},
        consts={"w": rng.standard_normal((3, 2, 3, 3)).astype(f32), "b": np.zeros(3, f32),
                "zero": np.array(0, np.int64), "ax": np.array([0], np.int64),
                "m1": np.array([-1], np.int64), "fc": rng.standard_normal((2, 12)).astype(f32)})
    return model.SerializeToString()


SEED = _seed_bytes()

mutation = st.tuples(st.sampled_from(["set", "insert", "delete", "truncate"]),
                     st.integers(0, len(SEED) - 1), st.integers(0, 255))


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(mutation, min_size=1, max_size=4))
def test_mutated_onnx_fails_cleanly(tmp_path, mutations):
    data = bytearray(SEED)
    for kind, pos, value in mutations:
        pos = min(pos, max(len(data) - 1, 0))
        if kind == "set" and data:
            data[pos] = value
        elif kind == "insert":
            data.insert(pos, value)
        elif kind == "delete" and data:
            del data[pos]
        elif kind == "truncate":
            del data[pos:]
    path = tmp_path / "fuzz.onnx"
    path.write_bytes(bytes(data))
    try:
        graph = convert_onnx(path)
    except TnnQuantError as err:
        assert "\n" not in str(err)
        return
    assert graph.layers   # converted: a valid graph came out


def test_seed_converts(tmp_path):
    path = tmp_path / "seed.onnx"
    path.write_bytes(SEED)
    assert [layer.type for layer in convert_onnx(path).layers] == [
        "Convolution", "ReLU", "Pooling", "Reshape", "InnerProduct"]
