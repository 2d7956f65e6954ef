"""Real architectures that ship inside the onnx wheel (``onnx/backend/test/data``): converted
with tnnquant and checked, blob by blob, against onnxruntime on the same ONNX file, and against
the outputs the wheel ships with them. Nothing is downloaded: a version of onnx without these
files makes the tests skip with the reason."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from onnx_models import ort_run

from tnnquant.exec.executor import Executor
from tnnquant.ir.graph import Graph

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"


def need_data(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"onnx {onnx.__version__} does not ship {path.relative_to(DATA.parent)}")
    return path


def randomize_constant_weights(model: onnx.ModelProto, seed: int) -> onnx.ModelProto:
    """The light models build every weight with ConstantOfShape (one value everywhere, which
    makes every channel equal and the check blind): replace each by seeded random values, He
    scaled for Conv/Gemm weights and positive where BatchNormalization divides by them."""
    rng = np.random.default_rng(seed)
    shapes = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    uses = {b: (n.op_type, i) for n in model.graph.node for i, b in enumerate(n.input)}
    kept = []
    for node in model.graph.node:
        if node.op_type != "ConstantOfShape" or node.input[0] not in shapes:
            kept.append(node)
            continue
        shape = tuple(int(d) for d in shapes[node.input[0]])
        op, index = uses.get(node.output[0], ("", 0))
        if op in ("Conv", "Gemm") and index == 1:
            value = rng.standard_normal(shape) * np.sqrt(2 / np.prod(shape[1:]))
        elif op == "BatchNormalization" and index in (1, 4):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.standard_normal(shape) * 0.1
        model.graph.initializer.append(numpy_helper.from_array(value.astype(np.float32),
                                                               node.output[0]))
    del model.graph.node[:]
    model.graph.node.extend(kept)
    return model


def set_input_dims(model: onnx.ModelProto, name: str, dims: tuple[int, ...]) -> None:
    value = next(v for v in model.graph.input if v.name == name)
    for dim, n in zip(value.type.tensor_type.shape.dim, dims):
        dim.Clear()
        dim.dim_value = n


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norm) if norm else float(np.array_equal(a, b))


def every_blob_against_onnxruntime(path: Path, graph: Graph, feeds: Mapping[str, np.ndarray]
                                   ) -> dict[str, tuple[float, float]]:
    """Run ``graph`` (the conversion of ``path``) with tnnquant keeping every layer output that
    is also an ONNX value, and onnxruntime on ``path`` with those values added as graph
    outputs. Returns blob -> (cosine, max |difference| / max |onnxruntime value|)."""
    model = onnx.load(str(path))
    values = {b for n in model.graph.node for b in n.output}
    inner = [b for layer in graph.layers for b in layer.outputs
             if b in values and b not in graph.outputs]
    ours = Executor(graph).run(feeds, keep=inner)
    del model.graph.output[:]
    model.graph.output.extend(helper.make_tensor_value_info(b, onnx.TensorProto.FLOAT, None)
                              for b in list(graph.outputs) + inner)
    probe = path.with_name(path.stem + "_probe.onnx")
    onnx.save(model, str(probe))
    reference = ort_run(probe, feeds)
    result = {}
    for name, want in reference.items():
        got = ours[name]
        assert got.shape == want.shape, (name, got.shape, want.shape)
        scale = float(np.abs(want).max()) or 1.0
        result[name] = (cosine(got, want), float(np.abs(got - want).max()) / scale)
    return result


def shipped_data_set(folder: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The inputs and outputs of ``folder/test_data_set_0`` in file order."""
    def read(kind: str) -> list[np.ndarray]:
        files = sorted((folder / "test_data_set_0").glob(f"{kind}_*.pb"),
                       key=lambda p: int(p.stem.split("_")[1]))
        return [numpy_helper.to_array(onnx.load_tensor(str(f))) for f in files]
    return read("input"), read("output")
