"""Runs a Graph on NCHW numpy batches, layer by layer, with observer hooks.

Blobs are freed after their last consumer, so peak memory is the weights plus the live
activations. Every produced blob is passed to the hooks as ``hook(name, array, layer)``
(network inputs with ``layer=None``); a hook must not modify the array.

``mode="int8"`` simulates TNN's int8 runtime (spec int8 §11-13): the graph is first rewritten as
TNN's runtime does at load (``passes.runtime.runtime_graph``; ``executor.graph`` is the result),
then quantized layers and Reformat layers run their int8 kernels on int8 codes, every other
layer its fp32 kernel. Int8 blobs are int8 arrays; hooks receive them as stored
(``int8_math.dequantize`` with the blob's BlobScale gives the values), and the network
outputs come back dequantized to float32, as TNN returns them (§11.4).

fp32 kernels: ``fp32="fast"`` (the default) runs an fp32 graph in onnxruntime
(``ort_backend``: each layer exported to ONNX nodes, the observed blobs extra outputs) when
every layer exports, else like ``"numpy"``: each layer's numpy/BLAS ``forward``. Both agree
with TNN's fp32 runtime to float rounding. ``fp32="naive"`` runs every fp32 layer with
``forward_naive``: TNN's NAIVE CPU arithmetic bit for bit (spec int8 §14, ``naive_math``), the
blobs TNN's quantization tool calibrates on; slower. Layers without a NAIVE variant of their
own run ``forward`` (``LayerType.forward_naive``).
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping

import numpy as np

from ..errors import ConfigError, InputError, TnnQuantError, UnsupportedError, one_line
from ..formats.rawbuffer import DataType
from ..ir.graph import BlobScale, Graph, Layer
from ..layers.base import SHAPE_ERRORS, Int8Context, LayerType
from . import int8_math
from .ort_backend import OrtBackend

Hook = Callable[[str, np.ndarray, "Layer | None"], None]
# fp32 layers: onnxruntime where the graph exports (else numpy), numpy/BLAS, or TNN's NAIVE
# order bit for bit
FP32_KERNELS = ("fast", "numpy", "naive")
REASON_CHARS = 300   # of ``Executor.numpy_reason``: a summary line, not onnxruntime's whole text


def has_kernel(kind: type[LayerType], method: str = "forward") -> bool:
    return getattr(kind, method).__func__ is not getattr(LayerType, method).__func__


def runs_int8(layer: Layer) -> bool:
    """Whether TNN runs the layer's int8 kernel: quantized layers and Reformats (§11.2-11.3)."""
    return layer.quantized or layer.type == "Reformat"


def int8_blobs(graph: Graph) -> set[str]:
    """Blobs TNN types int8 (spec int8 §11.3): every input and output of a quantized layer and
    the int8 side of each Reformat."""
    names: set[str] = set()
    for layer in graph.layers:
        if layer.quantized:
            names.update(layer.inputs)
            names.update(layer.outputs)
        elif layer.type == "Reformat":
            int8_side = layer.inputs if layer.params.src_type == DataType.INT8 else layer.outputs
            names.update(int8_side)
    return names


class Executor:
    """fp32 or int8 executor over a Graph (``Executor(graph).run(feeds)``,
    ``Executor(qgraph, mode="int8").run(feeds)``)."""

    def __init__(self, graph: Graph, mode: str = "fp32", device: str = "x86",
                 fp32: str = "fast") -> None:
        if mode not in ("fp32", "int8"):
            raise ConfigError(f"unknown executor mode '{mode}' (known: fp32, int8)")
        if fp32 not in FP32_KERNELS:
            raise ConfigError(f"unknown fp32 kernels '{fp32}' (known: {', '.join(FP32_KERNELS)})")
        if device not in int8_math.DEVICES:
            raise ConfigError(f"unknown device '{device}' (known: "
                              f"{', '.join(int8_math.DEVICES)})")
        if mode == "int8":
            from ..passes.runtime import runtime_graph
            graph = runtime_graph(graph)
        self.graph = graph
        self.mode = mode
        self.device = device
        self.fp32 = fp32
        self.order = graph.topo_order()
        self.int8_blobs = int8_blobs(graph) if mode == "int8" else set()
        missing = [lay for lay in self.order
                   if not has_kernel(lay.kind, "forward_int8" if self._int8(lay) else "forward")]
        if missing:
            lay = missing[0]
            raise UnsupportedError(f"layer type {lay.proto_type} has no "
                                   f"{'int8' if self._int8(lay) else 'fp32'} kernel in tnnquant "
                                   f"({len(missing)} such layer(s))", path=graph.proto_path,
                                   line=lay.line, layer=lay.name, layer_type=lay.proto_type)
        self.contexts = {lay.name: self._context(lay) for lay in self.order if self._int8(lay)}
        self.constants = {name: buf.array().astype(np.float32, copy=False)
                          if buf.data.dtype.kind == "f" else buf.array()
                          for name, buf in graph.constants.items()}
        outputs = set(graph.outputs)
        # index of the last layer reading each blob; a blob nobody reads dies where it is made;
        # network outputs and constants are never freed
        self.last_use: dict[str, int] = {}
        for i, layer in enumerate(self.order):
            for b in layer.outputs:
                self.last_use.setdefault(b, i)
            for b in layer.inputs:
                self.last_use[b] = i
        self.free_after: list[list[str]] = [[] for _ in self.order]
        for b, i in self.last_use.items():
            if b not in outputs and b not in self.constants:
                self.free_after[i].append(b)
        self._ort: OrtBackend | None = None
        self._ort_usable = mode == "fp32" and fp32 == "fast"
        # why fast fp32 runs fell back to the numpy kernels (None: they did not)
        self.numpy_reason: str | None = None
        # x86 int8: runs of consecutive layers with an exact onnxruntime form (``ort_kernels``:
        # int8 convolutions, inner products and Reformats, and fp32 layers that compute exactly
        # what their numpy kernel does on inputs the run makes) go through one session;
        # start -> end
        self.chains: dict[int, int] = {}
        # start -> (stamp, (ops, wiring, memo) or None): see ``ort_kernels.run_chain``
        self._chain_plans: dict[int, tuple] = {}
        if mode == "int8" and device == "x86":
            start, made = None, set()
            for i, layer in enumerate([*self.order, None]):
                if layer is not None and start is not None and self._in_chain(layer, made):
                    made.update(layer.outputs)
                    continue
                if start is not None and i - start >= 2:
                    self.chains[start] = i
                start, made = None, set()
                if layer is not None and self._in_chain(layer, made):
                    start, made = i, set(layer.outputs)

    def _in_chain(self, layer: Layer, made: set[str]) -> bool:
        """Whether the layer can run in an onnxruntime chain after layers making ``made``."""
        if len(layer.outputs) != 1:
            return False
        if self._int8(layer):
            return has_kernel(layer.kind, "int8_onnxruntime")
        return layer.kind.exact_onnx(layer.params) and all(b in made for b in layer.inputs)

    @property
    def backend(self) -> str:
        """What runs the fp32 layers: "onnxruntime" or "numpy" (decided on first use)."""
        return "onnxruntime" if self._onnxruntime() is not None else "numpy"

    def release(self) -> None:
        """Free what onnxruntime holds between runs (its session: weights and activation
        memory, tens of MB); the next run rebuilds it. For long pauses, e.g. between the
        calibration passes, while the statistics are turned into scales."""
        if self._ort is not None:
            self._ort.release()

    def _onnxruntime(self) -> OrtBackend | None:
        if self._ort is None and self._ort_usable:
            try:
                self._ort = OrtBackend(self.graph, self.order, self.constants)
            except UnsupportedError as err:
                self._give_up_onnxruntime(str(err))
        return self._ort

    def _give_up_onnxruntime(self, reason: str) -> None:
        self._ort_usable, self._ort = False, None
        first_line = (reason.strip().splitlines() or [""])[0]
        self.numpy_reason = one_line(first_line)[:REASON_CHARS]

    def _int8(self, layer: Layer) -> bool:
        return self.mode == "int8" and runs_int8(layer)

    def blob_scale(self, name: str) -> BlobScale:
        """The BlobScale of an int8 blob; TNN's init fails without it (spec int8 §11.3)."""
        scale = self.graph.blob_scales.get(name)
        if scale is None:
            raise TnnQuantError(f"int8 blob '{name}' has no scale ('{name}_scale_data_' is "
                                f"missing from the model)", path=self.graph.model_path)
        return scale

    def _context(self, layer: Layer) -> Int8Context:
        def scales(blobs: list[str]) -> tuple[BlobScale | None, ...]:
            return tuple(self.blob_scale(b) if b in self.int8_blobs else None for b in blobs)
        try:
            return Int8Context(scales(layer.inputs), scales(layer.outputs), self.device)
        except TnnQuantError as err:
            raise err.located(layer=layer.name, layer_type=layer.proto_type) from None

    def dequantize(self, name: str, value: np.ndarray, folded: bool = True) -> np.ndarray:
        """A blob as the caller sees it: an int8 blob's codes dequantized with its scale (and,
        if ``folded``, the zero point tnnquant folded into the biases around it), any other
        blob unchanged."""
        if name not in self.int8_blobs:
            return value
        scale = self.blob_scale(name)
        return int8_math.dequantize(value, scale.scale, scale.zero_points, self.device,
                                    scale.folded_zero_point if folded else None)

    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        blobs: dict[str, np.ndarray] = {}
        for spec in self.graph.inputs:
            if spec.name not in feeds:
                raise InputError(f"no data for network input '{spec.name}'")
            x = np.asarray(feeds[spec.name])
            if x.dtype != np.float32:
                x = x.astype(np.float32)
            if x.ndim != len(spec.dims) or tuple(x.shape[1:]) != tuple(spec.dims[1:]):
                raise InputError(f"input '{spec.name}' has shape {x.shape}, the model expects "
                                 f"(N, {', '.join(map(str, spec.dims[1:]))})")
            if spec.name in self.int8_blobs:
                # an input only quantized layers read is int8: TNN's blob converter quantizes
                # the float data like an fp32 -> int8 Reformat (spec int8 §11.4)
                scale = self.blob_scale(spec.name)
                try:
                    x = int8_math.quantize(x, scale.scale, scale.zero_points, self.device)
                except ValueError as err:   # a scale that does not fit the input's channels
                    raise TnnQuantError(f"input '{spec.name}': {err}",
                                        path=self.graph.model_path) from None
            blobs[spec.name] = x
        return blobs

    def run(self, feeds: Mapping[str, np.ndarray], hooks: Iterable[Hook] = (),
            keep: Iterable[str] = (), observe: Iterable[str] | None = None
            ) -> dict[str, np.ndarray]:
        """Run the network; returns the network outputs (and the blobs named in ``keep``), int8
        blobs dequantized to float32. The hooks see every blob, or only those named in
        ``observe``, in the order the layers make them."""
        hooks = list(hooks)
        keep = set(keep)
        seen = None if observe is None else set(observe)
        blobs = self.check_feeds(feeds)
        if self._onnxruntime() is not None:
            result = self._run_onnxruntime(blobs, hooks, keep, seen)
            if result is not None:
                return result
        for name in blobs:   # no loop variable may keep an input alive after its last use
            if seen is None or name in seen:
                for hook in hooks:
                    hook(name, blobs[name], None)
        blobs.update(self.constants)
        kept: dict[str, np.ndarray] = {}
        i = 0
        while i < len(self.order):
            end = self.chains.get(i, i + 1)
            made = None
            if end > i + 1:   # the chain's blobs nothing reads are not made
                wanted = {name for layer in self.order[i:end] for name in layer.outputs
                          if self.last_use[name] >= end or name in keep
                          or name in self.graph.outputs
                          or (hooks and (seen is None or name in seen))}
                made = self._run_chain(i, end, blobs, wanted)
            if made is None:
                end = i + 1
            for k in range(i, end):
                layer = self.order[k]
                if made is None:
                    outs = self.run_layer(layer, [blobs[b] for b in layer.inputs])
                else:
                    outs = [made.pop(name, None) for name in layer.outputs]
                for name, y in zip(layer.outputs, outs):
                    if y is None:
                        continue
                    blobs[name] = y
                    if seen is None or name in seen:
                        for hook in hooks:
                            hook(name, y, layer)
                    if name in keep:
                        kept[name] = y
                for b in self.free_after[k]:
                    blobs.pop(b, None)
            i = end
        result = {name: blobs[name] for name in self.graph.outputs}
        result.update(kept)
        # network outputs as TNN's runtime returns them: it never reads a folded zero point
        # (tnnquant folds none into an output; another tool's file might hold one)
        return {name: self.dequantize(name, value, folded=name not in self.graph.outputs)
                for name, value in result.items()}

    def _run_onnxruntime(self, blobs: dict[str, np.ndarray], hooks: list[Hook], keep: set[str],
                         seen: set[str] | None) -> dict[str, np.ndarray] | None:
        """``run`` through onnxruntime: the observed blobs are extra outputs of one session
        run, then handed to the hooks in layer order. None if onnxruntime fails (the numpy
        kernels then run, and report the error if there is one)."""
        produced = [(name, layer) for layer in self.order for name in layer.outputs
                    if hooks and (seen is None or name in seen)]
        wanted = [b for b in (*self.graph.outputs, *keep, *(n for n, _ in produced))
                  if b not in blobs and b not in self.constants]
        try:
            values = self._ort.run(blobs, wanted)
        except Exception as err:   # noqa: BLE001 - onnxruntime's own exception types
            self._give_up_onnxruntime(f"onnxruntime failed: {err}")
            return None
        for name in blobs:
            if seen is None or name in seen:
                for hook in hooks:
                    hook(name, blobs[name], None)
        returned = {*self.graph.outputs, *keep}
        for name, layer in produced:   # each blob is released once its hooks have seen it
            value = values[name] if name in returned else values.pop(name)
            for hook in hooks:
                hook(name, value, layer)
            del value
        values.update(blobs)
        values.update(self.constants)
        return {name: values[name] for name in (*self.graph.outputs, *keep)}

    def extremes(self, feeds: Mapping[str, np.ndarray], blobs: Iterable[str]
                 ) -> dict[str, tuple[np.ndarray, np.ndarray, tuple[int, ...]]]:
        """Run the network for the per-item, per-channel min and max of the named blobs
        (``calib.observers.extremes``) and their shapes: ``{blob: (min (N, C), max (N, C),
        shape)}``. With onnxruntime the reductions run in the graph, so the blobs never
        leave it."""
        from ..calib.observers import extremes
        names = list(dict.fromkeys(blobs))
        blobs_in = self.check_feeds(feeds)
        out = {}

        def observe(name: str, x: np.ndarray, layer: Layer | None) -> None:
            out[name] = (*extremes(x), x.shape)

        backend = self._onnxruntime()
        if backend is not None:
            inside = [b for b in names if b not in blobs_in and b not in self.constants]
            try:
                found = backend.extremes(blobs_in, inside)
            except Exception as err:   # noqa: BLE001 - onnxruntime's own exception types
                self._give_up_onnxruntime(f"onnxruntime failed: {err}")
            else:
                batch = {s.name: len(blobs_in[s.name]) for s in self.graph.inputs}
                again = set()
                for name, (lo, hi) in found.items():
                    if np.isnan(lo).any() or np.isnan(hi).any():
                        again.add(name)    # NaN handling in the graph is not TNN's: redo
                    else:
                        out[name] = (lo, hi, backend.shape(name, batch))
                for name in names:
                    if name in blobs_in:
                        observe(name, blobs_in[name], None)
                if again:
                    self.run(feeds, hooks=[observe], observe=again)
                return {name: out[name] for name in names if name in out}
        self.run(feeds, hooks=[observe], observe=names)
        return {name: out[name] for name in names if name in out}

    def _run_chain(self, start: int, end: int, blobs: dict[str, np.ndarray], wanted: set[str]
                   ) -> dict[str, np.ndarray] | None:
        """The ``wanted`` outputs of layers ``start:end`` (a chain) from one onnxruntime
        session, or None where one of them has no provably exact onnxruntime form for these
        inputs (the layers then run one by one)."""
        from . import ort_kernels
        if not ort_kernels.ENABLED:
            return None
        layers = self.order[start:end]
        inside = {b for layer in layers for b in layer.outputs}
        stamp = (tuple((b, blobs[b].shape) for layer in layers for b in layer.inputs
                       if b not in inside), self._stamp(layers))
        cached = self._chain_plans.get(start)
        if cached is None or cached[0] != stamp:
            cached = self._chain_plans[start] = (stamp, self._plan_chain(layers, blobs))
        if cached[1] is None:
            return None
        ops, wiring, memo = cached[1]
        return ort_kernels.run_chain(ops, wiring, blobs, wanted, memo)

    def _stamp(self, layers: list[Layer]) -> tuple:
        """What a chain's plan is made of besides input shapes: the parameters, the resource
        objects and their arrays (which the plan keeps alive, so their ids stay theirs;
        weights changed in place are caught by ``run_chain``), the scales' values."""
        parts: list = []
        for layer in layers:
            res = self.graph.resources.get(layer.name)
            parts += [layer.params, id(res)]
            for field in ("filter", "bias", "scale", "zero_point"):
                buf = getattr(res, field, None)
                parts.append(None if buf is None else id(buf.data))
            if getattr(res, "scale", None) is not None:
                parts.append(res.scale.data.tobytes())
            q = self.contexts.get(layer.name)
            if q is not None:
                parts.extend(None if s is None else s.scale.tobytes()
                             for s in (*q.inputs, *q.outputs))
        return tuple(parts)

    def _plan_chain(self, layers: list[Layer], blobs: dict[str, np.ndarray]
                    ) -> tuple[list, list, object] | None:
        """The onnxruntime ops and wiring of a chain for these inputs (and a fresh
        ``ChainMemo`` for ``run_chain``), or None."""
        from . import ort_kernels
        shapes: dict[str, tuple[int, ...]] = {}
        dtypes: dict[str, np.dtype] = {}
        ops, wiring = [], []
        for layer in layers:
            in_shapes = [shapes[b] if b in shapes else blobs[b].shape for b in layer.inputs]
            in_dtypes = [dtypes[b] if b in dtypes else blobs[b].dtype for b in layer.inputs]
            res = self.graph.resources.get(layer.name)
            if layer.name in self.contexts:
                found = layer.kind.int8_onnxruntime(layer.params, res, self.contexts[layer.name],
                                                    *in_shapes)
                if found is None:
                    return None
                op, shapes[layer.outputs[0]] = found
            else:
                if any(d != np.float32 for d in in_dtypes):
                    return None   # an fp32 layer on int8 codes: its kernel's output type rules
                try:
                    (out_shape, _), = layer.kind.output_types(
                        layer.params, res, *((s, np.dtype(np.float32)) for s in in_shapes))
                except SHAPE_ERRORS:   # the numpy kernel reports it
                    return None
                op = ort_kernels.Fp32Layer(layer.kind, layer.params, res, in_shapes)
                shapes[layer.outputs[0]] = tuple(out_shape)
            ops.append(op)
            dtypes[layer.outputs[0]] = np.dtype(op.out_dtype)
            wiring.append((list(layer.inputs), layer.outputs[0]))
        ort_kernels.settle_checks(ops, wiring, {
            b: float(ort_kernels.MAX_CODE) if blobs[b].dtype == np.int8 else None
            for layer in layers for b in layer.inputs if b not in dtypes})
        return ops, wiring, ort_kernels.ChainMemo.of(ops, wiring)

    def run_layer(self, layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
        res = self.graph.resources.get(layer.name)
        try:
            if layer.name in self.contexts:
                out = layer.kind.forward_int8(layer.params, res, self.contexts[layer.name], *xs)
            elif self.fp32 == "naive":
                out = layer.kind.forward_naive(layer.params, res, *xs)
            else:
                out = layer.kind.forward(layer.params, res, *xs)
        except TnnQuantError as err:
            raise err.located(path=self.graph.proto_path, line=layer.line, layer=layer.name,
                              layer_type=layer.proto_type) from err
        except (ValueError, IndexError, ZeroDivisionError, OverflowError) as err:
            # parameters no kernel can honour (a damaged file): one located line
            raise UnsupportedError(f"cannot run: {err}", path=self.graph.proto_path,
                                   line=layer.line, layer=layer.name,
                                   layer_type=layer.proto_type) from err
        except MemoryError as err:
            raise UnsupportedError(f"out of memory running this layer ({err})",
                                   path=self.graph.proto_path, line=layer.line,
                                   layer=layer.name, layer_type=layer.proto_type) from None
        # one array for a several-output layer (Split) means every output is that array
        outs = list(out) if isinstance(out, (tuple, list)) else [out] * len(layer.outputs)
        if len(outs) != len(layer.outputs):
            raise UnsupportedError(f"kernel produced {len(outs)} outputs, the proto declares "
                                   f"{len(layer.outputs)}", path=self.graph.proto_path,
                                   line=layer.line, layer=layer.name,
                                   layer_type=layer.proto_type)
        return outs
