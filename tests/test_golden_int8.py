"""The int8 simulator against the real TNN: for every model TNN's quantization tool made in
../shared/models/*/quant/ and every golden input, the simulated outputs match TNN's X86 int8
outputs ``int8/<combo>/<input>/<output>.npy``: within 1 LSB on >= 99.9% of the elements and
cosine >= 0.9999 (most are bit-identical).

The LSB of an output an int8 layer produces is its blob scale (per channel). An output produced
by fp32 layers after a Reformat (Softmax, YOLO's box decoding) has no scale of its own: its LSB
is the largest scale of the int8 blobs that feed the fp32 tail, i.e. one code step where the
values last were int8. A softmax moves by at most half of that per code step; YOLO's decoding
multiplies box distances by the stride (up to 32), so there a one-code difference upstream can
exceed one such LSB — it then counts against the 0.1% allowance.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest
from conftest import MODELS, need_shared

from tnnquant.calib.inputs import safe_file_name
from tnnquant.exec.executor import Executor
from tnnquant.formats.io import load_model


def cases():
    if not MODELS.exists():
        return [pytest.param(None, None, None, marks=pytest.mark.skip("../shared not found"))]
    return [(proto.parent.parent.name, proto.name.split(".")[0], inp.stem)
            for proto in sorted(MODELS.glob("*/quant/*.quantized.tnnproto"))
            for inp in sorted((proto.parent.parent / "inputs").glob("*.npy"))]


@functools.lru_cache(maxsize=2)
def executor(model: str, combo: str) -> Executor:
    folder = need_shared("models", model, "quant")
    graph = load_model(folder / f"{combo}.quantized.tnnproto",
                       folder / f"{combo}.quantized.tnnmodel")
    return Executor(graph, mode="int8")


def lsb(ex: Executor, output: str, shape: tuple[int, ...]) -> np.ndarray:
    """One code step of an output, broadcastable to its shape (see the module docstring)."""
    if output in ex.int8_blobs:
        scale = ex.graph.blob_scales[output].scale
        return scale.reshape((1, -1) + (1,) * (len(shape) - 2)) if scale.size > 1 else scale
    producer = ex.graph.producers()
    pending, seen, scales = [output], set(), []
    while pending:
        blob = pending.pop()
        if blob in seen:
            continue
        seen.add(blob)
        if blob in ex.int8_blobs:
            scales.append(ex.graph.blob_scales[blob].scale.max())
        elif blob in producer:
            pending.extend(producer[blob].inputs)
    return np.array([max(scales)])


@pytest.mark.parametrize("model, combo, name", cases())
def test_simulated_outputs_match_tnn_x86(model, combo, name):
    root = need_shared("models", model)
    ex = executor(model, combo)
    x = np.load(root / "inputs" / f"{name}.npy")
    outputs = ex.run({ex.graph.inputs[0].name: x})
    for output, got in outputs.items():
        want = np.load(root / "int8" / combo / name / f"{safe_file_name(output)}.npy")
        want = want.reshape(got.shape).astype(np.float64)
        steps = np.abs(got - want) / lsb(ex, output, got.shape)
        within = np.mean(steps <= 1 + 1e-6)       # an LSB apart, up to float rounding
        cosine = np.dot(got.ravel(), want.ravel()) / np.linalg.norm(got) / np.linalg.norm(want)
        assert within >= 0.999, f"{output}: {within:.5f} within 1 LSB (max {steps.max():.2f})"
        assert cosine >= 0.9999, f"{output}: cosine {cosine:.6f}"
