"""Executors: the layer-by-layer runner (executor.py) and TNN's integer numerics (int8_math.py)."""
