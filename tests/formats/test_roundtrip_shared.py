"""Byte-identical read -> write of every real TNN file in ../shared/models.

The models were written by TNN's own converter and quantization tool (ModelPacker, spec
model-format §1.8, §2.8), the 15 benchmark protos by older TNN tools. Reading and writing an
unchanged graph must give back the same bytes.

Where TNN's writer would normalise a file instead, tnnquant keeps what the file declares, so
that an unchanged graph round-trips (a TNN re-write of these files would differ):
* proto line 1 / line 3, the blob list: ModelPacker rebuilds it as the sorted set of blob names
  the layer lines reference (§1.8); we keep the declared list. The v1 benchmark protos differ
  from the rebuilt list (``BENCHMARK_BLOB_LISTS`` below documents how); the real ModelPacker
  files carry exactly the rebuilt list, quantized ones a superset of it (the fusion leftovers of
  §1.8) — both checked below.
* the proto version: ModelPacker always writes v2 (``1 N 1 4206624772`` and typed input lines);
  we write a v1 proto back as v1.
* record order, inputs and outputs: written in the graph's order; TNN sorts inputs and outputs
  by name, and the real files are already sorted (checked below).
"""
from __future__ import annotations

import re

import pytest

from conftest import MODELS, need_shared
from tnnquant import load_model, load_proto, save_model
from tnnquant.formats.rawbuffer import MAGIC_V1, MAGIC_V2
from tnnquant.formats.tnnmodel import format_model
from tnnquant.formats.tnnproto import format_proto

N_MODELS, N_PROTOS, N_BENCHMARK = 19, 34, 15
BENCHMARK = [
    "densenet", "inception_v3", "inception_v4", "mobilenet_v1", "mobilenet_v2",
    "quant_inception_v3", "quant_mobilenet_v1", "quant_mobilenet_v2", "quant_resnet50",
    "quant_squeezenet_v1.0", "quant_squeezenet_v1.1", "resnet50", "shufflenet_v2",
    "squeezenet_v1.0", "squeezenet_v1.1",
]
# benchmark proto -> (blob names declared on line 3, distinct blob names the layers reference):
# what ModelPacker would put on line 1 and line 3 instead (spec §1.8)
BENCHMARK_BLOB_LISTS = {
    "densenet": (0, 311), "inception_v3": (0, 221), "inception_v4": (0, 196),  # empty list
    "squeezenet_v1.1": (67, 66),  # declares squeezenet0_dropout0_fwd, which no layer uses
    # the older quantization tool kept the float model's list after fusing ReLUs away
    "quant_inception_v3": (217, 123), "quant_mobilenet_v1": (58, 31),
    "quant_mobilenet_v2": (103, 67), "quant_resnet50": (124, 91),
    "quant_squeezenet_v1.0": (66, 40), "quant_squeezenet_v1.1": (66, 40),
}


def _model_pairs() -> list[str]:
    if not MODELS.exists():
        return []
    return sorted(str(p.relative_to(MODELS).with_suffix("")) for p in MODELS.rglob("*.tnnmodel"))


def _or_skip(values: list[str]) -> list:
    return values or [pytest.param(None, marks=pytest.mark.skip(
        reason=f"{MODELS} not found: the shared TNN models are not beside this clone"))]


def test_inventory():
    models = need_shared("models")
    assert len(list(models.rglob("*.tnnmodel"))) == N_MODELS
    assert len(list(models.rglob("*.tnnproto"))) == N_PROTOS
    assert sorted(p.stem for p in (models / "protos").glob("*.tnnproto")) == BENCHMARK
    assert len(BENCHMARK) == N_BENCHMARK


@pytest.mark.parametrize("stem", _or_skip(_model_pairs()))
def test_model_roundtrip(stem, tmp_path):
    proto, model = (MODELS / f"{stem}.tnnproto"), (MODELS / f"{stem}.tnnmodel")
    graph = load_model(proto, model)
    assert format_proto(graph) == proto.read_bytes()
    assert format_model(graph) == model.read_bytes()
    # the same through the file API, and a second generation
    save_model(graph, tmp_path / "m.tnnproto", tmp_path / "m.tnnmodel")
    assert (tmp_path / "m.tnnproto").read_bytes() == proto.read_bytes()
    assert (tmp_path / "m.tnnmodel").read_bytes() == model.read_bytes()
    again = load_model(tmp_path / "m.tnnproto", tmp_path / "m.tnnmodel")
    assert format_model(again) == model.read_bytes()


@pytest.mark.parametrize("stem", _or_skip(_model_pairs()))
def test_modelpacker_conventions(stem):
    """What the real files show about TNN's writer (spec §1.8, §2.8)."""
    proto = MODELS / f"{stem}.tnnproto"
    graph = load_model(proto, MODELS / f"{stem}.tnnmodel")
    text = proto.read_text()
    assert text.startswith(f'"1 {len(graph.blob_names)} 1 {MAGIC_V2} ,"\n')
    assert graph.format.proto_magic == MAGIC_V2 and graph.format.model_magic
    assert graph.outputs == sorted(graph.outputs)
    assert [i.name for i in graph.inputs] == sorted(i.name for i in graph.inputs)
    referenced = graph.referenced_blobs()
    if graph.is_quantized:   # fused-away blobs stay listed: the float model's list
        float_stem = stem.split("/")[0] + "/" + stem.split("/")[0]
        assert graph.blob_names == load_proto(MODELS / f"{float_stem}.tnnproto").blob_names
        assert referenced <= set(graph.blob_names)
    else:
        assert graph.blob_names == sorted(referenced)
    assert not graph.constants and not graph.format.empty_constant_map  # no empty section
    # every layer line ends "<last word> ," and every record is under TNN's 4095-byte limit
    for line in text.splitlines()[5:]:
        assert re.fullmatch(r'"\S+( \S+)* ,"', line), line
    for line in text.splitlines()[:2] + text.splitlines()[3:]:
        assert len(line.encode()) - 3 <= 4095


@pytest.mark.parametrize("name", BENCHMARK)
def test_benchmark_proto_roundtrip(name, tmp_path):
    proto = need_shared("models", "protos", f"{name}.tnnproto")
    graph = load_proto(proto)
    assert graph.format.proto_magic == MAGIC_V1
    assert all(spec.data_type is None for spec in graph.inputs)   # v1: no input type
    assert format_proto(graph) == proto.read_bytes()
    declared, referenced = len(graph.blob_names), len(graph.referenced_blobs())
    assert (declared, referenced) == BENCHMARK_BLOB_LISTS.get(name, (referenced, referenced))
    # header line 5 (layer count) is ignored by TNN's reader and rewritten from the layers
    assert proto.read_text().splitlines()[4] == f'" {len(graph.layers)} ,"'


def test_benchmark_layer_word_counts():
    """spec §3.5: the parameter word counts that the benchmark protos use, read back."""
    need_shared("models", "protos")
    seen: dict[str, set[int]] = {}
    for name in BENCHMARK:
        for layer in load_proto(MODELS / "protos" / f"{name}.tnnproto").layers:
            seen.setdefault(layer.proto_type, set()).add(len(layer.params.format(layer.n_fields)))
    assert seen["Convolution"] == {13, 14}
    assert seen["Pooling"] == {11} and seen["QuantizedPooling"] == {11}
    assert seen["Reshape"] == {7, 8} and seen["StridedSlice"] == {15}
    assert seen["Add"] == {0, 1} and seen["InnerProduct"] == {4}
