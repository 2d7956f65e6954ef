"""Int32 bias of quantized convolutions and inner products (spec int8 §8.1)."""
from __future__ import annotations

import numpy as np

INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1


def quantize_bias(bias: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``bq[o] = trunc(f32(b[o] / S[o]))`` (truncation, not rounding), 0 where ``S[o] == 0``.

    ``scale`` is the final weight scale (input scale already included, depthwise multiply
    done); a length-1 scale (merged weights) applies to every output. A quotient outside
    int32 is undefined behaviour in TNN; here it saturates (NaN -> 0).
    """
    b = np.asarray(bias, np.float32)
    s = np.broadcast_to(np.asarray(scale, np.float32), b.shape)
    q = np.zeros(b.shape, np.float32)
    with np.errstate(over="ignore"):
        np.divide(b, s, out=q, where=s != 0)
    q = np.nan_to_num(np.trunc(q), nan=0.0).astype(np.float64)
    return np.clip(q, INT32_MIN, INT32_MAX).astype(np.int32)
