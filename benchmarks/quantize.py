"""The whole `quantization_cmd` on the shared models, side by side with TNN's own tool and with
onnxruntime running the same calibration forward passes.

    python benchmarks/quantize.py [--models mobilenetv2,yolov8n,pplcnet,mtcnn_onet]
                                  [--combos b0w0,b2w1] [--repeat 3] [--load] [--samples N]
                                  [--extra=--exact]

tnnquant runs as a child process per measurement (`quantization_cmd ... --no-report -q`, so
interpreter start and imports are included): best wall time of ``--repeat`` runs and the
largest peak RSS, with tnnquant byte-compiled as `pip install` leaves it. TNN: wall seconds and peak RSS of its single-threaded C++ tool from each
model's timings.tsv. onnxruntime: the float passes the calibration makes (one for -b 0, two
for -b 2) over the same samples with 2 threads on the model's original ONNX (where the model
folder has one), its import and session included — the floor for a tool built on it.
``--load``: every measurement again with one busy-loop process taking a core; the last column
is then loaded time / quiet time. ``--samples N``: calibrate on N samples (the 14 tensors of
calib/ repeated) to check that peak memory does not grow with them.
"""
from __future__ import annotations

import argparse
import compileall
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SHARED_MODELS, busy_core, child_run, tnn_timings  # noqa: E402

COMBOS = {"b0w0": ["-b", "0", "-w", "0"], "b2w1": ["-b", "2", "-w", "1"],
          "b2w0t1": ["-b", "2", "-w", "0", "-t", "1"]}
PASSES = {"b0w0": 1, "b2w1": 2, "b2w0t1": 2}   # float passes over the samples (no hist groups)
TARGET = {"b0w0": 15, "b2w1": 50, "b2w0t1": 15}   # x faster than TNN (issue 10)

ORT_SCRIPT = """
import sys, time
start = time.perf_counter()
import numpy as np, onnxruntime as ort
from pathlib import Path
options = ort.SessionOptions()
options.intra_op_num_threads = 2
options.add_session_config_entry("session.intra_op.allow_spinning", "0")
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
files = sorted(Path(sys.argv[2]).glob("*.npy"))
for _ in range(int(sys.argv[3])):
    for f in files:
        session.run(None, {name: np.load(f)})
"""


def calib_folder(base: Path, samples: int | None, tmp: str) -> Path:
    """The model's calib/ folder, or one with ``samples`` links cycling through it."""
    folder = base / "calib"
    if not samples:
        return folder
    files = sorted(folder.glob("*.npy"))
    out = Path(tmp) / f"{base.name}_{samples}"
    out.mkdir(exist_ok=True)
    for i in range(samples):
        link = out / f"{i:06d}.npy"
        if not link.exists():
            link.symlink_to(files[i % len(files)])
    return out


def measure(cmd: list[str], cwd: str, repeat: int) -> tuple[float, float]:
    runs = [child_run(cmd, cwd) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mobilenetv2,yolov8n,pplcnet,mtcnn_onet")
    parser.add_argument("--combos", default="b0w0,b2w1")
    parser.add_argument("--shared-models", type=Path, default=SHARED_MODELS)
    parser.add_argument("--extra", default="", help="extra quantization_cmd options")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--load", action="store_true", help="also measure with a busy core")
    parser.add_argument("--samples", type=int, default=0, help="calibrate on N samples")
    opts = parser.parse_args()
    if not opts.shared_models.is_dir():
        raise SystemExit(f"{opts.shared_models} not found: pass --shared-models")
    # a user's `pip install` byte-compiles the package; an editable checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would otherwise recompile ~130 modules (~0.1 s) every run
    import tnnquant
    compileall.compile_dir(Path(tnnquant.__file__).parent, quiet=1)
    print(f"{'model':<12} {'combo':<6} {'tnnquant':>9} {'ort':>7} {'TNN':>8} {'speed-up':>9} "
          f"{'target':>6} {'RSS MB':>7} {'TNN MB':>7}" + (f" {'loaded':>8} {'x quiet':>8}"
                                                          if opts.load else ""))
    with tempfile.TemporaryDirectory() as tmp:
        for model in opts.models.split(","):
            base = opts.shared_models / model
            tnn = tnn_timings(base)
            calib = calib_folder(base, opts.samples, tmp)
            onnx = base / f"{model}.onnx"
            for combo in opts.combos.split(","):
                cmd = [sys.executable, "-c", "import sys; from tnnquant.cli import "
                       "quantization_cmd_main as m; sys.exit(m())",
                       "-p", str(base / f"{model}.tnnproto"), "-m", str(base / f"{model}.tnnmodel"),
                       "-i", str(calib), "-q", "--no-report", *COMBOS[combo],
                       *opts.extra.split()]
                wall, rss = measure(cmd, tmp, opts.repeat)
                ort = "-"
                if onnx.exists():
                    ort_cmd = [sys.executable, "-c", ORT_SCRIPT, str(onnx), str(calib),
                               str(PASSES[combo])]
                    ort = f"{measure(ort_cmd, tmp, opts.repeat)[0]:.2f}"
                tnn_wall, tnn_rss = tnn[combo]
                row = (f"{model:<12} {combo:<6} {wall:>8.2f}s {ort:>7} {tnn_wall:>7.1f}s "
                       f"{tnn_wall / wall:>8.1f}x {TARGET[combo]:>5}x {rss:>7.0f} {tnn_rss:>7.0f}")
                if opts.load:
                    with busy_core():
                        loaded, _ = measure(cmd, tmp, opts.repeat)
                    row += f" {loaded:>7.2f}s {loaded / wall:>7.2f}x"
                print(row, flush=True)
    print("tnnquant: best wall of the runs (start-up included), peak RSS of the largest; "
          "ort: onnxruntime alone running the calibration's float passes (2 threads); "
          "TNN: timings.tsv; speed-up: TNN / tnnquant")


if __name__ == "__main__":
    main()
