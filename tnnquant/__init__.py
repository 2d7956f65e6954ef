"""tnnquant: post-training int8 quantization for Tencent TNN models."""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# the public names, loaded on first use: ``import tnnquant.cli`` then pulls in only what the
# command needs (a quantization_cmd run is a few hundred milliseconds, imports included)
_EXPORTS = {
    "BlobScale": ".ir.graph", "Graph": ".ir.graph", "InputSpec": ".ir.graph", "Layer": ".ir.graph",
    "TnnQuantError": ".errors", "dequantize": ".api", "run": ".api", "simulate": ".api",
    "convert_onnx": ".convert",
    "load_model": ".formats.io", "load_proto": ".formats.io", "save_model": ".formats.io",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    else:   # a subpackage used as an attribute (``tnnquant.api.run``) is imported on demand
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":   # a dependency of the module is missing
                raise
            raise AttributeError(f"module 'tnnquant' has no attribute '{name}'") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
