"""The int8 simulator's onnxruntime kernels (``exec.ort_kernels``) against its numpy kernels
(int8_math) on the real models: every blob of two shared quantized models (MinMax, KL)
identical, the fused-add convolutions (MobileNetV2's residual 1x1 convs) included."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import MODEL_NAMES, need_shared

from tnnquant.exec import ort_kernels
from tnnquant.exec.executor import Executor
from tnnquant.formats.io import load_model


def every_blob(graph, feeds) -> dict[str, np.ndarray]:
    blobs = {}
    Executor(graph, mode="int8").run(feeds, hooks=[lambda n, v, _: blobs.setdefault(n, v)])
    return blobs


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_onnxruntime_and_numpy_int8_kernels_agree(model, monkeypatch):
    root = need_shared("models", model)
    inputs = sorted((root / "inputs").glob("*.npy"))[:2]
    feeds_x = np.concatenate([np.load(p) for p in inputs])
    ran = []   # (ops, ran in onnxruntime) of each session run of the onnxruntime runs
    run_chain = ort_kernels.run_chain

    def spy(ops, *args):
        out = run_chain(ops, *args)
        if ort_kernels.ENABLED:
            ran.append((ops, out is not None))
        return out

    monkeypatch.setattr(ort_kernels, "run_chain", spy)
    for combo in ("b0w0", "b2w1"):   # TNN's MinMax and KL scales
        proto = root / "quant" / f"{combo}.quantized.tnnproto"
        graph = load_model(proto, proto.with_suffix(".tnnmodel"))
        feeds = {graph.inputs[0].name: feeds_x}
        fast = every_blob(graph, feeds)
        monkeypatch.setattr(ort_kernels, "ENABLED", False)
        slow = every_blob(graph, feeds)
        monkeypatch.setattr(ort_kernels, "ENABLED", True)
        assert fast.keys() == slow.keys()
        for name, value in slow.items():
            assert fast[name].dtype == value.dtype, name
            np.testing.assert_array_equal(fast[name], value, err_msg=f"{proto.name}: {name}")
    assert ran and all(ok for _, ok in ran)
    kinds = {type(op).__name__ for ops, _ in ran for op in ops}
    assert "Int8Conv" in kinds
    if model == "mobilenetv2":   # the 52 convolutions (10 with an add) and a Reformat
        assert {len(ops) for ops, _ in ran} == {53}
        assert sum(getattr(op, "fusion", 0) > 0 for op in ran[0][0]) == 10
    if model == "pplcnet":       # convolutions, Reformats both ways and HardSwish together
        assert {"Fp32Layer", "Dequantize", "Quantize"} <= kinds
