"""Render synthetic text-line images (calibration and evaluation data for text recognizers).

    python benchmarks/text_lines.py OUT_DIR [--count 40] [--seed 0]

Each image is one line of 2-4 words (English words, numbers, prices, times) in Pillow's
bundled font at a random size (18-33 px), dark ink on a light background of random tint,
48 pixels high as PP-OCR's recognizers expect. Different seeds give disjoint-looking sets
(the words are drawn at random), so calibrate on one seed and evaluate on another.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WORDS = ("quantization model int8 float edge device phone camera network layer scale blob "
         "weight photo tensor runtime kernel channel output input accuracy speed memory report "
         "Tencent ONNX 2026 12:45 price $19.99 total: 42 km/h hello world OCR text line receipt "
         "invoice").split()
HEIGHT = 48


def render(out_dir: Path, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        text = " ".join(rng.choice(WORDS, rng.integers(2, 5)))
        size = int(rng.integers(18, 34))
        font = ImageFont.load_default(size=size)
        paper = tuple(int(v) for v in rng.integers(180, 256, 3))
        ink = tuple(int(v) for v in rng.integers(0, 90, 3))
        image = Image.new("RGB", (max(int(font.getlength(text)) + 20, 100), HEIGHT), paper)
        ImageDraw.Draw(image).text((10, (HEIGHT - size) // 2 - 2), text, fill=ink, font=font)
        image.save(out_dir / f"{i:02d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()
    render(opts.out_dir, opts.count, opts.seed)


if __name__ == "__main__":
    main()
