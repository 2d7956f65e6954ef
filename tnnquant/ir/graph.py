"""The in-memory graph: what a .tnnproto + .tnnmodel pair holds, in TNN's terms."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from ..errors import FormatError
from ..formats.rawbuffer import MAGIC_V2, DataType, RawBuffer
from ..layers.base import LAYERS, LayerType, Params


@dataclass
class InputSpec:
    name: str
    dims: tuple[int, ...]
    data_type: DataType | None = None   # None: not stored (v1 protos); TNN then uses float


@dataclass
class Layer:
    type: str                   # stored type string, without the Quantized prefix
    name: str
    inputs: list[str]
    outputs: list[str]
    params: Params
    quantized: bool = False
    dynamic_range: bool = False
    n_fields: int | None = None  # parameter fields the source line gave; None = all
    line: int | None = None      # line in the source .tnnproto, for error messages

    @property
    def kind(self) -> type[LayerType]:
        return LAYERS.get(self.type)

    @property
    def proto_type(self) -> str:
        """Type string as written in the proto (spec model-format §1.8)."""
        if self.quantized and not self.type.startswith("Quantized"):
            return "Quantized" + self.type
        if self.dynamic_range and not self.type.startswith("DynamicRangeQuantized"):
            return "DynamicRangeQuantized" + self.type
        return self.type

    def replace(self, **changes: Any) -> "Layer":
        return dataclasses.replace(self, **changes)


@dataclass
class BlobScale:
    """Quantization parameters of one blob: ``real = scale * (q - zero_point)`` per channel or
    per tensor (spec int8 §6.6)."""

    scale: np.ndarray                    # float32, 1 or C entries
    zero_point: np.ndarray | None = None  # int8; None in legacy files (read as zeros)
    # int32, never read by TNN's runtime (zeros in TNN's files); tnnquant keeps there the zero
    # point it folded into the int32 biases around the blob (passes/zero_points.py)
    bias: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.scale = np.asarray(self.scale, dtype=np.float32).reshape(-1)
        if self.zero_point is not None:
            self.zero_point = np.asarray(self.zero_point, dtype=np.int8).reshape(-1)
        if self.bias is None:
            self.bias = np.zeros(self.scale.size, np.int32)

    @property
    def zero_points(self) -> np.ndarray:
        return (self.zero_point if self.zero_point is not None
                else np.zeros(self.scale.size, np.int8))

    @property
    def folded_zero_point(self) -> np.ndarray | None:
        """The zero point folded into the biases of the blob's producer and readers, which
        every device applies (``real = scale * (q - folded)``), or None."""
        return self.bias if self.bias.any() else None

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1


@dataclass
class FileFormat:
    """How the source files were laid out, so an unchanged graph is written back identically."""

    proto_magic: int = MAGIC_V2
    model_magic: bool = True           # the .tnnmodel starts with MAGIC_V2
    empty_constant_map: bool = False   # the .tnnmodel ends with an empty constant-map section
    header_words: tuple[str, str] = ("1", "1")  # words 0 and 2 of proto line 1 (unused by TNN)


@dataclass
class Graph:
    inputs: list[InputSpec]
    outputs: list[str]
    layers: list[Layer]
    resources: dict[str, Any] = field(default_factory=dict)       # by layer name
    blob_scales: dict[str, BlobScale] = field(default_factory=dict)  # by blob name
    constants: dict[str, RawBuffer] = field(default_factory=dict)  # constant map, by blob name
    blob_names: list[str] = field(default_factory=list)  # proto line 3, as declared
    format: FileFormat = field(default_factory=FileFormat)
    proto_path: str | None = None
    model_path: str | None = None

    # --- lookups ---------------------------------------------------------------------------

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def producers(self) -> dict[str, Layer]:
        """Blob name -> the first layer (in list order) that outputs it."""
        out: dict[str, Layer] = {}
        for layer in self.layers:
            for b in layer.outputs:
                out.setdefault(b, layer)
        return out

    def consumers(self) -> dict[str, list[Layer]]:
        """Blob name -> layers that read it, in list order."""
        out: dict[str, list[Layer]] = {}
        for layer in self.layers:
            for b in layer.inputs:
                out.setdefault(b, []).append(layer)
        return out

    def referenced_blobs(self) -> set[str]:
        names: set[str] = set()
        for layer in self.layers:
            names.update(layer.inputs)
            names.update(layer.outputs)
        return names

    def topo_order(self) -> list[Layer]:
        """Layers in an order where every input is produced first; stable w.r.t. list order
        (TNN runs layers in list order, so a valid file is returned unchanged)."""
        available = {i.name for i in self.inputs} | set(self.constants)
        pending = list(self.layers)
        order: list[Layer] = []
        while pending:
            rest = []
            for layer in pending:
                if all(b in available for b in layer.inputs):
                    order.append(layer)
                    available.update(layer.outputs)
                else:
                    rest.append(layer)
            if len(rest) == len(pending):
                missing = sorted({b for lay in rest for b in lay.inputs if b not in available})
                lay = rest[0]
                raise FormatError(f"input blob(s) never produced: {', '.join(missing[:5])}",
                                  path=self.proto_path, line=lay.line, layer=lay.name,
                                  layer_type=lay.proto_type)
            pending = rest
        return order

    def check_structure(self) -> None:
        """Raise FormatError for a graph TNN cannot run, whatever its weights: a blob produced
        twice (by two layers, or by a layer and as a network input) or a cycle (a layer that
        needs its own output). Layers reading blobs nothing produces are checked where the
        constant map is known (``formats.tnnmodel``)."""
        producer: dict[str, Layer | None] = {spec.name: None for spec in self.inputs}
        for layer in self.layers:
            for b in layer.outputs:
                if b in producer:
                    first = producer[b]
                    by = ("is a network input" if first is None else
                          f"is already produced by {first.proto_type} '{first.name}'"
                          + (f" (line {first.line})" if first.line else ""))
                    raise FormatError(f"output blob '{b}' {by}", path=self.proto_path,
                                      line=layer.line, layer=layer.name,
                                      layer_type=layer.proto_type)
                producer[b] = layer
        # Kahn's algorithm on the layers; blobs no layer produces are inputs or constants
        waiting = {layer.name: {b for b in layer.inputs if producer.get(b) is not None}
                   for layer in self.layers}
        readers: dict[str, list[Layer]] = {}
        for layer in self.layers:
            for b in waiting[layer.name]:
                readers.setdefault(b, []).append(layer)
        ready = [layer for layer in self.layers if not waiting[layer.name]]
        done = 0
        while ready:
            layer = ready.pop()
            done += 1
            for b in layer.outputs:
                for reader in readers.get(b, ()):
                    waiting[reader.name].discard(b)
                    if not waiting[reader.name]:
                        ready.append(reader)
        if done < len(self.layers):
            stuck = {layer.name for layer in self.layers if waiting[layer.name]}
            first = next(layer for layer in self.layers if layer.name in stuck)
            cycle = self._cycle_from(first, producer, stuck)
            raise FormatError(f"the graph has a cycle: {' -> '.join(cycle)}",
                              path=self.proto_path, line=first.line, layer=first.name,
                              layer_type=first.proto_type)

    @staticmethod
    def _cycle_from(start: Layer, producer: dict[str, "Layer | None"], stuck: set[str]
                    ) -> list[str]:
        """Layer names around a cycle reachable upstream from ``start`` (inputs that wait)."""
        path: list[str] = []
        seen: dict[str, int] = {}
        layer = start
        while layer.name not in seen:
            seen[layer.name] = len(path)
            path.append(layer.name)
            layer = next(producer[b] for b in layer.inputs
                         if producer.get(b) is not None and producer[b].name in stuck)
        cycle = path[seen[layer.name]:]   # upstream order: a <- c <- b
        return [cycle[0], *reversed(cycle[1:]), cycle[0]]   # data-flow order: a -> b -> c -> a

    @property
    def is_quantized(self) -> bool:
        return any(layer.quantized for layer in self.layers)

    def copy(self) -> "Graph":
        """A copy whose lists and dicts can be changed without touching this graph (arrays and
        params are shared: they are treated as immutable)."""
        return dataclasses.replace(
            self, inputs=list(self.inputs), outputs=list(self.outputs),
            layers=[dataclasses.replace(lay, inputs=list(lay.inputs), outputs=list(lay.outputs))
                    for lay in self.layers],
            resources=dict(self.resources), blob_scales=dict(self.blob_scales),
            constants=dict(self.constants), blob_names=list(self.blob_names),
            format=dataclasses.replace(self.format))

    def iter_weights(self) -> Iterable[tuple[str, RawBuffer]]:
        """(owner name, buffer) for every RawBuffer of every layer resource and constant."""
        for name, res in self.resources.items():
            for value in vars(res).values():
                if isinstance(value, RawBuffer):
                    yield name, value
        for name, buf in self.constants.items():
            yield name, buf
