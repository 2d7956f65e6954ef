"""Typed, validated quantization options (TNN's -b/-w/-t/-c and tnnquant's own).

Two presets: ``"default"`` (``QuantConfig()``), the most accurate recipe tnnquant has, and
``"tnn"`` (``QuantConfig.tnn()``, what ``quantization_cmd`` and ``from_tnn`` build): TNN's
recipe, every technique beyond TNN switched off.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .calib.inputs import Preprocess
from .calib.methods import ACT_METHOD_CODES, ACT_METHODS
from .errors import ConfigError
from .exec.executor import FP32_KERNELS
from .weights import WEIGHT_METHOD_CODES, WEIGHT_METHODS

MERGE_TYPES = {0: "per-channel blobs and weights", 1: "per-tensor blobs, per-channel weights",
               2: "per-tensor blobs and weights"}


@dataclass(frozen=True)
class QuantConfig:
    """What ``tnnquant.quantize`` does. The defaults are tnnquant's most accurate recipe;
    ``QuantConfig.tnn()`` / ``from_tnn`` give TNN's (``-b 0 -w 0 -t 0``)."""

    blob_method: str = "mse"            # ACT_METHODS name (TNN -b)
    weight_method: str = "mse"          # WEIGHT_METHODS name (TNN -w)
    merge_type: int = 0                 # TNN -t (see MERGE_TYPES); -c means 1
    preprocess: Preprocess = field(default_factory=Preprocess)
    exclude: tuple[str, ...] = ()       # layers kept in float (beyond TNN)
    fold_merged_scales: bool = True     # fix TNN's stale-scale weight folding (spec int8 §9)
    # --- the accuracy recipe, beyond TNN (each a step of the recipe; all off in TNN's) ---
    # keep Swish / Sigmoid+Mul float instead of fusing them into convs as activation 256,
    # which TNN's int8 convolution ignores (spec int8 §2, §12.3)
    swish_in_float: bool = True
    # per blob, clipping and per-channel/per-tensor scales chosen among candidates by the
    # measured output error of the layers reading it (passes/scale_search.py)
    scale_search: bool = True
    learned_rounding: bool = True       # int8 codes rounded for the layer output (GPTQ-style)
    round_bias: bool = True             # int32 biases rounded, not truncated (TNN: trunc)
    # post-ReLU blobs read only by unpadded convs: codes -128..127 with the zero point folded
    # into the int32 biases around them (passes/zero_points.py)
    fold_zero_points: bool = True
    # opt-in: the same for blobs float layers write and only such convs read (HardSwish,
    # PReLU, pooling outputs): a float Add before TNN's Reformat shifts their codes over their
    # range. Not in the default recipe: it helps PP-LCNet and YOLOv8n and hurts PP-OCRv4
    # detection and recognition and MTCNN O-Net's worst photo (README)
    offset_float_blobs: bool = False
    bias_correction: bool = True        # expected output error folded into int32 biases
    # a Concat whose output leaves int8 copies its inputs' codes, each input keeping its own
    # scale, instead of requantizing them all to one (passes/concat_scales.py)
    split_concat_scales: bool = True
    # the data-fitted steps (MSE clipping, scale search, learned rounding) dropped when the
    # recipe without them does better, held out, than with them on the calibration samples
    fallback_check: bool = True
    # mixed precision: keep the fewest layers float until the simulated output cosine on the
    # calibration set reaches this (None: every layer TNN would quantize stays int8)
    target_cos: float | None = None
    batch_size: int = 8
    # fp32 kernels of the calibration forward: "fast" (BLAS; blob scales within ~1e-6 of TNN's)
    # or "naive" (TNN's NAIVE CPU arithmetic bit for bit, spec int8 §14: TNN's files byte for
    # byte, several times slower)
    fp32: str = "fast"
    # histograms alive at once; more need extra float passes (one per group). The default
    # recipe's later passes hold far more (YOLOv8n ~1 GB), so 256 MB costs it no peak; TNN's
    # recipe keeps 32 MB, quantization_cmd's memory being measured against TNN's tool
    hist_memory_mb: int = 256

    def __post_init__(self) -> None:
        ACT_METHODS.get(self.blob_method)
        WEIGHT_METHODS.get(self.weight_method)
        if self.merge_type not in MERGE_TYPES:
            raise ConfigError(f"merge type must be 0, 1 or 2, got {self.merge_type}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if self.hist_memory_mb < 1:
            raise ConfigError(f"histogram memory must be at least 1 MB, got {self.hist_memory_mb}")
        if self.fp32 not in FP32_KERNELS:
            raise ConfigError(f"unknown fp32 kernels '{self.fp32}' (known: "
                              f"{', '.join(FP32_KERNELS)})")
        if self.target_cos is not None and not 0 < self.target_cos <= 1:
            raise ConfigError(f"target cosine must be in (0, 1], got {self.target_cos}")

    @classmethod
    def tnn(cls, **rest) -> "QuantConfig":
        """TNN's recipe (``quantization_cmd``'s defaults): every technique beyond TNN off."""
        return cls(**{**TNN_RECIPE, **rest})

    @classmethod
    def from_tnn(cls, blob_method: int = 0, weight_method: int = 0, merge_type: int = 0,
                 merge_channel: bool = False, **rest) -> "QuantConfig":
        """Build from TNN's numeric options; unknown codes are a ConfigError (TNN silently
        misbehaves on some of them)."""
        if blob_method == 1:
            raise ConfigError("-b 1: ADMM is a weight method (use -w 1); blob methods: " +
                              ", ".join(f"{c} {n}" for c, n in sorted(ACT_METHOD_CODES.items())))
        if blob_method not in ACT_METHOD_CODES:
            raise ConfigError(f"-b {blob_method}: unknown blob method (known: " + ", ".join(
                f"{c} {n}" for c, n in sorted(ACT_METHOD_CODES.items())) + ")")
        if weight_method not in WEIGHT_METHOD_CODES:
            raise ConfigError(f"-w {weight_method}: unknown weight method (known: " + ", ".join(
                f"{c} {n}" for c, n in sorted(WEIGHT_METHOD_CODES.items())) + ")")
        if merge_type not in MERGE_TYPES:
            raise ConfigError(f"-t {merge_type}: merge type must be 0, 1 or 2")
        if merge_channel and merge_type == 0:
            merge_type = 1
        return cls.tnn(blob_method=ACT_METHOD_CODES[blob_method],
                       weight_method=WEIGHT_METHOD_CODES[weight_method], merge_type=merge_type,
                       **rest)

    @property
    def per_tensor_blobs(self) -> bool:
        return self.merge_type >= 1

    @property
    def per_tensor_weights(self) -> bool:
        return self.merge_type == 2

    @property
    def asymmetric(self) -> bool:
        return "asy_minmax" in (self.blob_method, self.weight_method)


#: the fields TNN's recipe sets (QuantConfig.tnn)
TNN_RECIPE = dict(blob_method="minmax", weight_method="minmax", fold_merged_scales=False,
                  swish_in_float=False, scale_search=False, learned_rounding=False,
                  round_bias=False, fold_zero_points=False, offset_float_blobs=False,
                  bias_correction=False, split_concat_scales=False, fallback_check=False,
                  hist_memory_mb=32)

PRESETS = ("default", "tnn")

#: the techniques of the default recipe, each with the value that switches it off
TECHNIQUES: dict[str, dict] = {
    "mse-clipping": dict(blob_method="minmax"),
    "weight-clipping": dict(weight_method="minmax"),
    "fixed-folding": dict(fold_merged_scales=False),
    "swish-in-float": dict(swish_in_float=False),
    "scale-search": dict(scale_search=False),
    "learned-rounding": dict(learned_rounding=False),
    "round-bias": dict(round_bias=False),
    "zero-point-folding": dict(fold_zero_points=False),
    "bias-correction": dict(bias_correction=False),
    "concat-scales": dict(split_concat_scales=False),
    "fallback-check": dict(fallback_check=False),
}


#: techniques beyond the default recipe, each with the value that switches it on
OPTIONS: dict[str, dict] = {
    "float-blob-offsets": dict(offset_float_blobs=True),
}


def preset(name: str, **rest) -> QuantConfig:
    """``QuantConfig`` of a named preset (``"default"`` or ``"tnn"``) with ``rest`` changed."""
    if name == "default":
        return QuantConfig(**rest)
    if name == "tnn":
        return QuantConfig.tnn(**rest)
    raise ConfigError(f"unknown preset '{name}' (known: {', '.join(PRESETS)})")


def ablations(config: QuantConfig) -> dict[str, QuantConfig]:
    """``"no <technique>"`` -> ``config`` with that one technique switched off, for every
    technique ``config`` uses."""
    out = {}
    for name, off in TECHNIQUES.items():
        if any(getattr(config, k) != v for k, v in off.items()):
            out[f"no {name}"] = dataclasses.replace(config, **off)
    return out
