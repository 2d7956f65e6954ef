"""The layer index (which module registers each type string and enum) against the modules."""
from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import tnnquant.layers
from tnnquant.layers import LAYERS, LAYERS_BY_ENUM
from tnnquant.layers._index import ENUM_MODULES, TYPE_MODULES


def test_index_lists_every_type_string_and_enum_of_every_layer_module():
    for module in pkgutil.iter_modules(tnnquant.layers.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"tnnquant.layers.{module.name}")
    types = {name: cls.__module__.rsplit(".", 1)[1] for name, cls in LAYERS._items.items()}
    enums = {enum: cls.__module__.rsplit(".", 1)[1] for enum, cls in LAYERS_BY_ENUM.items()}
    assert TYPE_MODULES == types, f"tnnquant/layers/_index.py is stale; TYPE_MODULES = {types}"
    assert ENUM_MODULES == enums, f"tnnquant/layers/_index.py is stale; ENUM_MODULES = {enums}"


def test_reading_a_model_imports_only_its_layer_modules():
    code = """
import sys
import tnnquant
from tnnquant.testing import GraphBuilder
b = GraphBuilder(0)
x = b.input("data", (1, 3, 8, 8))
b.build(b.layer("Sigmoid", b.layer("Abs", x)))
loaded = sorted(m for m in sys.modules if m.startswith("tnnquant.layers.")
                and not m.split(".")[-1].startswith("_"))
print(" ".join(loaded))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert "tnnquant.layers.abs" in out and "tnnquant.layers.sigmoid" in out
    assert "tnnquant.layers.lrn" not in out and len(out) < len(set(TYPE_MODULES.values())) / 2


def test_listing_the_registry_loads_every_type():
    assert set(LAYERS) == set(TYPE_MODULES)
    assert LAYERS.get("ReLU6").enum in LAYERS_BY_ENUM
