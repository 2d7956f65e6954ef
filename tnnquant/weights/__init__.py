"""Weight quantization numerics: weight methods (a registry separate from blob methods) and
the int32 bias helper."""
from .bias import quantize_bias
from .methods import WEIGHT_METHOD_CODES, WEIGHT_METHODS, WeightMethod, weight_method_by_code

__all__ = ["WEIGHT_METHODS", "WEIGHT_METHOD_CODES", "WeightMethod", "quantize_bias",
           "weight_method_by_code"]
