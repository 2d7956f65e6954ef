"""Regenerate examples/tiny/: a small random-weight CNN in TNN format and a calibration folder.

    python examples/make_tiny.py

The model is written by tnnquant's own writer; the calibration folder holds synthetic photos
(gradients and shapes, made with numpy + Pillow) and two .npy tensors.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tnnquant import save_model
from tnnquant.testing import GraphBuilder

HERE = Path(__file__).resolve().parent / "tiny"
MEAN, SCALE = (127.5, 127.5, 127.5), (1 / 127.5, 1 / 127.5, 1 / 127.5)


def tiny_cnn():
    """conv-ReLU -> max pool -> residual block -> depthwise -> conv -> global pool -> 10 logits"""
    b = GraphBuilder(seed=7)
    x = b.input("data", (1, 3, 64, 64))
    y = b.conv(x, 16, 3, stride=2, pad=1, name="stem")
    y = b.layer("ReLU", y, name="stem_relu")
    y = b.layer("Pooling", y, "0 2 2 2 2 0 0 -1 -1 -1 0 0 0 0", name="pool")
    r = b.conv(y, 16, 3, pad=1, name="block_conv1")
    r = b.layer("ReLU6", r, name="block_relu6")
    r = b.conv(r, 16, 3, pad=1, name="block_conv2")
    y = b.layer("Add", [y, r], "-1", name="block_add")
    y = b.layer("ReLU", y, name="block_relu")
    y = b.conv(y, 16, 3, pad=1, group=16, name="dw")
    y = b.conv(y, 32, 1, name="pw")
    y = b.layer("ReLU", y, name="pw_relu")
    y = b.layer("Pooling", y, "1 0 0 1 1 0 0 -1 -1 -1 0 0 0 0", name="gap")
    y = b.inner_product(y, 10, 32, name="fc")
    y = b.layer("SoftmaxCaffe", y, "1", name="prob")
    return b.build(y)


def photo(i: int, size: int = 80) -> Image.Image:
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = np.stack([(np.sin(6 * xx + i) + 1) * 127, yy * 255, (1 - xx) * yy * 255], axis=-1)
    img = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(4):
        x0, y0 = rng.integers(0, size - 20, 2)
        w, h = rng.integers(8, 30, 2)
        draw.ellipse((x0, y0, x0 + w, y0 + h), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return img


def main() -> None:
    calib = HERE / "calib"
    calib.mkdir(parents=True, exist_ok=True)
    save_model(tiny_cnn(), HERE / "tiny.tnnproto", HERE / "tiny.tnnmodel")
    for i in range(8):
        photo(i).save(calib / f"photo_{i}.png")
    rng = np.random.default_rng(0)
    for i in range(2):
        np.save(calib / f"tensor_{i}.npy", rng.uniform(-1, 1, (3, 64, 64)).astype(np.float32))


if __name__ == "__main__":
    main()
