"""Exact mode (``QuantConfig(fp32="naive")``, ``quantization_cmd --exact``) against TNN's own
quantization_cmd outputs in ../shared/models/<model>/quant/, calibrated on the same tensors
(calib/*.npy): the written .tnnproto and .tnnmodel are byte-identical, for every model and
every stored method combination.

With TNN's NAIVE fp32 arithmetic the blob statistics are TNN's bit for bit, so MinMax blob and
weight scales, KL histograms and ADMM inputs are too; the KL search settles candidates whose
KL values tie to float precision in TNN's own f32 arithmetic (on these models: 1-2 channels
per model for b2w1, which would otherwise be 1-3 bins off and, in pplcnet, send a dense
convolution's ADMM weights to another fixed point).

Runtime on 2 cores: ~2-10 s per b0w0/b2w0t1 case (mostly the naive forward passes), 1-30 s
per b2w1 case (KL over per-channel histograms and ADMM).
"""
from __future__ import annotations

import pytest
from conftest import MODEL_NAMES, need_shared

from tnnquant.config import QuantConfig
from tnnquant.formats.io import load_model
from tnnquant.formats.tnnmodel import format_model
from tnnquant.formats.tnnproto import format_proto
from tnnquant.quantize import quantize

COMBOS = {"b0w0": (0, 0, 0), "b2w0t1": (2, 0, 1), "b2w1": (2, 1, 0)}


@pytest.mark.parametrize("combo", sorted(COMBOS))
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_byte_identical_to_quantization_cmd(model, combo):
    base = need_shared("models", model)
    graph = load_model(base / f"{model}.tnnproto", base / f"{model}.tnnmodel")
    result = quantize(graph, base / "calib", QuantConfig.from_tnn(*COMBOS[combo], fp32="naive"))
    assert format_proto(result.graph) == (base / "quant" / f"{combo}.quantized.tnnproto").read_bytes()
    assert format_model(result.graph) == (base / "quant" / f"{combo}.quantized.tnnmodel").read_bytes()
