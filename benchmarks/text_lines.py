"""Render synthetic text images (calibration and evaluation data for text recognizers and
detectors).

    python benchmarks/text_lines.py OUT_DIR [--count 40] [--seed 0] [--page]

Each image is one line of 2-4 words (English words, numbers, prices, times) in Pillow's
bundled font at a random size (18-33 px), dark ink on a light background of random tint,
48 pixels high as PP-OCR's recognizers expect; with ``--page``, a 640x640 page holding 4-10
such lines at random places (for text detectors). Different seeds give different sets (the
words are drawn at random), so calibrate on one seed and evaluate on another. The bundled
scalable font needs Pillow >= 10.1 (tnnquant itself accepts older Pillow).
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
HEIGHT = 48    # line images: PP-OCR's recognizer input height
PAGE = 640     # page images: side in pixels


def _words(rng: np.random.Generator) -> tuple[str, int, ImageFont.FreeTypeFont]:
    """(text, size, font) of one random line."""
    text = " ".join(rng.choice(WORDS, rng.integers(2, 5)))
    size = int(rng.integers(18, 34))
    return text, size, ImageFont.load_default(size=size)


def _colour(rng: np.random.Generator, low: int, high: int) -> tuple[int, ...]:
    return tuple(int(v) for v in rng.integers(low, high, 3))


def render(out_dir: Path, count: int, seed: int, page: bool = False) -> None:
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        if page:
            image = Image.new("RGB", (PAGE, PAGE), _colour(rng, 180, 256))
            draw = ImageDraw.Draw(image)
            for _ in range(int(rng.integers(4, 11))):
                text, _, font = _words(rng)
                x = int(rng.integers(0, max(PAGE - int(font.getlength(text)), 1)))
                draw.text((x, int(rng.integers(0, PAGE - HEIGHT))), text,
                          fill=_colour(rng, 0, 90), font=font)
        else:
            text, size, font = _words(rng)
            paper, ink = _colour(rng, 180, 256), _colour(rng, 0, 90)
            image = Image.new("RGB", (max(int(font.getlength(text)) + 20, 100), HEIGHT), paper)
            ImageDraw.Draw(image).text((10, (HEIGHT - size) // 2 - 2), text, fill=ink, font=font)
        image.save(out_dir / f"{i:02d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--page", action="store_true", help="640x640 pages of several lines")
    opts = parser.parse_args()
    render(opts.out_dir, opts.count, opts.seed, opts.page)


if __name__ == "__main__":
    main()
