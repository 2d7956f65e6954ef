"""The calibration forward of tnnquant against onnxruntime on the same inputs.

    python benchmarks/forward.py [--models mobilenetv2,yolov8n] [--seconds 3] [--load]

For each model with an ONNX in ../shared/models (the exact ONNX TNN's converter turned into
the TNN model), at batch 1 and 8 of its evaluation inputs, milliseconds per image of:

* ``ort``: onnxruntime (2 threads) on that ONNX (a fixed-batch export runs sample by sample);
* ``forward``: tnnquant's fp32 executor on the graph the quantizer calibrates (conv +
  activation fused), network outputs only;
* ``ranges``: the calibration's first pass: the per-channel min/max of every calibrated blob
  (``Executor.extremes``), what `-b 0` runs;
* ``blobs``: every calibrated blob handed to a hook (the histogram pass of `-b 2`);
* ``numpy``: the numpy kernels (``fp32="numpy"``, what ran before), for scale;

the ratio ranges / ort (target ≤ 1.5), and with ``--load`` the same measured with one busy-loop
process taking a core, as loaded / quiet. Timings are medians; the machine's other work skews
them, so compare within one run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import SHARED_MODELS, busy_core, median_seconds, ort_reference  # noqa: E402

from tnnquant.calib.collect import calibrated_blobs  # noqa: E402
from tnnquant.exec.executor import Executor  # noqa: E402
from tnnquant.formats.io import load_model  # noqa: E402
from tnnquant.passes.fuse_activation import fuse_conv_activation  # noqa: E402

BATCHES = (1, 8)


def timings(name: str, batch: int, args: argparse.Namespace) -> dict[str, float]:
    """ms per image of each way of running the model."""
    folder = args.models_dir / name
    graph = fuse_conv_activation(load_model(folder / f"{name}.tnnproto",
                                            folder / f"{name}.tnnmodel"))
    inputs = [np.load(p) for p in sorted((folder / "inputs").glob("*.npy"))]
    x = np.concatenate([inputs[i % len(inputs)] for i in range(batch)], axis=0)
    feed = {graph.inputs[0].name: x}
    fast, numpy_kernels = Executor(graph), Executor(graph, fp32="numpy")
    blobs = list(calibrated_blobs(graph))
    ort = ort_reference(folder / f"{name}.onnx")
    runs = {
        "ort": lambda: ort(x),
        "forward": lambda: fast.run(feed),
        "ranges": lambda: [fast.extremes({k: v[i:i + 1] for k, v in feed.items()}, blobs)
                           for i in range(batch)],
        "blobs": lambda: [fast.run({k: v[i:i + 1] for k, v in feed.items()},
                                   hooks=[lambda *a: None], observe=blobs)
                          for i in range(batch)],
        "numpy": lambda: numpy_kernels.run(feed),
    }
    out = {key: median_seconds(fn, args.seconds) * 1e3 / batch for key, fn in runs.items()}
    out["per_sample"] = ort.per_sample
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="mobilenetv2,yolov8n")
    parser.add_argument("--models-dir", type=Path, default=SHARED_MODELS)
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per measurement")
    parser.add_argument("--load", action="store_true", help="also measure with a busy core")
    args = parser.parse_args(argv)
    names = [n for n in args.models.split(",") if (args.models_dir / n / f"{n}.onnx").exists()]
    if not names:
        print(f"no model with an ONNX found in {args.models_dir}")
        return 1
    keys = ("ort", "forward", "ranges", "blobs", "numpy")
    header = f"{'model':12s} {'batch':>5s} " + " ".join(f"{k:>8s}" for k in keys) + \
        f" {'ranges/ort':>10s}"
    if args.load:
        header += " " + " ".join(f"{k + '@load':>12s}" for k in ("ort", "ranges")) + \
            f" {'ort x':>6s} {'ranges x':>8s}"
    print("ms per image; ort at batch 8 marked * ran sample by sample (fixed-batch ONNX)")
    print(header)
    for name in names:
        for batch in BATCHES:
            quiet = timings(name, batch, args)
            row = f"{name:12s} {batch:5d} " + " ".join(
                f"{quiet[k]:7.1f}{'*' if k == 'ort' and quiet['per_sample'] else ' '}"
                for k in keys) + f" {quiet['ranges'] / quiet['ort']:9.2f}x"
            if args.load:
                with busy_core():
                    loaded = timings(name, batch, args)
                ratios = (loaded['ort'] / quiet['ort'], loaded['ranges'] / quiet['ranges'])
                row += f" {loaded['ort']:11.1f} {loaded['ranges']:11.1f} " \
                       f"{ratios[0]:5.2f}x {ratios[1]:7.2f}x"
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
