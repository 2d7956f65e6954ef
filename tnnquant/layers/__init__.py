"""One module per TNN layer type. A module registers its type in ``LAYERS`` when imported;
``LAYERS`` imports a type's module the first time the type is asked for (``_index.py``)."""
from __future__ import annotations

from .base import (LAYERS, LAYERS_BY_ENUM, LayerType, NoParams, Params, load_all_layers, register,
                   resolve_type)

__all__ = ["LAYERS", "LAYERS_BY_ENUM", "LayerType", "NoParams", "Params", "load_all_layers",
           "register", "resolve_type"]
