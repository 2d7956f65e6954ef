"""KL threshold search speed: the vectorized ``kl_thresholds`` vs the straightforward TNN loop.

    python benchmarks/kl.py                       # histograms of synthetic activations
    python benchmarks/kl.py --onnx M.onnx --calib DIR   # every 4-D blob of a real model
                                                  # (needs onnx + onnxruntime, the bench extra)

The reference loop (tests/calib/kl_reference.py: TNN's algorithm in f32 with glibc's logf)
runs on a few channels only; TNN's own C++ loop takes ~30 ms per channel.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "calib"))

from kl_reference import kl_threshold_reference  # noqa: E402

from tnnquant.calib.methods import kl_thresholds  # noqa: E402
from tnnquant.calib.observers import HistogramObserver, RangeObserver  # noqa: E402


def histograms_of(x: np.ndarray) -> np.ndarray:
    """Per-channel TNN histograms (valid channels) of a (N, C, H, W) batch."""
    r = RangeObserver(x.shape[1])
    r.update(x)
    h = HistogramObserver(r.result())
    h.update(x)
    res = h.result()
    return res.bins()[res.valid]


def synthetic(channels: int, seed: int = 0) -> np.ndarray:
    """Conv-like activations: per-channel scale, Laplace/Gaussian bodies, ReLU/ReLU6 sparsity,
    a few outliers; 16 files of 56x56."""
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, channels, 64):
        c = min(64, channels - start)
        scale = rng.lognormal(0, 1, (1, c, 1, 1))
        body = np.where(rng.random((1, c, 1, 1)) < 0.5,
                        rng.laplace(size=(16, c, 56, 56)), rng.standard_normal((16, c, 56, 56)))
        x = body * scale + rng.normal(0, 0.5, (1, c, 1, 1)) * scale
        kind = rng.integers(0, 3, c)
        x[:, kind == 1] = np.maximum(x[:, kind == 1], 0)
        x[:, kind == 2] = np.clip(x[:, kind == 2], 0, 6 * scale[0, kind == 2, 0, 0][None, :, None,
                                                                                       None])
        spikes = rng.random(x.shape) < 1e-4
        x[spikes] *= 20
        out.append(histograms_of(x.astype(np.float32)))
    return np.concatenate(out)


def real(onnx_path: str, calib: str) -> np.ndarray:
    import onnx
    import onnxruntime as ort

    model = onnx.load(onnx_path)
    final = {o.name for o in model.graph.output}
    names = [o for n in model.graph.node for o in n.output if o not in final]
    model.graph.output.extend([onnx.ValueInfoProto(name=n) for n in names])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0].name
    outs = [o.name for o in sess.get_outputs()]
    acts: dict[str, list[np.ndarray]] = {}
    for f in sorted(Path(calib).glob("*.npy")):
        for name, y in zip(outs, sess.run(None, {inp: np.load(f).astype(np.float32)})):
            if y.ndim == 4 and y.shape[2] * y.shape[3] >= 100:  # KL blobs (spec int8 §4)
                acts.setdefault(name, []).append(y)
    return np.concatenate([histograms_of(np.concatenate(v)) for v in acts.values()])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=512, help="synthetic channels")
    ap.add_argument("--onnx", help="an ONNX model whose 4-D blobs give the histograms")
    ap.add_argument("--calib", help="directory of .npy calibration inputs for --onnx")
    ap.add_argument("--ref-channels", type=int, default=3, help="channels for the loop")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    hists = real(args.onnx, args.calib) if args.onnx else synthetic(args.channels)
    n = len(hists)
    print(f"{n} channel histograms ({'real: ' + args.onnx if args.onnx else 'synthetic'})")
    results = {}
    for threads in sorted({1, args.threads}):
        kl_thresholds(hists[:8], threads=threads)  # warm-up (plan arrays)
        t0, c0 = time.perf_counter(), time.process_time()
        results[threads] = kl_thresholds(hists, threads=threads)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"vectorized, {threads} thread(s): {n / wall:8.1f} channels/s  "
              f"{1e3 * wall / n:6.2f} ms/channel wall, {1e3 * cpu / n:6.2f} ms/channel CPU")

    k = min(args.ref_channels, n)
    idx = np.linspace(0, n - 1, k).astype(int)
    t0 = time.perf_counter()
    ref = [kl_threshold_reference(hists[i]) for i in idx]
    wall = time.perf_counter() - t0
    fast = results[max(results)]
    print(f"reference loop (f32, NumPy per candidate): {k / wall:8.2f} channels/s  "
          f"{1e3 * wall / k:8.1f} ms/channel")
    same = sum(int(fast[i] == r) for i, r in zip(idx, ref))
    print(f"thresholds equal to the reference on {same}/{k} sampled channels")


if __name__ == "__main__":
    main()
