"""Weight methods (spec int8 §8.3–8.5), registered in ``WEIGHT_METHODS`` by name with TNN's
``-w`` code:

    q, scale, zero_point = WEIGHT_METHODS.get("admm")(w)   # w: (O, K) folded float32
"""
from __future__ import annotations

# registration, in TNN code order (0, 1, 3)
from . import minmax  # noqa: F401,I001
from . import admm  # noqa: F401
from . import asymmetric  # noqa: F401
from . import mse  # noqa: F401  (tnnquant's clipping search, no TNN code)
from .base import WEIGHT_METHODS, WeightMethod, WeightRangeError, check_code, weight_method

#: TNN ``-w`` code -> method name (2, 4, 5 are blob-only methods: TNN aborts)
WEIGHT_METHOD_CODES: dict[int, str] = {m.code: name for name, m in WEIGHT_METHODS.items()
                                       if m.code is not None}


def weight_method_by_code(code: int) -> WeightMethod:
    """The method of TNN's ``-w code`` (ConfigError listing the known codes otherwise)."""
    check_code(code)
    return WEIGHT_METHODS.get(WEIGHT_METHOD_CODES[code])


__all__ = ["WEIGHT_METHODS", "WEIGHT_METHOD_CODES", "WeightMethod", "WeightRangeError",
           "weight_method", "weight_method_by_code"]
