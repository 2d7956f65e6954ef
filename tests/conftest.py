"""Shared fixtures. Tests that need ../shared (real TNN models and golden outputs) skip with a
reason when it is absent; everything else builds its own models."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(os.environ.get("TNNQUANT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
MODELS = SHARED / "models"
MODEL_NAMES = ["mobilenetv2", "yolov8n", "pplcnet", "mtcnn_onet"]


def need_shared(*parts: str) -> Path:
    """Path inside ../shared, or skip the test when it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: the shared TNN models/data are not beside this clone")
    return path


@pytest.fixture
def shared_models() -> Path:
    return need_shared("models")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def pytest_generate_tests(metafunc):
    """Every kernel test (tests/layers/) runs twice: on the layer's numpy kernel and on its
    ONNX export in onnxruntime (``tnnquant.testing.run_layer``), against the same independent
    reference. Layers without an export run the numpy kernel both times."""
    if "layers" in metafunc.definition.path.parts:
        metafunc.parametrize("fp32_kernels", ["numpy", "onnxruntime"], indirect=True)


@pytest.fixture(autouse=True)
def fp32_kernels(request, monkeypatch):
    """The kernels ``run_layer`` uses by default (parametrized for tests/layers/)."""
    import tnnquant.testing
    kernels = getattr(request, "param", tnnquant.testing.RUN_LAYER_KERNELS)
    monkeypatch.setattr(tnnquant.testing, "RUN_LAYER_KERNELS", kernels)
    return kernels
