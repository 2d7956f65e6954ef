"""Converters from other model formats to tnnquant's TNN graph.

``convert_onnx`` imports onnx lazily: importing tnnquant does not pay for it.
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

from ..ir.graph import Graph


def convert_onnx(path: str | os.PathLike, input_shapes: Mapping[str, Sequence[int]] | None = None,
                 half: bool = False) -> Graph:
    """Convert an ONNX model file to a TNN Graph the way TNN's onnx2tnn does (see
    ``tnnquant.convert.onnx``). ``input_shapes`` fixes dynamic input dims by input name;
    ``half`` stores the weights as fp16 (onnx2tnn ``-half``)."""
    from .onnx import convert_file
    return convert_file(path, input_shapes, half)
