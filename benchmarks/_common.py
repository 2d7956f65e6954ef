"""What the benchmarks share: the shared models, TNN's timings, the onnxruntime reference and
a busy-loop process for measurements under load."""
from __future__ import annotations

import contextlib
import csv
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
ORT_THREADS = 2   # the reference: onnxruntime on this machine's 2 cores


def tnn_timings(model_dir: Path) -> dict[str, tuple[float, float]]:
    """combo -> (wall seconds, peak RSS MB) of TNN's quantization_cmd (timings.tsv)."""
    with open(model_dir / "timings.tsv") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    header = rows[0]
    wall, rss = header.index("wall_s"), header.index("peak_rss_mb")
    return {row[0]: (float(row[wall]), float(row[rss])) for row in rows[1:]}


def ort_reference(onnx_path: Path, threads: int = ORT_THREADS):
    """onnxruntime on the model's original ONNX, batch dimension made symbolic; returns
    ``run(x) -> outputs`` (a fixed-batch export that cannot run a batch runs it sample by
    sample, which is said in ``run.per_sample``)."""
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
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    quiet = ort.RunOptions()
    quiet.log_severity_level = 4   # the fixed-batch probe failing is expected

    def run(x: np.ndarray):
        if run.per_sample:
            return [session.run(None, {name: x[i:i + 1]}) for i in range(len(x))]
        try:
            return session.run(None, {name: x}, quiet)
        except Exception:   # noqa: BLE001 - e.g. a Reshape with the batch of 1 built in
            run.per_sample = True
            return run(x)

    run.per_sample = False
    return run


def median_seconds(fn: Callable[[], object], seconds: float, min_runs: int = 5) -> float:
    """Median time of repeated calls lasting about ``seconds`` (after one warm-up)."""
    fn()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < min_runs or time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


@contextlib.contextmanager
def busy_core(active: bool = True) -> Iterator[None]:
    """One process spinning in a loop (it takes one core) while the block runs."""
    if not active:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)   # let it get scheduled
        yield
    finally:
        proc.kill()
        proc.wait()


def child_run(args: list[str], cwd: str, env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one child process, which must succeed."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024
