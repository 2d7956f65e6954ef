"""Blob-scale methods (spec int8 §6): pure ``fn(BlobStats) -> (scale, zero_point)``,
registered by name in ``ACT_METHODS`` with TNN's ``-b`` code and the statistics they need.

    method = ACT_METHODS.get("kl")          # or ACT_METHODS.get(ACT_METHOD_CODES[2])
    method.needs                            # frozenset({"range", "histogram"})
    scale, zero_point = method(stats)       # float32 (slots,), int8 (slots,)

Which method a blob really uses is decided by ``effective_method`` (spec int8 §4).
"""
from __future__ import annotations

from typing import Sequence

# registration, in TNN code order (0, 2, 3, 4/5)
from . import minmax  # noqa: F401,I001
from . import kl  # noqa: F401
from . import asymmetric  # noqa: F401
from . import aciq  # noqa: F401
# tnnquant's own clipping searches (no TNN code)
from . import mse  # noqa: F401
from . import percentile  # noqa: F401
from .base import ACT_METHODS, ActMethod, act_method, check_code, threshold_scale
from .kl import kl_divergences, kl_thresholds

#: TNN ``-b`` code -> method name (1 is ADMM, a weight method: TNN rejects it for blobs)
ACT_METHOD_CODES: dict[int, str] = {m.code: name for name, m in ACT_METHODS.items()
                                    if m.code is not None}

MIN_FEATURE_AREA = 100  # H·W below this falls back to MIN_MAX except for ASY_MIN_MAX (spec §4)


def act_method_by_code(code: int) -> ActMethod:
    """The method of TNN's ``-b code`` (ConfigError listing the known codes otherwise)."""
    check_code(code)
    return ACT_METHODS.get(ACT_METHOD_CODES[code])


def effective_method(method: str, dims: Sequence[int], is_network_input: bool) -> str:
    """The method TNN really uses for a blob (spec int8 §4).

    ``H·W < 100`` (H = dims[2], W = dims[3], missing dims count as 1) turns every method
    but ``asy_minmax`` into ``minmax``; network inputs always use ``minmax`` (so they have
    zero point 0). tnnquant's own methods (no TNN code) are used as asked. Per-tensor forcing for InnerProduct blobs is the caller's (merge, not
    method).
    """
    if ACT_METHODS.get(method).code is None:   # TNN's fallbacks are for TNN's methods
        return method
    h = dims[2] if len(dims) > 2 else 1
    w = dims[3] if len(dims) > 3 else 1
    if h * w < MIN_FEATURE_AREA and method != "asy_minmax":
        method = "minmax"
    if is_network_input:
        method = "minmax"
    return method


__all__ = ["ACT_METHODS", "ACT_METHOD_CODES", "ActMethod", "act_method", "act_method_by_code",
           "effective_method", "kl_divergences", "kl_thresholds", "threshold_scale"]
