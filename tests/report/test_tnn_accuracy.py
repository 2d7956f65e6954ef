"""The report on TNN's own quantized MobileNetV2 models reproduces what the real TNN x86 int8
runtime gave on the 20 imagenet20 photos, and names a deliberately broken layer."""
from __future__ import annotations

import numpy as np
import pytest

import tnnquant
from conftest import need_shared
from tnnquant.calib.inputs import Preprocess, iter_batches, list_samples
from tnnquant.ir.graph import BlobScale
from tnnquant.report import compare, compare_folder

# models README: torchvision's ImageNet normalization as TNN's (x - mean) * scale
PREPROCESS = Preprocess(mean=(123.675, 116.28, 103.53),
                        scale=(0.0171247538, 0.0175070028, 0.0174291939))
# real TNN x86 runtime (issue 5): int8 top-1, top-1 agreement with float, mean logit cosine
TNN = {"b0w0": (0.95, 0.90, 0.950), "b2w1": (0.90, 0.90, 0.932),
       "b2w0t1": (0.85, 0.95, 0.967), "img_b0w0": (0.95, 0.95, 0.956)}
TNN_FLOAT_TOP1 = 0.90
COSINE_TOLERANCE = 0.005   # our JPEG decoding and resizing is Pillow's, TNN's is stb's


def mobilenetv2(combo: str | None = None) -> tnnquant.Graph:
    folder = need_shared("models", "mobilenetv2")
    if combo is None:
        return tnnquant.load_model(folder / "mobilenetv2.tnnproto",
                                   folder / "mobilenetv2.tnnmodel")
    return tnnquant.load_model(folder / f"quant/{combo}.quantized.tnnproto",
                               folder / f"quant/{combo}.quantized.tnnmodel")


@pytest.mark.parametrize("combo", list(TNN))
def test_reproduces_tnn_x86_accuracy(combo):
    images = need_shared("data", "imagenet20")
    report = compare_folder(mobilenetv2(), mobilenetv2(combo), images, PREPROCESS,
                            images / "labels.txt", batch_size=5, warn=lambda message: None)
    (logits,) = report.outputs
    c = logits.classifier
    int8_top1, agreement, cosine = TNN[combo]
    assert report.samples == 20
    assert c.float_top1 == pytest.approx(TNN_FLOAT_TOP1)
    assert c.int8_top1 == pytest.approx(int8_top1)
    assert c.top1_agreement == pytest.approx(agreement)
    assert c.mean_cosine == pytest.approx(cosine, abs=COSINE_TOLERANCE)


def test_broken_blob_scale_is_named_on_mobilenetv2():
    graph, qgraph = mobilenetv2(), mobilenetv2("b0w0")
    blob = "/features/features.12/conv/conv.1/conv.1.2/Clip_output_0"
    scale = qgraph.blob_scales[blob]
    qgraph.blob_scales[blob] = BlobScale(scale.scale * 100, scale.zero_point)
    images = need_shared("data", "imagenet20")
    samples = [s for s in list_samples(images, graph.inputs) if s.name.endswith(".jpg")][:4]
    report = compare(graph, qgraph, iter_batches(samples, graph.inputs, PREPROCESS, 4))
    worst = [b.layer for b in report.worst_layers()]
    assert "/features/features.12/conv/conv.1/conv.1.0/Conv" in worst[:3]
    assert np.isfinite([b.added_noise for b in report.blobs]).all()
