"""Accuracy of the int8 models against fp32 on held-out photos: TNN's recipes, tnnquant's default
recipe, and the default with each technique switched off in turn.

Every model is calibrated on its 14 ``../shared/models/NAME/calib/*.npy`` tensors and evaluated on
the 20 photos of ``../shared/data/imagenet20`` (never calibrated on), preprocessed as the calib
tensors were (Pillow bilinear resize to the input size, ``(x - mean) * scale``, MTCNN's NHWC
layout; checked against ``../shared/models/NAME/inputs/*.npy`` before anything runs). The int8
model runs in the bit-exact simulator of TNN's x86 int8 runtime.

Per row, two cosines to fp32 (the float64 cosine of the flattened output tensors):

* ``mean cos`` / ``min cos`` (the targets' metric, the strict one): one cosine per photo and per
  output, then the mean and the min over all of them (a model with 3 outputs and 20 photos has
  60 cosines). For multi-output models the brackets give the same per output.
* ``cos over all photos``: one cosine per output over the 20 photos stacked, as
  ``tnnquant compare`` prints it (large outputs dominate it; a photo whose small output is off
  counts little), one number per output for multi-output models.

then top-1 agreement with fp32 and top-1 accuracy against ``labels.txt`` (ImageNet classifier
only), quantize time. For YOLOv8n a line under each row scores its class probabilities on their
own (``detections``): the output's box coordinates carry almost all of its norm, so its cosine
stays high when every class probability is lost.

    python benchmarks/accuracy.py [--models mobilenetv2,pplcnet,yolov8n,mtcnn_onet]
                                  [--rows tnn,default,ablation] [--shared ../shared]
                                  [--notes]

``--notes`` prints what each recipe decided (the quantize result's notes) after its row.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

import tnnquant
from tnnquant.api import run as run_float
from tnnquant.config import OPTIONS, QuantConfig, ablations, preset
from tnnquant.quantize import quantize

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_SCALE = (0.0171247538, 0.0175070028, 0.0174291939)


@dataclass(frozen=True)
class ModelSpec:
    """How a shared model's calib/input tensors were made (../shared/models/README.md)."""

    name: str
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    nhwc: bool = False          # TNN sees (1, H, W, C) as its NCHW dims
    imagenet_labels: bool = False   # top-1 accuracy against labels.txt makes sense
    # a YOLO-style output (N, boxes + classes, anchors): its class scores are also scored on
    # their own (``detections``), the box coordinates carrying almost all of the output's norm
    boxes: int | None = None


MODELS = {
    "mobilenetv2": ModelSpec("mobilenetv2", IMAGENET_MEAN, IMAGENET_SCALE, imagenet_labels=True),
    "pplcnet": ModelSpec("pplcnet", IMAGENET_MEAN, IMAGENET_SCALE),
    "yolov8n": ModelSpec("yolov8n", (0.0, 0.0, 0.0), (1 / 255,) * 3, boxes=4),
    "mtcnn_onet": ModelSpec("mtcnn_onet", (127.5,) * 3, (0.0078125,) * 3, nhwc=True),
}
TNN_RECIPES = {"b0w0": (0, 0, 0), "b2w1": (2, 1, 0), "b2w0t1": (2, 0, 1)}


def preprocess(path: Path, spec: ModelSpec, dims: tuple[int, ...]) -> np.ndarray:
    """One photo as the model's calib tensors were made: (1, *dims[1:]) float32."""
    h, w = (dims[1], dims[2]) if spec.nhwc else (dims[2], dims[3])
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB").resize((w, h), Image.BILINEAR), np.float32)
    x = (rgb - np.float32(spec.mean)) * np.float32(spec.scale)    # (h, w, 3)
    return (x if spec.nhwc else x.transpose(2, 0, 1))[None].astype(np.float32)


def load_photos(data: Path, spec: ModelSpec, dims: tuple[int, ...], model_dir: Path
                ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(names, (20, ...) inputs, labels); checks the preprocessing against inputs/*.npy."""
    labels = dict(line.split() for line in (data / "labels.txt").read_text().splitlines()
                  if line.strip())
    names = sorted(labels)
    xs = np.concatenate([preprocess(data / n, spec, dims) for n in names])
    for ref in sorted((model_dir / "inputs").glob("*.npy")):
        got = xs[names.index(ref.stem + ".jpg")]
        want = np.load(ref).reshape(got.shape)
        err = float(np.abs(got - want).max())
        if err > 1e-5:
            raise SystemExit(f"{spec.name}: preprocessing of {ref.stem} differs from "
                             f"{ref} by {err:g}")
    return names, xs, np.array([int(labels[n]) for n in names])


def cosines(ref: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Per-sample cosine of two (N, ...) arrays: 1 where both are all zeros, 0 where only one
    is (an int8 output that lost everything)."""
    r = ref.reshape(len(ref), -1).astype(np.float64)
    t = test.reshape(len(test), -1).astype(np.float64)
    nr, nt = np.linalg.norm(r, axis=1), np.linalg.norm(t, axis=1)
    den = nr * nt
    return np.where(den > 0, (r * t).sum(1) / np.where(den > 0, den, 1),
                    (nr == 0) & (nt == 0))


def stacked_cosine(ref: np.ndarray, test: np.ndarray) -> float:
    """One cosine of two arrays over all their samples (``tnnquant compare``'s)."""
    return float(cosines(ref.reshape(1, -1), test.reshape(1, -1))[0])


@dataclass
class Row:
    model: str
    recipe: str
    photo_cos: np.ndarray       # (outputs, photos): cosine per photo and output
    all_photos_cos: list[float]   # per output, one cosine over all photos
    agree: int | None
    top1_float: int | None
    top1_int8: int | None
    n: int
    seconds: float

    def line(self) -> str:
        def per_output(values) -> str:
            return "" if len(values) == 1 else " (" + " / ".join(f"{v:.4f}" for v in values) + ")"
        cos = self.photo_cos
        agree = f"{self.agree}/{self.n}" if self.agree is not None else "-"
        acc = (f"{self.top1_float}/{self.n} -> {self.top1_int8}/{self.n}"
               if self.top1_int8 is not None else "-")
        return (f"| {self.model} | {self.recipe} | {cos.mean():.4f}{per_output(cos.mean(1))} | "
                f"{cos.min():.4f}{per_output(cos.min(1))} | "
                f"{' / '.join(f'{c:.4f}' for c in self.all_photos_cos)} | "
                f"{agree} | {acc} | {self.seconds:.1f} s |")


def evaluate(graph, qgraph, xs: np.ndarray, labels: np.ndarray, spec: ModelSpec
             ) -> tuple[np.ndarray, list[float], int | None, int | None, int | None,
                        str | None]:
    ref = run_float(graph, xs)
    test = tnnquant.simulate(qgraph, xs)
    cos = np.stack([cosines(ref[k], test[k]) for k in graph.outputs])     # (outputs, N)
    all_photos = [stacked_cosine(ref[k], test[k]) for k in graph.outputs]
    detected = (detections(ref[graph.outputs[0]], test[graph.outputs[0]], spec.boxes)
                if spec.boxes else None)
    agree = top1_f = top1_q = None
    if len(ref) == 1:
        r, t = (v.reshape(len(xs), -1) for v in (next(iter(ref.values())),
                                                 next(iter(test.values()))))
        if r.shape[1] <= 1000:      # a classifier's scores
            agree = int((r.argmax(1) == t.argmax(1)).sum())
            if spec.imagenet_labels:
                top1_f = int((r.argmax(1) == labels).sum())
                top1_q = int((t.argmax(1) == labels).sum())
    return cos, all_photos, agree, top1_f, top1_q, detected


DETECTION_SCORE = 0.25   # ultralytics' default confidence threshold


def detections(ref: np.ndarray, test: np.ndarray, boxes: int) -> str:
    """The class scores of a YOLO-style output (N, boxes + classes, anchors): per photo with a
    float detection (an anchor scoring >= DETECTION_SCORE), the cosine of the class scores;
    over all photos, the anchors scoring >= DETECTION_SCORE in fp32 and in int8, and the mean
    absolute error of the int8 score at the fp32 detections."""
    r, t = ref[:, boxes:].astype(np.float64), test[:, boxes:].astype(np.float64)
    found = r.max(axis=(1, 2)) >= DETECTION_SCORE
    cos = cosines(r[found], t[found]) if found.any() else np.array([np.nan])
    hit, hit_int8 = r >= DETECTION_SCORE, t >= DETECTION_SCORE
    error = np.abs(t[hit] - r[hit]).mean() if hit.any() else np.nan
    return (f"class scores on the {int(found.sum())} photos with a detection: cosine mean "
            f"{cos.mean():.4f} min {cos.min():.4f}; anchors scoring >= {DETECTION_SCORE}: "
            f"{int(hit.sum())} fp32, {int(hit_int8.sum())} int8 "
            f"({int((hit & hit_int8).sum())} of them the same); mean |int8 - fp32| "
            f"score there {error:.4f}")


def recipes(kinds: list[str]) -> dict[str, QuantConfig]:
    out: dict[str, QuantConfig] = {}
    if "tnn" in kinds:
        for name, (b, w, t) in TNN_RECIPES.items():
            out[name] = QuantConfig.from_tnn(b, w, t)
    if "default" in kinds:
        out["default"] = preset("default")
    if "ablation" in kinds:
        out.update(ablations(preset("default")))
    if "options" in kinds:
        out.update({f"with {name}": preset("default", **on) for name, on in OPTIONS.items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rows", default="tnn,default,ablation",
                        help="tnn (TNN's three recipes), default, ablation (default minus one "
                             "technique each), options (default plus one technique beyond it "
                             "each)")
    parser.add_argument("--notes", action="store_true",
                        help="print what each recipe decided after its row")
    opts = parser.parse_args()
    shared = Path(opts.shared)
    if not (shared / "models").is_dir():
        raise SystemExit(f"{shared}/models not found: pass --shared")
    configs = recipes(opts.rows.split(","))
    graphs = {}
    for name in opts.models.split(","):
        model_dir = shared / "models" / name
        graphs[name] = tnnquant.load_model(model_dir / f"{name}.tnnproto",
                                           model_dir / f"{name}.tnnmodel")
        if len(graphs[name].outputs) > 1:
            print(f"{name}: per-output values in the order {', '.join(graphs[name].outputs)}")
    print("| model | recipe | mean cos (per photo) | min cos (per photo) | cos over all photos | "
          "top-1 agree | top-1 float -> int8 | quantize |")
    print("|---|---|---|---|---|---|---|---|")
    for name, graph in graphs.items():
        spec = MODELS[name]
        model_dir = shared / "models" / name
        dims = tuple(graph.inputs[0].dims)
        _, xs, labels = load_photos(shared / "data" / "imagenet20", spec, dims, model_dir)
        calib = [np.load(p).reshape(dims[1:]) for p in sorted((model_dir / "calib").glob("*.npy"))]
        for recipe, config in configs.items():
            config = dataclasses.replace(config, batch_size=min(config.batch_size, 8))
            start = time.perf_counter()
            result = quantize(graph, calib, config)
            seconds = time.perf_counter() - start
            cos, all_photos, agree, tf, tq, detected = evaluate(graph, result.graph, xs, labels,
                                                                spec)
            row = Row(name, recipe, cos, all_photos, agree, tf, tq, len(xs), seconds)
            print(row.line(), flush=True)
            if detected:
                print(f"    {detected}", flush=True)
            if opts.notes:
                for note in result.notes:
                    print(f"    {note}", flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
