"""Our conversion of the ONNX files in ../shared/models against TNN's own conversion of the
same files (onnx2tnn, TNN commit f0cb0812, default -optimize=1 -half=0).

Every difference between the two is listed in ``KNOWN_DIFFERENCES`` with its reason; there are
none: the .tnnproto and the .tnnmodel are byte-identical. pplcnet has no ONNX in ../shared
(its ONNX ships in a PyPI package and today's onnxslim of it differs from the one TNN converted,
see ../shared/models/README.md), so it is not part of this comparison; nothing is downloaded.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import need_shared
from onnx_models import ort_run

import tnnquant
from tnnquant.config import QuantConfig
from tnnquant.convert import convert_onnx
from tnnquant.formats.io import load_model
from tnnquant.formats.tnnmodel import format_model
from tnnquant.formats.tnnproto import format_proto
from tnnquant.quantize import quantize
from tnnquant.report.metrics import cosine

PAIRS = ["mobilenetv2", "yolov8n", "mtcnn_onet"]
# (model, layer index or None, what differs, why) for every difference with TNN's conversion
KNOWN_DIFFERENCES: list[tuple[str, int | None, str, str]] = []


def _pair(name: str):
    folder = need_shared("models", name)
    onnx_path = folder / f"{name}.onnx"
    if not onnx_path.exists():
        pytest.skip(f"{onnx_path} not found")
    return onnx_path, folder / f"{name}.tnnproto", folder / f"{name}.tnnmodel"


def layer_differences(ours, theirs) -> list[str]:
    """Every difference in layer order, type, name, blobs, parameters and weights."""
    diffs = []
    if len(ours.layers) != len(theirs.layers):
        diffs.append(f"{len(ours.layers)} layers vs {len(theirs.layers)}")
    for i, (a, b) in enumerate(zip(ours.layers, theirs.layers)):
        for what in ("type", "name", "inputs", "outputs", "params"):
            if getattr(a, what) != getattr(b, what):
                diffs.append(f"layer {i} {what}: {getattr(a, what)} vs {getattr(b, what)}")
        ra, rb = ours.resources.get(a.name), theirs.resources.get(b.name)
        if (ra is None) != (rb is None):
            diffs.append(f"layer {i} '{a.name}': resource present {ra is not None} vs "
                         f"{rb is not None}")
        elif ra is not None:
            for key, buf in vars(rb).items():
                mine = getattr(ra, key, None)
                if hasattr(buf, "dims") and (mine.dims != buf.dims
                                             or not np.array_equal(mine.data, buf.data)):
                    diffs.append(f"layer {i} '{a.name}' {key}: dims {mine.dims} vs {buf.dims}"
                                 f" or values differ")
    for what in ("inputs", "outputs", "blob_names"):
        if getattr(ours, what) != getattr(theirs, what):
            diffs.append(f"graph {what} differ")
    return diffs


@pytest.mark.parametrize("name", PAIRS)
def test_same_layers_params_and_weights_as_onnx2tnn(name):
    onnx_path, proto, model = _pair(name)
    ours, theirs = convert_onnx(onnx_path), load_model(proto, model)
    expected = [f"{d[2]}" for d in KNOWN_DIFFERENCES if d[0] == name]
    assert layer_differences(ours, theirs) == expected
    assert [layer.type for layer in ours.layers] == [layer.type for layer in theirs.layers]


@pytest.mark.parametrize("name", PAIRS)
def test_files_byte_identical_to_onnx2tnn(name):
    onnx_path, proto, model = _pair(name)
    ours = convert_onnx(onnx_path)
    assert format_proto(ours) == proto.read_bytes()
    assert format_model(ours) == model.read_bytes()


@pytest.mark.parametrize("name", PAIRS)
def test_fp32_outputs_match_onnxruntime_and_tnns_conversion(name):
    onnx_path, proto, model = _pair(name)
    ours, theirs = convert_onnx(onnx_path), load_model(proto, model)
    folder = proto.parent
    for sample in sorted((folder / "inputs").glob("*.npy"))[:2]:
        x = np.load(sample).astype(np.float32).reshape(ours.inputs[0].dims)
        feeds = {ours.inputs[0].name: x}
        expected = ort_run(onnx_path, feeds)
        mine, tnn = tnnquant.api.run(ours, feeds), tnnquant.api.run(theirs, feeds)
        for output, want in expected.items():
            got = mine[output].reshape(want.shape)
            assert cosine(want, got) >= 0.99999, (output, cosine(want, got))
            assert cosine(tnn[output].reshape(want.shape), got) >= 0.99999


@pytest.mark.parametrize("name", PAIRS)
def test_minmax_blob_scales_match_tnns_conversion(name):
    onnx_path, proto, model = _pair(name)
    calib = [np.load(p) for p in sorted((proto.parent / "calib").glob("*.npy"))[:4]]
    config = QuantConfig.from_tnn(0, 0)
    ours = quantize(convert_onnx(onnx_path), calib, config).graph.blob_scales
    theirs = quantize(load_model(proto, model), calib, config).graph.blob_scales
    assert set(ours) == set(theirs)
    for blob, scale in theirs.items():
        np.testing.assert_allclose(ours[blob].scale, scale.scale, rtol=1e-4, err_msg=blob)


def test_pplcnet_has_no_onnx_pair():
    folder = need_shared("models", "pplcnet")
    assert not (folder / "pplcnet.onnx").exists(), \
        "pplcnet.onnx appeared in ../shared: add it to PAIRS"
