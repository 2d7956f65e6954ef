"""The top of an HTML report as Chromium draws it, as a small PNG for the README.

    python docs/screenshot.py report.html docs/report-mobilenetv2.png [--height 1880]

Needs Chromium (Debian: apt-get install chromium) and Pillow (a tnnquant dependency).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

WIDTH = 1280
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--height", type=int, default=1880, help="CSS pixels from the top")
    args = parser.parse_args()
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                    "google-chrome"))), None)
    if browser is None:
        sys.exit("error: no Chromium found (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "shot.png"
        subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp}/profile",
                        f"--window-size={WIDTH},{args.height}", f"--screenshot={shot}",
                        args.html.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)
        image = Image.open(shot).convert("RGB")
    # 256 colours are plenty for flat charts and text, and keep the file small
    image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        args.png, optimize=True)
    print(f"wrote {args.png} ({image.width}x{image.height}, {args.png.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
