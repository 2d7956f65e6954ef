"""The network drawn as a layered graph in SVG, each layer coloured by the noise it adds.

Layout (a small Sugiyama-style layering, no graphviz): a layer's rank is the longest path
from the network inputs, layers of one rank are ordered by a few barycenter sweeps to limit
crossings, and the ranks run left to right, wrapped into rows that fit the page width. Edges
between neighbouring ranks are S-curves, longer ones arcs above the row, edges that wrap to the
next row dashed curves. Every node has a tooltip (``<title>``) with its name and numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Mapping, Sequence

import numpy as np

from .details import NetLayer

NODE_W, NODE_H = 36, 18          # px
RANK_DX, LANE_DY = 42, 34        # px between ranks (at least), between layers of one rank
MAX_RANK_DX = 64
ROW_GAP = 46                     # px between wrapped rows (room for arcs and rank badges)
MARGIN = 14
STUB = 7                         # px of the stubs of an edge that wraps to the next row
SWEEPS = 4
NOISE_FLOOR = 1e-4               # colour scale: 0.01% of the signal power and below is "none"
NOISE_SCALE_MIN_TOP = 1e-2       # the scale reaches at least 1%
# YlOrRd: light yellow (no added noise) to dark red (the most)
RAMP = ("#ffffcc", "#fed976", "#fd8d3c", "#e31a1c", "#800026")
NOT_COMPARED = "#e6e6e6"
SHORT_TYPES = {"Convolution": "Conv", "InnerProduct": "FC", "Pooling": "Pool", "Reformat": "R",
               "Concat": "Cat", "Input": "In", "Deconvolution": "Dcv", "Upsample": "Up"}


@dataclass(frozen=True)
class NoiseScale:
    """Added noise (a fraction of the signal power) -> colour, on a log scale."""

    top: float

    @classmethod
    def for_values(cls, values: Sequence[float]) -> "NoiseScale":
        worst = max([v for v in values if math.isfinite(v)], default=0.0)
        return cls(10 ** math.ceil(math.log10(max(worst, NOISE_SCALE_MIN_TOP))))

    def position(self, value: float) -> float:
        """0 (at or below the floor) .. 1 (at or above the top)."""
        if not value > NOISE_FLOOR:
            return 0.0
        lo, hi = math.log10(NOISE_FLOOR), math.log10(self.top)
        return min(1.0, (math.log10(value) - lo) / (hi - lo))

    def color(self, value: float) -> str:
        t = self.position(value) * (len(RAMP) - 1)
        i = min(int(t), len(RAMP) - 2)
        a, b = (np.array([int(c[k:k + 2], 16) for k in (1, 3, 5)]) for c in RAMP[i:i + 2])
        rgb = np.round(a + (b - a) * (t - i)).astype(int)
        return "#" + "".join(f"{v:02x}" for v in rgb)

    def ticks(self) -> list[float]:
        """Decades from the floor to the top."""
        n = round(math.log10(self.top / NOISE_FLOOR))
        return [NOISE_FLOOR * 10 ** k for k in range(n + 1)]


@dataclass
class Node:
    name: str
    type: str
    rank: int
    label: str = ""
    lane: int = 0
    row: int = 0
    x: float = 0.0
    y: float = 0.0


def layout(layers: Sequence[NetLayer], inputs: Sequence[str], width: float
           ) -> tuple[list[Node], list[tuple[int, int]], float]:
    """Nodes (network inputs first, then ``layers``) with positions, edges as (from, to) node
    indices, and the drawing's height."""
    nodes = [Node(name, "Input", 0) for name in inputs]
    producer = {name: i for i, name in enumerate(inputs)}
    edges: list[tuple[int, int]] = []
    for layer in layers:
        index = len(nodes)
        sources = sorted({producer[b] for b in layer.inputs if b in producer})
        edges += [(s, index) for s in sources]
        nodes.append(Node(layer.name, layer.type,
                          1 + max((nodes[s].rank for s in sources), default=-1), layer.label))
        for b in layer.outputs:
            producer.setdefault(b, index)
    _order_lanes(nodes, edges)
    ranks = 1 + max((node.rank for node in nodes), default=0)
    room = width - 2 * MARGIN - NODE_W
    per_row = math.ceil(ranks / math.ceil(ranks / (int(room // RANK_DX) + 1)))   # equal rows
    dx = min(MAX_RANK_DX, room / max(per_row - 1, 1))                             # fill them
    rows: dict[int, int] = {}
    for node in nodes:
        rows[node.rank // per_row] = max(rows.get(node.rank // per_row, 0), node.lane + 1)
    top, row_y = MARGIN + ROW_GAP // 2, {}
    for row in range(max(rows) + 1 if rows else 0):
        row_y[row] = top
        top += rows.get(row, 1) * LANE_DY + ROW_GAP
    for node in nodes:
        node.row = node.rank // per_row
        node.x = MARGIN + (node.rank % per_row) * dx
        node.y = row_y[node.row] + node.lane * LANE_DY
    return nodes, edges, top - ROW_GAP + MARGIN + NODE_H


def _order_lanes(nodes: list[Node], edges: list[tuple[int, int]]) -> None:
    """Order the nodes of each rank by the mean lane of their neighbours, sweeping forward
    (predecessors) and backward (successors) a few times; ties keep execution order."""
    ranks: dict[int, list[int]] = {}
    for i, node in enumerate(nodes):
        ranks.setdefault(node.rank, []).append(i)
    preds: dict[int, list[int]] = {i: [] for i in range(len(nodes))}
    succs: dict[int, list[int]] = {i: [] for i in range(len(nodes))}
    for a, b in edges:
        preds[b].append(a)
        succs[a].append(b)
    position = {i: float(k) for members in ranks.values() for k, i in enumerate(members)}
    for sweep in range(SWEEPS):
        forward = sweep % 2 == 0
        for rank in sorted(ranks, reverse=not forward):
            neighbours = preds if forward else succs
            members = ranks[rank]
            key = {i: (np.mean([position[j] for j in neighbours[i]]) if neighbours[i]
                       else position[i]) for i in members}
            members.sort(key=lambda i: (key[i], position[i]))
            position.update({i: float(k) for k, i in enumerate(members)})
    for members in ranks.values():
        for k, i in enumerate(members):
            nodes[i].lane = k


def _edge_svg(a: Node, b: Node) -> str:
    """An edge as SVG paths: an S-curve between neighbouring ranks, an arc over the nodes of
    a lane for longer edges, and two short dashed stubs when it wraps to a later row."""
    x1, y1, x2, y2 = a.x + NODE_W, a.y + NODE_H / 2, b.x, b.y + NODE_H / 2
    if a.row != b.row:
        title = f"<title>{escape(a.name)} → {escape(b.name)} (next row)</title>"
        return (f'<path class="wrap" d="M{x1:.1f},{y1:.1f} h{STUB:.0f}">{title}</path>'
                f'<path class="wrap" d="M{x2 - STUB:.1f},{y2:.1f} h{STUB:.0f}">{title}</path>')
    if b.rank - a.rank <= 1 or a.lane != b.lane:
        mid = (x1 + x2) / 2
        d = f"M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
    else:
        lift = min(ROW_GAP * 0.6, 10 + 4 * (b.rank - a.rank))
        xa, xb, y = a.x + NODE_W / 2, b.x + NODE_W / 2, a.y
        d = f"M{xa:.1f},{y:.1f} C{xa:.1f},{y - lift:.1f} {xb:.1f},{y - lift:.1f} {xb:.1f},{y:.1f}"
    return f'<path d="{d}"/>'


def network_svg(layers: Sequence[NetLayer], inputs: Sequence[str],
                added_noise: Mapping[str, float], tooltips: Mapping[str, str],
                worst_rank: Mapping[str, int], width: float = 1100) -> str:
    """The network as an ``<svg>`` element: ``added_noise`` (node name -> fraction of the
    signal power) colours the nodes (grey when absent), ``worst_rank`` (node name -> 1, 2...)
    puts a numbered badge on the worst ones, ``tooltips`` adds text to each node's tooltip."""
    nodes, edges, height = layout(layers, inputs, width)
    scale = NoiseScale.for_values(list(added_noise.values()))
    int8 = {layer.name: layer.int8 for layer in layers}
    parts = [f'<svg class="netgraph" width="{width:.0f}" height="{height:.0f}" '
             f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
             f'aria-label="network graph coloured by added noise">']
    parts.append('<g class="edges">')
    parts += [_edge_svg(nodes[a], nodes[b]) for a, b in edges]
    parts.append("</g>")
    for node in nodes:
        parts.append(_node_svg(node, added_noise.get(node.name), scale,
                               int8.get(node.name, True), tooltips.get(node.name, ""),
                               worst_rank.get(node.name)))
    parts.append("</svg>")
    return "".join(parts)


def _node_svg(node: Node, noise: float | None, scale: NoiseScale, int8: bool, tooltip: str,
              rank: int | None) -> str:
    fill = NOT_COMPARED if noise is None else scale.color(noise)
    kind = node.type.removeprefix("Quantized")
    classes = ["node"] + ([] if int8 else ["float"]) + (["reformat"] if kind == "Reformat"
                                                        else [])
    title = f"{node.name}\n{node.type}" + (f"\n{tooltip}" if tooltip else "")
    label = node.label or SHORT_TYPES.get(kind, kind[:4])
    text_color = "#fff" if noise is not None and scale.position(noise) > 0.6 else "#222"
    out = [f'<g class="{" ".join(classes)}" data-name="{escape(node.name)}">'
           f'<title>{escape(title)}</title>'
           f'<rect x="{node.x:.1f}" y="{node.y:.1f}" width="{NODE_W}" height="{NODE_H}" '
           f'rx="4" fill="{fill}"/>'
           f'<text x="{node.x + NODE_W / 2:.1f}" y="{node.y + NODE_H / 2 + 3.5:.1f}" '
           f'fill="{text_color}">{escape(label)}</text>']
    if rank is not None:
        cx, cy = node.x + NODE_W / 2, node.y - 8   # clear of a node in the lane above
        out.append(f'<circle class="badge" cx="{cx:.1f}" cy="{cy:.1f}" r="7"/>'
                   f'<text class="badge" x="{cx:.1f}" y="{cy + 3.5:.1f}">{rank}</text>')
    out.append("</g>")
    return "".join(out)
