"""The fp32 executor's fast backend: the TNN graph exported to an in-memory ONNX model and run
by onnxruntime, every blob the hooks observe an extra graph output.

Each layer type writes its own nodes (``LayerType.to_onnx``, in its layer file) from the
static shapes of its inputs (``infer_types``); the model has a symbolic batch dimension when
the graph's shapes scale with it (and the inputs come with one batch size), else it is built
for the batch sizes at hand. Sessions are built for a set of requested outputs (and batch
sizes, for fixed-batch models) and kept until another set is asked for.

onnxruntime runs with ``session.intra_op.allow_spinning = 0`` (threads that wait sleep rather
than spin, so a busy core delays them instead of being fought for) and as many intra-op
threads as the process may use, at most ``MAX_THREADS``.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from ..errors import TnnQuantError, UnsupportedError
from ..ir.graph import Graph, Layer
from ..layers.base import SHAPE_ERRORS, LayerType, Value
from ..parallel import usable_cpus
from .onnx_model import OnnxGraph, inference_session

MAX_THREADS = 2     # onnxruntime's intra-op threads; more gain little on these small convs
BATCH_DIM = "N"

BlobTypes = dict[str, tuple[tuple[int, ...], np.dtype]]


def infer_types(graph: Graph, order: list[Layer], input_types: BlobTypes,
                constants: Mapping[str, np.ndarray]) -> BlobTypes:
    """Static (shape, dtype) of every blob for the given network input types."""
    types = dict(input_types)
    types.update({name: (c.shape, c.dtype) for name, c in constants.items()})
    for layer in order:
        try:
            outs = layer.kind.output_types(layer.params, graph.resources.get(layer.name),
                                           *(types[b] for b in layer.inputs))
        except SHAPE_ERRORS as err:   # the numpy kernels run the layer and report it
            raise UnsupportedError(f"no static shape: {err}", layer=layer.name,
                                   layer_type=layer.proto_type) from err
        if len(outs) == 1 and len(layer.outputs) > 1:   # one array feeds every output (Split)
            outs = outs * len(layer.outputs)
        if len(outs) != len(layer.outputs):
            raise UnsupportedError(f"{len(outs)} outputs for {len(layer.outputs)} blobs",
                                   layer=layer.name, layer_type=layer.proto_type)
        for name, (shape, dtype) in zip(layer.outputs, outs):
            types[name] = (tuple(int(d) for d in shape), np.dtype(dtype))
    return types


def _batch_uniform(one: BlobTypes, two: BlobTypes, inputs: set[str]) -> bool:
    """Whether every blob either keeps its shape or scales dim 0 with the batch (1 -> 2), so
    that one model with a symbolic batch serves every batch size."""
    for name, (shape1, _) in one.items():
        shape2 = two[name][0]
        if shape2 == shape1 and name not in inputs:
            continue
        if not (shape1 and shape1[0] == 1 and shape2 == (2,) + shape1[1:]):
            return False
    return True


class OrtBackend:
    """Runs a Graph's fp32 layers in onnxruntime (``run(feeds, outputs)``). Raises
    UnsupportedError at construction when a layer has no export or no static shape."""

    def __init__(self, graph: Graph, order: list[Layer], constants: Mapping[str, np.ndarray],
                 threads: int | None = None) -> None:
        for layer in order:
            if not exports(layer.kind):
                raise UnsupportedError(f"no ONNX export for layer type {layer.proto_type}",
                                       layer=layer.name)
        self.graph = graph
        self.order = order
        self.constants = constants
        self.threads = threads or min(MAX_THREADS, usable_cpus())
        n_inputs = len(graph.inputs)
        try:
            one, two = self._types((1,) * n_inputs), self._types((2,) * n_inputs)
            self.symbolic = _batch_uniform(one, two, {s.name for s in graph.inputs})
        except UnsupportedError:
            # an input whose dim 0 is no batch (a weight fed as an input, a second input that
            # broadcasts): models are built per batch size, and must have static shapes for
            # the inputs' own dims
            self._types(tuple(s.dims[0] for s in graph.inputs))
            self.symbolic = False
        self._batched = ({name for name, (shape, _) in one.items() if two[name][0] != shape}
                         if self.symbolic else set())
        self._sessions: dict[tuple, object] = {}
        self._graphs: dict[tuple[int, ...] | None, tuple[OnnxGraph, BlobTypes]] = {}
        if self.symbolic:
            self._graphs[None] = (self._export(one), one)

    def _types(self, batches: tuple[int, ...]) -> BlobTypes:
        inputs = {s.name: ((n,) + tuple(s.dims[1:]), np.dtype(np.float32))
                  for s, n in zip(self.graph.inputs, batches)}
        return infer_types(self.graph, self.order, inputs, self.constants)

    def _export(self, types: BlobTypes) -> OnnxGraph:
        """Every layer's nodes, for blobs of static ``types``."""
        g = OnnxGraph()
        for name, value in self.constants.items():
            g.initializer(name, value)
        for layer in self.order:
            g.prefix = layer.name
            xs = [Value(b, *types[b]) for b in layer.inputs]
            try:
                layer.kind.to_onnx(layer.params, self.graph.resources.get(layer.name), g, xs,
                                   list(layer.outputs))
            except (TnnQuantError, ValueError, IndexError) as err:
                raise UnsupportedError(f"no ONNX export: {err}", layer=layer.name,
                                       layer_type=layer.proto_type) from err
        return g

    def session(self, outputs: tuple[str, ...], batches: tuple[int, ...],
                extremes: tuple[str, ...] = ()):
        """The onnxruntime session computing ``outputs`` (and the ``extremes`` outputs of the
        blobs named there) for inputs of batch sizes ``batches`` (built on first use)."""
        key_batches = None if self.symbolic and len(set(batches)) == 1 else batches
        key = (outputs, extremes, key_batches)
        session = self._sessions.get(key)
        if session is None:
            if key_batches not in self._graphs:
                types = self._types(batches)
                self._graphs[key_batches] = (self._export(types), types)
            # one session at a time: each holds its own copy of the weights and activation
            # memory, and a calibration asks for one set of outputs per pass
            self._sessions.clear()
            session = self._sessions[key] = self._build(outputs, extremes, key_batches)
        return session

    def _build(self, outputs: tuple[str, ...], extremes: tuple[str, ...],
               batches: tuple[int, ...] | None):
        import onnxruntime as ort   # here: start-up of runs that never reach onnxruntime

        g, types = self._graphs[batches]
        dims0 = batches or (BATCH_DIM,) * len(self.graph.inputs)
        inputs = [(s.name, np.float32, (n,) + tuple(s.dims[1:]))
                  for s, n in zip(self.graph.inputs, dims0)]
        outs = [(name, types[name][1], (None,) * len(types[name][0])) for name in outputs]
        if extremes:
            g = g.copy()
            for name in extremes:
                outs += _extremes_nodes(g, name, len(types[name][0]))
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # planning one buffer for all activations from the first run costs ~30 MB on YOLOv8n
        options.enable_mem_pattern = False
        # a calibration pass returns many blobs (or their extremes); the arena keeps the
        # largest blocks of every batch (-b 2 -w 1 peak RSS without it: MobileNetV2 272 -> 253
        # MB, YOLOv8n 277 -> 245 MB, same time), but it speeds the plain forward at batch 8
        options.enable_cpu_mem_arena = not extremes and set(outputs) <= set(self.graph.outputs)
        options.log_severity_level = 3
        return inference_session(g, inputs, outs, options)

    def release(self) -> None:
        """Drop the session (its weights and activation memory); the next run builds one."""
        self._sessions.clear()

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Iterable[str]
            ) -> dict[str, np.ndarray]:
        """The named blobs for network inputs ``feeds`` (float32 NCHW batches)."""
        names = tuple(dict.fromkeys(outputs))
        session = self.session(names, tuple(len(feeds[s.name]) for s in self.graph.inputs))
        return dict(zip(names, session.run(names, dict(feeds))))

    def shape(self, blob: str, batches: Mapping[str, int]) -> tuple[int, ...]:
        """The static shape of a blob for inputs of these batch sizes."""
        key = None if self.symbolic and len(set(batches.values())) == 1 else \
            tuple(batches[s.name] for s in self.graph.inputs)
        if key is None:
            shape = self._graphs[None][1][blob][0]
            return (next(iter(batches.values())),) + shape[1:] if blob in self._batched else shape
        return self._graphs[key][1][blob][0]

    def extremes(self, feeds: Mapping[str, np.ndarray], blobs: Iterable[str]
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per batch item and channel, the min and max of each named blob (float32 (N, C)
        arrays, ``calib.observers.extremes``) computed in the graph: only these small
        arrays leave onnxruntime. NaN may or may not win there: callers check."""
        names = tuple(dict.fromkeys(blobs))
        session = self.session((), tuple(len(feeds[s.name]) for s in self.graph.inputs), names)
        fetch = [f"{b}{suffix}" for b in names for suffix in EXTREMES]
        values = session.run(fetch, dict(feeds))
        out = {}
        for k, name in enumerate(names):
            lo, hi = values[2 * k], values[2 * k + 1]
            out[name] = (lo.reshape(len(lo), -1), hi.reshape(len(hi), -1))
        return out


EXTREMES = ("::min", "::max")   # output name suffixes of a blob's per-channel extremes


def _extremes_nodes(g: OnnxGraph, name: str, ndim: int) -> list[tuple]:
    """ReduceMin/ReduceMax of blob ``name`` over every axis after the channels; returns the
    two graph outputs."""
    lo, hi = (f"{name}{suffix}" for suffix in EXTREMES)
    if ndim <= 2:
        g.node("Identity", [name], lo)
        g.node("Identity", [name], hi)
    else:
        axes = list(range(2, ndim))
        g.node("ReduceMin", [name], lo, axes=axes, keepdims=0)
        g.node("ReduceMax", [name], hi, axes=axes, keepdims=0)
    dims = (None,) * min(ndim, 2)
    return [(lo, np.float32, dims), (hi, np.float32, dims)]


def exports(kind: type[LayerType]) -> bool:
    """Whether a layer type has an ONNX export."""
    return kind.to_onnx.__func__ is not LayerType.to_onnx.__func__
