"""Typed, validated quantization options (TNN's -b/-w/-t/-c and tnnquant's own)."""
from __future__ import annotations

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
    """What ``tnnquant.quantize`` does; the defaults are TNN's (``-b 0 -w 0 -t 0``)."""

    blob_method: str = "minmax"         # ACT_METHODS name (TNN -b)
    weight_method: str = "minmax"       # WEIGHT_METHODS name (TNN -w)
    merge_type: int = 0                 # TNN -t (see MERGE_TYPES); -c means 1
    preprocess: Preprocess = field(default_factory=Preprocess)
    exclude: tuple[str, ...] = ()       # layers kept in float (beyond TNN)
    fold_merged_scales: bool = False    # fix TNN's stale-scale weight folding (spec int8 §9)
    batch_size: int = 8
    # fp32 kernels of the calibration forward: "fast" (BLAS; blob scales within ~1e-6 of TNN's)
    # or "naive" (TNN's NAIVE CPU arithmetic bit for bit, spec int8 §14: TNN's files byte for
    # byte, several times slower)
    fp32: str = "fast"
    hist_memory_mb: int = 32            # histograms alive at once; more need extra float passes

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
        return cls(blob_method=ACT_METHOD_CODES[blob_method],
                   weight_method=WEIGHT_METHOD_CODES[weight_method], merge_type=merge_type, **rest)

    @property
    def per_tensor_blobs(self) -> bool:
        return self.merge_type >= 1

    @property
    def per_tensor_weights(self) -> bool:
        return self.merge_type == 2

    @property
    def asymmetric(self) -> bool:
        return "asy_minmax" in (self.blob_method, self.weight_method)
