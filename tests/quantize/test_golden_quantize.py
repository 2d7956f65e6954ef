"""tnnquant's default (fast, BLAS) quantizer against TNN's own quantization_cmd outputs stored
in ../shared/models/<model>/quant/, calibrated on the same tensors (calib/*.npy).

The default mode's float activations differ from TNN's NAIVE kernels by about one ulp, so:
the written proto is byte-identical; MinMax blob scales agree to 1e-4 relative; KL picks the
same threshold (within one histogram bin) on >= 99% of channels — the rest are near-ties that a
one-ulp change of the histogram flips; int8 weights agree except +-1 on <= 0.1% of values for
MinMax weights, and int32 biases except +-1 plus the relative change of their weight scale
(which follows an adjacent KL bin of the input scale). ADMM weights (-w 1) iterate to a fixed
point that depends chaotically on the folded input scale, so for b2w1 only layers and blob
scales are compared here. The exact mode (tests/test_golden_exact.py) reproduces TNN byte for byte.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import MODELS, need_shared
from tnnquant.config import QuantConfig
from tnnquant.formats.io import load_model
from tnnquant.formats.tnnproto import format_proto
from tnnquant.quantize import quantize

COMBOS = {"b0w0": (0, 0, 0), "b2w0t1": (2, 0, 1), "b2w1": (2, 1, 0)}
CASES = [(m, c) for m in ("mtcnn_onet", "mobilenetv2", "pplcnet", "yolov8n")
         for c in ("b0w0", "b2w0t1")] + [("mtcnn_onet", "b2w1"), ("mobilenetv2", "b2w1")]


def int8_tensors(res):
    w = getattr(res, "filter", None) or getattr(res, "weight", None)
    return w, getattr(res, "bias", None)


@pytest.fixture(scope="module")
def loaded():
    cache = {}

    def get(model):
        if model not in cache:
            base = need_shared("models", model)
            cache[model] = load_model(base / f"{model}.tnnproto", base / f"{model}.tnnmodel")
        return cache[model]
    return get


@pytest.mark.parametrize("model,combo", CASES)
def test_matches_tnn_quantization_cmd(loaded, model, combo):
    base = MODELS / model
    graph = loaded(model)
    ours = quantize(graph, base / "calib", QuantConfig.from_tnn(*COMBOS[combo]))
    golden_proto = (base / "quant" / f"{combo}.quantized.tnnproto").read_bytes()
    golden = load_model(base / "quant" / f"{combo}.quantized.tnnproto",
                        base / "quant" / f"{combo}.quantized.tnnmodel")
    minmax_golden = load_model(base / "quant" / "b0w0.quantized.tnnproto",
                               base / "quant" / "b0w0.quantized.tnnmodel")

    # same layers, types and parameters: the whole proto, byte for byte
    assert format_proto(ours.graph) == golden_proto

    assert set(golden.blob_scales) <= set(ours.graph.blob_scales)
    kl_channels = kl_off = 0
    for blob, theirs in golden.blob_scales.items():
        mine = ours.graph.blob_scales[blob].scale.astype(np.float64)
        ref = theirs.scale.astype(np.float64)
        assert mine.shape == ref.shape, blob
        if ours.plans[blob].method == "minmax":
            np.testing.assert_allclose(mine, ref, rtol=1e-4, err_msg=blob)
            continue
        # one KL bin in scale units is the MinMax scale / 2047.5 (spec int8 §6.1-6.2)
        minmax_scale = minmax_golden.blob_scales[blob].scale.astype(np.float64)
        if minmax_scale.size != ref.size:
            minmax_scale = np.full(ref.size, minmax_scale.max())
        bin_width = minmax_scale / 2047.5
        kl_channels += ref.size
        kl_off += int(np.count_nonzero(np.abs(mine - ref) > 1.01 * bin_width))
    if kl_channels:
        assert kl_off <= 0.01 * kl_channels, f"{kl_off} of {kl_channels} KL channels off"

    if combo == "b2w1":
        return
    total = changed = 0
    for name, res in golden.resources.items():
        w, bias = int8_tensors(res)
        if w is None or w.data.dtype != np.int8:
            continue
        mine_w, mine_b = int8_tensors(ours.graph.resources[name])
        diff = np.abs(mine_w.data.astype(np.int32) - w.data.astype(np.int32))
        assert diff.max() <= 1, name
        total += diff.size
        changed += int(np.count_nonzero(diff))
        if bias is not None and bias.data.dtype == np.int32:
            # bq = trunc(b / S): equal up to +-1 plus what the weight-scale difference moves
            scale_change = relative_difference(
                ours.graph.resources[name].scale.data.astype(np.float64), res.scale.data)
            b_diff = np.abs(mine_b.data.astype(np.int64) - bias.data.astype(np.int64))
            allowed = 1 + 1.01 * scale_change * np.abs(bias.data.astype(np.float64))
            assert np.all(b_diff <= allowed), name
    assert changed <= 0.001 * total, f"{changed} of {total} int8 weights differ"


def relative_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a/b - 1|, 0 where both are 0 (dead channels get scale 0)."""
    b = np.asarray(b, np.float64)
    out = np.where(a == b, 0.0, np.inf)
    np.divide(np.abs(a - b), np.abs(b), out=out, where=b != 0)
    return out


IMAGE_MODELS = {  # mean, scale from ../shared/models/README.md
    "mobilenetv2": ((123.675, 116.28, 103.53), (0.0171247538, 0.0175070028, 0.0174291939)),
    "pplcnet": ((123.675, 116.28, 103.53), (0.0171247538, 0.0175070028, 0.0174291939)),
    "yolov8n": ((0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255)),
}


@pytest.mark.parametrize("model", sorted(IMAGE_MODELS))
def test_image_calibration_close_to_tnn(loaded, model):
    """Calibrating on the photos of ../shared/data/calib/ with -n/-s. Our Pillow decoding and
    resizing are what made the golden calib/*.npy tensors, so scales match TNN's b0w0 golden to
    1e-4; TNN itself decodes and resizes with stb, so against its img_b0w0 golden the
    per-channel scales differ like the README's Pillow-vs-stb figures (median 0.6-0.9%, p90
    2.4-3.5%)."""
    from tnnquant.calib.inputs import Preprocess
    photos = need_shared("data", "calib")
    mean, scale = IMAGE_MODELS[model]
    base = MODELS / model
    ours = quantize(loaded(model), photos,
                    QuantConfig.tnn(preprocess=Preprocess(mean=mean, scale=scale)))
    same_pixels = load_model(base / "quant" / "b0w0.quantized.tnnproto",
                             base / "quant" / "b0w0.quantized.tnnmodel")
    stb_pixels = load_model(base / "quant" / "img_b0w0.quantized.tnnproto",
                            base / "quant" / "img_b0w0.quantized.tnnmodel")
    rel_same, rel_stb = [], []
    for blob, theirs in same_pixels.blob_scales.items():
        mine = ours.graph.blob_scales[blob].scale.astype(np.float64)
        rel_same.append(relative_difference(mine, theirs.scale))
        rel_stb.append(relative_difference(mine, stb_pixels.blob_scales[blob].scale))
    rel_same, rel_stb = np.concatenate(rel_same), np.concatenate(rel_stb)
    assert rel_same.max() <= 1e-4
    assert np.median(rel_stb) <= 0.015 and np.percentile(rel_stb, 90) <= 0.05


def test_image_calibration_of_nhwc_model_is_a_clear_error(loaded):
    """mtcnn_onet declares its input 1x48x48x3 (NHWC): TNN sees 48 channels, so no image can be
    fed (TNN skips every photo and aborts); tnnquant says why."""
    from tnnquant.errors import InputError
    photos = need_shared("data", "calib")
    with pytest.raises(InputError, match="48"):
        quantize(loaded("mtcnn_onet"), photos, QuantConfig.tnn())
