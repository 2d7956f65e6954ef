"""The ONNX op -> TNN layer mapping registry and the context every mapping receives.

A mapping is ``fn(node, ctx) -> None`` registered with ``@ONNX_OPS.register("Conv", ...)``; it
calls ``ctx.emit(...)`` once per TNN layer it writes, or ``ctx.fail(node, why)`` when ONNX's
semantics cannot be expressed in TNN's layers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ...errors import FormatError, TnnQuantError, UnsupportedError
from ...formats.rawbuffer import RawBuffer
from ...ir.graph import Layer
from ...layers.base import Params
from ...registry import Registry
from .model import Node, OnnxGraph

Mapping = Callable[[Node, "Context"], None]
ONNX_OPS: Registry[Mapping] = Registry("ONNX op")


class ConvertError(UnsupportedError):
    """A node tnnquant cannot convert to TNN layers without changing what the model computes."""


@dataclass
class Context:
    graph: OnnxGraph
    layers: list[Layer] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)
    constants: dict[str, RawBuffer] = field(default_factory=dict)   # the model's constant map

    @property
    def opset(self) -> int:
        return self.graph.opset

    # --- lookups ---------------------------------------------------------------------------

    def const(self, name: str) -> np.ndarray | None:
        return self.graph.consts.get(name) if name else None

    def shape(self, name: str) -> tuple[int, ...] | None:
        return self.graph.shapes.get(name)

    def rank(self, node: Node, index: int = 0) -> int:
        shape = self.shape(node.inputs[index])
        if shape is None:
            raise self.fail(node, f"the rank of input '{node.inputs[index]}' is unknown "
                                  f"(ONNX shape inference could not find it)")
        return len(shape)

    def input_or_attr(self, node: Node, index: int, attr: str, default: Any = None) -> Any:
        """An operand ONNX moved from an attribute to a constant input in some opset (Clip,
        Slice, Split, Squeeze, Pad, Resize, ...): the input when present, else the attribute."""
        if index < len(node.inputs) and node.inputs[index]:
            value = self.const(node.inputs[index])
            if value is None:
                raise self.fail(node, f"input {index} ('{node.inputs[index]}', {attr}) must be "
                                      f"a constant; TNN layers take it as a parameter")
            return value
        return node.attrs.get(attr, default)

    def weight(self, node: Node, index: int, what: str) -> np.ndarray:
        value = self.const(node.inputs[index]) if index < len(node.inputs) else None
        if value is None:
            raise self.fail(node, f"the {what} (input {index}) must be a constant initializer")
        return value

    def axis(self, node: Node, axis: int, rank: int | None = None) -> int:
        """A possibly negative axis, made non-negative."""
        rank = self.rank(node) if rank is None else rank
        if not -rank <= axis < rank:
            raise self.fail(node, f"axis {axis} is out of range for a {rank}-d input")
        return axis + rank if axis < 0 else axis

    # --- output ----------------------------------------------------------------------------

    def emit(self, node: Node, type_: str, params: Params, *, inputs: Sequence[str] | None = None,
             outputs: Sequence[str] | None = None, resource: Any = None,
             name: str | None = None) -> Layer:
        layer = Layer(type=type_, name=name or node.name,
                      inputs=list(node.inputs[:1] if inputs is None else inputs),
                      outputs=list(node.outputs if outputs is None else outputs), params=params)
        self.layers.append(layer)
        if resource is not None:
            self.resources[layer.name] = resource
        return layer

    def constant_input(self, node: Node, index: int, what: str) -> str:
        """A constant operand that a TNN layer takes as an input blob (LayerNorm's scale and
        bias): stored in the model's constant map under its ONNX name, with its ONNX dims."""
        name = node.inputs[index] if index < len(node.inputs) else ""
        self.constants[name] = buffer(self.weight(node, index, what))
        return name

    def fail(self, node: Node, message: str) -> TnnQuantError:
        return ConvertError(f"node '{node.name}' ({node.op}, opset {self.opset}): {message}",
                            path=self.graph.path)


def buffer(array: np.ndarray, dims: Sequence[int] | None = None) -> RawBuffer:
    """A float32 weight with TNN's stored dims (the ONNX tensor's dims unless given)."""
    array = np.asarray(array, dtype=np.float32)
    return RawBuffer.of(array, dims=tuple(array.shape) if dims is None else tuple(dims))


def ints(values: Any) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


def malformed(node: Node, opset: int, path: str, err: Exception) -> FormatError:
    return FormatError(f"node '{node.name}' ({node.op}, opset {opset}): malformed: {err}",
                       path=path)
