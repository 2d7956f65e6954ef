"""Whole-model fp32 runs against the real TNN's fp32 outputs (../shared/models/*/float)."""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pytest
from conftest import MODEL_NAMES, need_shared

from tnnquant.exec.executor import Executor
from tnnquant.formats.io import load_model

MIN_COSINE = 0.99999
MAX_REL_ERROR = 1e-3   # max |tnnquant - TNN| relative to max |TNN|


def golden_name(blob: str) -> str:
    """Output blob names with characters other than letters, digits, . _ - are stored with _."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", blob)


@lru_cache(maxsize=None)
def executor(name: str) -> Executor:
    folder = need_shared("models", name)
    return Executor(load_model(folder / f"{name}.tnnproto", folder / f"{name}.tnnmodel"))


def cases() -> list[tuple[str, str]]:
    return [(m, f"imagenet_{i}") for m in MODEL_NAMES for i in ("00_243", "05_853", "12_741")]


@pytest.mark.parametrize("model,sample", cases())
def test_fp32_outputs_match_tnn(model, sample):
    folder = need_shared("models", model)
    ex = executor(model)
    x = np.load(folder / "inputs" / f"{sample}.npy")
    outputs = ex.run({ex.graph.inputs[0].name: x})
    for blob in ex.graph.outputs:
        golden = np.load(folder / "float" / sample / f"{golden_name(blob)}.npy").astype(np.float64)
        got = outputs[blob].astype(np.float64)
        assert got.shape == golden.shape, f"{blob}: shape {got.shape}, TNN gives {golden.shape}"
        cosine = float(got.ravel() @ golden.ravel()
                       / (np.linalg.norm(got) * np.linalg.norm(golden)))
        max_err = float(np.abs(got - golden).max())
        assert cosine >= MIN_COSINE, f"{blob}: cosine {cosine:.8f}"
        assert max_err <= MAX_REL_ERROR * float(np.abs(golden).max()), \
            f"{blob}: max abs error {max_err:.3g}, max |golden| {np.abs(golden).max():.3g}"
