"""Forward-pass speed of tnnquant's fp32 executor against onnxruntime on the same inputs.

    python benchmarks/forward.py [--yolov8n-onnx PATH] [--threads 2] [--seconds 3]

Models: MobileNetV2 and YOLOv8n from ../shared/models (TNN files and inputs). onnxruntime runs
each model's original ONNX: MobileNetV2's ships in ../shared; YOLOv8n's is ``nudenet/320n.onnx``
of the PyPI package nudenet==3.4.2 (not in the repository):

    pip download nudenet==3.4.2 --no-deps -d /tmp/nudenet
    unzip -o /tmp/nudenet/nudenet-3.4.2-py3-none-any.whl nudenet/320n.onnx -d /tmp/nudenet

then pass ``--yolov8n-onnx /tmp/nudenet/nudenet/320n.onnx`` (or set TNNQUANT_YOLOV8N_ONNX).
Prints images/s at batch 1 and 8 of the graph as loaded and of the graph the quantizer
calibrates (conv+activation fused, spec int8 §2), the time ratios tnnquant / onnxruntime, and
the peak memory (tracemalloc: numpy allocations) of one YOLOv8n forward pass at batch 8.
numpy's BLAS uses every core; onnxruntime gets ``--threads`` intra-op threads (default 2, this
machine's cores). Timings are medians; other processes on the machine skew them.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tnnquant.exec.executor import Executor  # noqa: E402
from tnnquant.formats.io import load_model  # noqa: E402
from tnnquant.passes.fuse_activation import fuse_conv_activation  # noqa: E402

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
BATCHES = (1, 8)


def images_per_second(run: Callable[[], object], batch: int, seconds: float) -> float:
    """Median throughput over repeated runs lasting about ``seconds`` (after two warm-ups)."""
    run()
    run()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < 5 or time.perf_counter() < deadline:
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return batch / float(np.median(times))


def batch_of(inputs: list[np.ndarray], batch: int) -> np.ndarray:
    """``batch`` images cycling through the model's evaluation inputs."""
    return np.concatenate([inputs[i % len(inputs)] for i in range(batch)], axis=0)


def ort_session(onnx_path: Path, threads: int):
    """An onnxruntime session whose input and output batch dimension is symbolic, so fixed-batch
    exports (the shared MobileNetV2) also run at batch 8."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(onnx_path))
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_param = "batch"
    del model.graph.value_info[:]
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def bench_model(name: str, onnx_path: Path, args: argparse.Namespace) -> list[str]:
    folder = args.models / name
    graph = load_model(folder / f"{name}.tnnproto", folder / f"{name}.tnnmodel")
    executors = [Executor(graph), Executor(fuse_conv_activation(graph))]
    session = ort_session(onnx_path, args.threads)
    tnn_input, ort_input = graph.inputs[0].name, session.get_inputs()[0].name
    inputs = [np.load(p) for p in sorted((folder / "inputs").glob("*.npy"))]
    rows = []
    for batch in BATCHES:
        x = batch_of(inputs, batch)
        theirs = session.run(None, {ort_input: x})[0]
        agreement = min(cosine(ex.run({tnn_input: x})[graph.outputs[0]], theirs)
                        for ex in executors)
        ort_ips = images_per_second(lambda: session.run(None, {ort_input: x}), batch,
                                    args.seconds)
        tnn_ips = [images_per_second(lambda: ex.run({tnn_input: x}), batch, args.seconds)
                   for ex in executors]
        rows.append(f"{name:12s} {batch:5d} {tnn_ips[0]:9.1f} {tnn_ips[1]:9.1f} {ort_ips:9.1f} "
                    f"{ort_ips / tnn_ips[0]:9.2f}x {ort_ips / tnn_ips[1]:9.2f}x {agreement:10.7f}")
    return rows


def peak_forward_memory(name: str, batch: int, args: argparse.Namespace) -> tuple[float, float]:
    """(peak traced MB during one forward pass, MB of the input batch) for the TNN model."""
    folder = args.models / name
    graph = load_model(folder / f"{name}.tnnproto", folder / f"{name}.tnnmodel")
    executor = Executor(graph)
    x = batch_of([np.load(p) for p in sorted((folder / "inputs").glob("*.npy"))], batch)
    executor.run({graph.inputs[0].name: x})
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    executor.run({graph.inputs[0].name: x})
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return peak / 2**20, x.nbytes / 2**20


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, default=SHARED_MODELS,
                        help="folder with mobilenetv2/ and yolov8n/ (default ../shared/models)")
    parser.add_argument("--yolov8n-onnx", type=Path,
                        default=os.environ.get("TNNQUANT_YOLOV8N_ONNX"),
                        help="nudenet 3.4.2's 320n.onnx (or env TNNQUANT_YOLOV8N_ONNX)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per measurement")
    args = parser.parse_args(argv)

    models = [("mobilenetv2", args.models / "mobilenetv2" / "mobilenetv2.onnx")]
    if args.yolov8n_onnx is None or not Path(args.yolov8n_onnx).exists():
        print(f"YOLOv8n skipped: its ONNX ({args.yolov8n_onnx or 'no path given'}) is not "
              f"there; see 'python benchmarks/forward.py --help' for where to get it.")
    else:
        models.append(("yolov8n", Path(args.yolov8n_onnx)))
    for name, onnx_path in models:
        if not (args.models / name).exists() or not onnx_path.exists():
            print(f"{name} skipped: {args.models / name} or {onnx_path} not found")
            return 1

    print(f"{'':18s} {'images/s':^29s} {'time ratio':^21s}")
    print(f"{'model':12s} {'batch':>5s} {'tnnquant':>9s} {'fused':>9s} {'ort':>9s} "
          f"{'tnnquant':>10s} {'fused':>10s} {'cosine':>10s}")
    for name, onnx_path in models:
        for row in bench_model(name, onnx_path, args):
            print(row, flush=True)
    print("fused: conv+activation fused as the quantizer runs it; time ratio = tnnquant time / "
          "onnxruntime time;\ncosine: worst of tnnquant vs onnxruntime output")
    if len(models) > 1:
        peak, input_mb = peak_forward_memory("yolov8n", 8, args)
        print(f"yolov8n batch 8 forward: peak {peak:.1f} MB of numpy allocations "
              f"(input batch {input_mb:.1f} MB, weights not counted)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
