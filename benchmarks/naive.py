"""Speed of the NAIVE-order fp32 executor (``Executor(graph, fp32="naive")``, what
``quantization_cmd --exact`` calibrates with) against the default fast one.

    python benchmarks/naive.py [--models mobilenetv2,yolov8n] [--batch 7] [--repeat 3]

Runs each model of ../shared/models on ``--batch`` of its calib/*.npy tensors, as the quantizer
does (conv+activation fused graph), and prints seconds per image (median of ``--repeat`` runs
after a warm-up) for both kernel sets, and the per-layer-type share of the naive time. Other
processes on the machine skew the timings: compare runs made under the same load (``uptime``).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tnnquant.exec.executor import Executor  # noqa: E402
from tnnquant.formats.io import load_model  # noqa: E402
from tnnquant.passes.fuse_activation import fuse_conv_activation  # noqa: E402

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"


def seconds_per_image(executor: Executor, feeds: dict, batch: int, repeat: int) -> float:
    executor.run(feeds)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        executor.run(feeds)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) / batch


def layer_shares(graph, feeds: dict) -> dict[str, float]:
    """Seconds per layer type of one naive run."""
    executor = Executor(graph, fp32="naive")
    spent: dict[str, float] = defaultdict(float)
    run_layer = executor.run_layer

    def timed(layer, xs):
        start = time.perf_counter()
        out = run_layer(layer, xs)
        spent[layer.type] += time.perf_counter() - start
        return out

    executor.run_layer = timed
    executor.run(feeds)
    return dict(spent)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mobilenetv2,yolov8n,pplcnet,mtcnn_onet")
    ap.add_argument("--batch", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for model in args.models.split(","):
        base = SHARED_MODELS / model
        graph = fuse_conv_activation(load_model(base / f"{model}.tnnproto",
                                                base / f"{model}.tnnmodel"))
        files = sorted((base / "calib").glob("*.npy"))[:args.batch]
        x = np.concatenate([np.load(f) for f in files])
        feeds = {graph.inputs[0].name: x}
        fast = seconds_per_image(Executor(graph), feeds, len(x), args.repeat)
        naive = seconds_per_image(Executor(graph, fp32="naive"), feeds, len(x), args.repeat)
        shares = layer_shares(graph, feeds)
        total = sum(shares.values())
        top = ", ".join(f"{k} {v / total:.0%}" for k, v in
                        sorted(shares.items(), key=lambda kv: -kv[1])[:4])
        print(f"{model:12s} batch {len(x)}: fast {fast:.4f} s/image, naive {naive:.4f} s/image "
              f"({naive / fast:.1f}x); naive time: {top}")


if __name__ == "__main__":
    main()
