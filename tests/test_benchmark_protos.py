"""Every fp32 benchmark proto of TNN (../shared/models/protos, not quant_*) runs end to end with
synthesized weights and gives the output shape TNN would."""
from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import need_shared

from tnnquant.exec.executor import Executor
from tnnquant.formats.io import load_proto
from tnnquant.synth import synthesize_weights

# Output shapes, derived by hand from the last layers of each proto:
# InnerProduct (axis 1) -> (N, num_output) (spec model-format §3.3.3); a classifier Convolution
# on a 1x1 map -> (N, output_channel, 1, 1); Softmax/Reshape keep or reshape as written.
EXPECTED = {
    "densenet": (1, 1001),                 # InnerProduct 1001 -> Softmax
    "inception_v3": (1, 1001, 1, 1),       # 1x1 Convolution 1001 -> Reshape 0,1001,1,1 -> Softmax
    "inception_v4": (1, 1001),             # InnerProduct 1001 -> Softmax
    "mobilenet_v1": (1, 1000, 1, 1),       # global pool -> Convolution fc7 1000 -> SoftmaxCaffe
    "mobilenet_v2": (1, 1000, 1, 1),       # global pool -> Convolution fc7 1000 -> SoftmaxCaffe
    "resnet50": (1, 1000),                 # InnerProduct 1000 -> SoftmaxCaffe
    "shufflenet_v2": (1, 1000, 1, 1),      # 7x7 pool -> Convolution fc 1000
    "squeezenet_v1.0": (1, 1000, 1, 1),    # Convolution conv10 1000 -> global pool -> Softmax
    "squeezenet_v1.1": (1, 1000, 1, 1),    # Convolution 1000 -> 13x13 pool -> Reshape 0,0,-1,1
}
SOFTMAX_OUTPUTS = {"densenet", "inception_v3", "inception_v4", "mobilenet_v1", "mobilenet_v2",
                   "resnet50", "squeezenet_v1.0"}


def last_classifier_width(proto_text: str) -> int:
    """num_output of the last InnerProduct or output_channel of the last Convolution, read
    straight from the text (word 3 after the blob names of either layer line)."""
    width = 0
    for line in proto_text.splitlines():
        words = line.strip('" ,').split()
        if words and words[0] in ("InnerProduct", "Convolution"):
            n_in, n_out = int(words[2]), int(words[3])
            params = words[4 + n_in + n_out:]
            width = int(params[0] if words[0] == "InnerProduct" else params[2])
    return width


def test_every_fp32_benchmark_proto_is_covered():
    folder = need_shared("models", "protos")
    names = {p.stem for p in folder.glob("*.tnnproto") if not p.name.startswith("quant_")}
    assert names == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_benchmark_proto_runs_with_synthesized_weights(name):
    path = need_shared("models", "protos", f"{name}.tnnproto")
    graph = synthesize_weights(load_proto(path), seed=0)
    (out_name,) = graph.outputs
    spec = graph.inputs[0]
    x = np.random.default_rng(1).standard_normal(spec.dims).astype(np.float32)
    y = Executor(graph).run({spec.name: x})[out_name]
    assert y.shape == EXPECTED[name]
    assert y.shape[1] == last_classifier_width(path.read_text())
    assert np.isfinite(y).all()
    if name in SOFTMAX_OUTPUTS:
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


def test_synthesized_graph_runs_at_batch_8():
    path = need_shared("models", "protos", "mobilenet_v2.tnnproto")
    graph = synthesize_weights(load_proto(path), seed=0)
    x = np.random.default_rng(2).standard_normal((8, 3, 224, 224)).astype(np.float32)
    y = Executor(graph).run({graph.inputs[0].name: x})[graph.outputs[0]]
    assert y.shape == (8, 1000, 1, 1)
