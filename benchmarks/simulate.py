"""Speed of the int8 simulation against the fp32 executor on the same network.

    python benchmarks/simulate.py [--combo b0w0] [--seconds 3] [--models DIR]

For each shared model: the fp32 executor (onnxruntime backend) on the float model with
conv+activation fused (the graph the quantizer calibrates) against
``Executor(qgraph, mode="int8")`` on TNN's quantized model ``quant/<combo>``, batch 1 and 8 of
the model's evaluation inputs; the numpy fp32 kernels for scale. All run alternately so that
load from other processes hits them alike; timings are medians. Target: int8 within 2x of the
fp32 executor.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tnnquant.exec.executor import Executor  # noqa: E402
from tnnquant.formats.io import load_model  # noqa: E402
from tnnquant.passes.fuse_activation import fuse_conv_activation  # noqa: E402

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
MODELS = ("mobilenetv2", "yolov8n", "pplcnet", "mtcnn_onet")
BATCHES = (1, 8)


def median_seconds(runs: list[Callable[[], object]], seconds: float) -> list[float]:
    """Median time of each run, the runs interleaved (after one warm-up each)."""
    for run in runs:
        run()
    times: list[list[float]] = [[] for _ in runs]
    deadline = time.perf_counter() + seconds * len(runs)
    while len(times[0]) < 5 or time.perf_counter() < deadline:
        for run, spent in zip(runs, times):
            start = time.perf_counter()
            run()
            spent.append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def bench_model(name: str, args: argparse.Namespace) -> list[str]:
    folder = args.models / name
    graph = load_model(folder / f"{name}.tnnproto", folder / f"{name}.tnnmodel")
    qgraph = load_model(folder / "quant" / f"{args.combo}.quantized.tnnproto",
                        folder / "quant" / f"{args.combo}.quantized.tnnmodel")
    fused = fuse_conv_activation(graph)
    fp32, int8 = Executor(fused), Executor(qgraph, mode="int8")
    numpy_fp32 = Executor(fused, fp32="numpy")
    inputs = [np.load(p) for p in sorted((folder / "inputs").glob("*.npy"))]
    rows = []
    for batch in BATCHES:
        feeds = {graph.inputs[0].name: np.concatenate(
            [inputs[i % len(inputs)] for i in range(batch)], axis=0)}
        t_fp32, t_int8, t_numpy = median_seconds(
            [lambda: fp32.run(feeds), lambda: int8.run(feeds), lambda: numpy_fp32.run(feeds)],
            args.seconds)
        rows.append(f"{name:12s} {batch:5d} {t_fp32 * 1e3:10.1f} {t_int8 * 1e3:10.1f} "
                    f"{t_numpy * 1e3:10.1f} {t_int8 / t_fp32:7.2f}x")
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, default=SHARED_MODELS,
                        help="folder with the shared models (default ../shared/models)")
    parser.add_argument("--combo", default="b0w0", help="quantized model quant/<combo>.*")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per measurement")
    args = parser.parse_args(argv)
    names = [n for n in MODELS if (args.models / n / "quant").exists()]
    if not names:
        print(f"no models found in {args.models}")
        return 1
    print(f"{'model':12s} {'batch':>5s} {'fp32 ms':>10s} {'int8 ms':>10s} {'numpy ms':>10s} "
          f"{'ratio':>8s}")
    for name in names:
        for row in bench_model(name, args):
            print(row, flush=True)
    print("ratio = int8 simulation time / fp32 executor time (target: within 2x); numpy: the "
          "fp32 numpy kernels")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
