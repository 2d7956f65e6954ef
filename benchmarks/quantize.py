"""Time the full `quantization_cmd` on the shared models and compare with TNN's own tool.

TNN's numbers come from each model's timings.tsv (user CPU seconds of the single-threaded
C++ tool on this class of machine, and its peak RSS). tnnquant runs as a child process per
measurement; its wall time and peak RSS are taken from that process.

    python benchmarks/quantize.py [--models mobilenetv2,yolov8n,pplcnet] [--combos b0w0,b2w1]
                                  [--shared ../shared] [--extra=--exact]
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMBOS = {"b0w0": ["-b", "0", "-w", "0"], "b2w1": ["-b", "2", "-w", "1"],
          "b2w0t1": ["-b", "2", "-w", "0", "-t", "1"]}
# targets from the issue: how many times faster than TNN's CPU seconds
TARGET = {"b0w0": 5, "b2w1": 20, "b2w0t1": 5}


def tnn_timings(model_dir: Path) -> dict[str, tuple[float, float]]:
    """combo -> (user CPU seconds, peak RSS MB) of TNN's quantization_cmd."""
    with open(model_dir / "timings.tsv") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    header = rows[0]
    cpu, rss = header.index("user_cpu_s"), header.index("peak_rss_mb")
    return {row[0]: (float(row[cpu]), float(row[rss])) for row in rows[1:]}


def run_once(args: list[str], cwd: str) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    parser.add_argument("--models", default="mobilenetv2,yolov8n,pplcnet")
    parser.add_argument("--combos", default="b0w0,b2w1")
    parser.add_argument("--extra", default="", help="extra quantization_cmd options")
    parser.add_argument("--repeat", type=int, default=1)
    opts = parser.parse_args()
    models = Path(opts.shared) / "models"
    if not models.is_dir():
        raise SystemExit(f"{models} not found: pass --shared")
    print(f"{'model':<12} {'combo':<7} {'tnnquant s':>10} {'TNN cpu s':>9} {'speedup':>8} "
          f"{'target':>6} {'RSS MB':>7} {'TNN MB':>7}")
    with tempfile.TemporaryDirectory() as out:
        for model in opts.models.split(","):
            base = models / model
            tnn = tnn_timings(base)
            for combo in opts.combos.split(","):
                cmd = [sys.executable, "-c", "import sys; from tnnquant.cli import "
                       "quantization_cmd_main as m; sys.exit(m())",
                       "-p", str(base / f"{model}.tnnproto"), "-m", str(base / f"{model}.tnnmodel"),
                       "-i", str(base / "calib"), "-q", *COMBOS[combo], *opts.extra.split()]
                runs = [run_once(cmd, out) for _ in range(opts.repeat)]
                wall = min(r[0] for r in runs)
                rss = max(r[1] for r in runs)
                tnn_cpu, tnn_rss = tnn[combo]
                print(f"{model:<12} {combo:<7} {wall:>10.1f} {tnn_cpu:>9.1f} "
                      f"{tnn_cpu / wall:>7.1f}x {TARGET[combo]:>5}x {rss:>7.0f} {tnn_rss:>7.0f}",
                      flush=True)


if __name__ == "__main__":
    main()
