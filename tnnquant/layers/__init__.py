"""One module per TNN layer type; importing this package registers them all in ``LAYERS``."""
from __future__ import annotations

import importlib
import pkgutil

from .base import LAYERS, LAYERS_BY_ENUM, LayerType, NoParams, Params, register, resolve_type

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_") and _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["LAYERS", "LAYERS_BY_ENUM", "LayerType", "NoParams", "Params", "register",
           "resolve_type"]
