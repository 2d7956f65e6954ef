"""Time reading and writing TNN model files.

    python benchmarks/load.py [MODEL.tnnproto MODEL.tnnmodel]

Without arguments it times the shared MobileNetV2 (14 MB of float32 weights). Reading must stay
well under a second: payloads are wrapped with numpy.frombuffer, never converted per element.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from tnnquant.formats.io import load_model
from tnnquant.formats.tnnmodel import format_model
from tnnquant.formats.tnnproto import format_proto

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "models" / "mobilenetv2" / "mobilenetv2"


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str]) -> int:
    if len(argv) == 2:
        proto, model = map(Path, argv)
    elif not argv:
        proto, model = DEFAULT.with_suffix(".tnnproto"), DEFAULT.with_suffix(".tnnmodel")
    else:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    if not model.exists():
        print(f"{model} not found", file=sys.stderr)
        return 1
    size = model.stat().st_size
    graph = load_model(proto, model)
    load = best_of(lambda: load_model(proto, model))
    write = best_of(lambda: (format_proto(graph), format_model(graph)))
    print(f"{model.name}: {size / 1e6:.1f} MB, {len(graph.layers)} layers")
    print(f"  load  {load * 1e3:7.1f} ms  ({size / 1e6 / load:.0f} MB/s)")
    print(f"  write {write * 1e3:7.1f} ms  (both files, in memory)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
