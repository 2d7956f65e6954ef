"""Runs a Graph on NCHW numpy batches, layer by layer, with observer hooks.

Blobs are freed after their last consumer, so peak memory is the weights plus the live
activations. Every produced blob is passed to the hooks as ``hook(name, array, layer)``
(network inputs with ``layer=None``); a hook must not modify the array.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping

import numpy as np

from ..errors import InputError, TnnQuantError, UnsupportedError
from ..ir.graph import Graph, Layer
from ..layers.base import LayerType

Hook = Callable[[str, np.ndarray, "Layer | None"], None]


def has_kernel(kind: type[LayerType], method: str = "forward") -> bool:
    return getattr(kind, method).__func__ is not getattr(LayerType, method).__func__


class Executor:
    """fp32 executor over a Graph (``Executor(graph).run(feeds)``)."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.order = graph.topo_order()
        missing = [lay for lay in self.order if not has_kernel(lay.kind)]
        if missing:
            lay = missing[0]
            raise UnsupportedError(f"layer type {lay.proto_type} has no fp32 kernel in tnnquant "
                                   f"({len(missing)} such layer(s))", path=graph.proto_path,
                                   line=lay.line, layer=lay.name, layer_type=lay.proto_type)
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
            blobs[spec.name] = x
        return blobs

    def run(self, feeds: Mapping[str, np.ndarray], hooks: Iterable[Hook] = (),
            keep: Iterable[str] = ()) -> dict[str, np.ndarray]:
        """Run the network; returns the network outputs (and the blobs named in ``keep``)."""
        hooks = list(hooks)
        keep = set(keep)
        blobs = self.check_feeds(feeds)
        for name, x in blobs.items():
            for hook in hooks:
                hook(name, x, None)
        blobs.update(self.constants)
        kept: dict[str, np.ndarray] = {}
        for i, layer in enumerate(self.order):
            outs = self.run_layer(layer, [blobs[b] for b in layer.inputs])
            for name, y in zip(layer.outputs, outs):
                blobs[name] = y
                for hook in hooks:
                    hook(name, y, layer)
                if name in keep:
                    kept[name] = y
            for b in self.free_after[i]:
                blobs.pop(b, None)
        result = {name: blobs[name] for name in self.graph.outputs}
        result.update(kept)
        return result

    def run_layer(self, layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
        res = self.graph.resources.get(layer.name)
        try:
            out = layer.kind.forward(layer.params, res, *xs)
        except TnnQuantError as err:
            raise err.located(path=self.graph.proto_path, line=layer.line, layer=layer.name,
                              layer_type=layer.proto_type) from err
        except (ValueError, IndexError) as err:
            raise UnsupportedError(f"cannot run: {err}", path=self.graph.proto_path,
                                   line=layer.line, layer=layer.name,
                                   layer_type=layer.proto_type) from err
        # one array for a several-output layer (Split) means every output is that array
        outs = list(out) if isinstance(out, (tuple, list)) else [out] * len(layer.outputs)
        if len(outs) != len(layer.outputs):
            raise UnsupportedError(f"kernel produced {len(outs)} outputs, the proto declares "
                                   f"{len(layer.outputs)}", path=self.graph.proto_path,
                                   line=layer.line, layer=layer.name,
                                   layer_type=layer.proto_type)
        return outs
