"""onnx2tnn fuses a chain only when its nodes stand next to each other in file order; the
fusions that follow that rule share this walk over neighbouring nodes, and the checks every
such fusion makes before it removes the chain's inner blobs."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .model import Node, OnnxGraph


def fuse_window(graph: OnnxGraph, ops: Sequence[str],
                fuse: Callable[..., Node | None]) -> OnnxGraph:
    """Replace every run of consecutive nodes whose op types are ``ops`` by ``fuse(*nodes)``
    where that returns a node (None keeps the run)."""
    nodes, kept, n = graph.nodes, [], len(ops)
    i = 0
    while i < len(nodes):
        window = nodes[i:i + n]
        fused = (fuse(*window) if len(window) == n and all(a.op == b for a, b in zip(window, ops))
                 else None)
        kept.append(fused or nodes[i])
        i += n if fused else 1
    graph.nodes = kept
    return graph


def fuse_adjacent(graph: OnnxGraph, first: str, second: str,
                  fuse: Callable[[Node, Node], Node | None]) -> OnnxGraph:
    """Replace every pair of consecutive nodes of op types ``first`` then ``second`` by
    ``fuse(a, b)`` where that returns a node (None keeps the pair)."""
    return fuse_window(graph, (first, second), fuse)


def only_read_by(graph: OnnxGraph, blob: str, *readers: Node) -> bool:
    """``blob`` is no graph output and no node other than ``readers`` reads it: a fusion may
    remove it."""
    return (blob not in graph.outputs
            and all(any(c is r for r in readers) for c in graph.consumers(blob)))


def gates_its_input(graph: OnnxGraph, gate: Node, mul: Node) -> bool:
    """``mul`` computes ``x * gate(x)`` and nothing else reads ``gate(x)``."""
    return (len(gate.inputs) == 1
            and sorted(mul.inputs) == sorted([gate.inputs[0], gate.outputs[0]])
            and only_read_by(graph, gate.outputs[0], mul))


def scalar(graph: OnnxGraph, name: str, rank0: bool = False) -> float | None:
    """The value of a one-element constant (``rank0``: only a 0-d tensor, as onnx2tnn's
    HardSigmoid/HardSwish patterns require), else None."""
    value = graph.consts.get(name)
    if value is None or value.size != 1 or (rank0 and value.ndim != 0):
        return None
    if value.dtype.kind not in "fiu":
        return None
    return float(np.asarray(value).reshape(-1)[0])


def per_channel(value: np.ndarray, shape: tuple[int, ...]) -> bool:
    """A float constant that, broadcast against a blob of ``shape``, gives one value per
    channel (axis 1): ``[C, 1, 1]``, ``[1, C, 1, 1]``, ..."""
    if value.dtype.kind != "f" or value.ndim > len(shape) or len(shape) < 2:
        return False
    aligned = (1,) * (len(shape) - value.ndim) + value.shape
    return aligned[1] == shape[1] and all(d == 1 for i, d in enumerate(aligned) if i != 1)
