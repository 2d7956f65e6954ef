"""The network drawing: layering, lanes and wrapping of a DAG, the noise colour scale, and
well-formed, escaped SVG."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tnnquant.report.details import NetLayer
from tnnquant.report.netgraph import (MARGIN, NODE_H, NODE_W, RAMP, NoiseScale, layout,
                                      network_svg)


def chain_with_branches(n: int) -> list[NetLayer]:
    """A chain of n convs with a residual add every 4 layers and a two-way branch at the end
    joined by a concat."""
    layers, x = [], "in"
    for i in range(n):
        layers.append(NetLayer(f"c{i}", "QuantizedConvolution", [x], [f"b{i}"], True))
        if i % 4 == 3:
            layers.append(NetLayer(f"add{i}", "QuantizedAdd", [f"b{i}", f"b{i - 3}"],
                                   [f"a{i}"], True))
            x = f"a{i}"
        else:
            x = f"b{i}"
    layers += [NetLayer("left", "Pooling", [x], ["l"], False),
               NetLayer("right", "QuantizedConvolution", [x], ["r"], True),
               NetLayer("cat", "Concat", ["l", "r"], ["out"], False)]
    return layers


def test_layout_ranks_lanes_and_rows():
    layers = chain_with_branches(40)
    nodes, edges, height = layout(layers, ["in"], width=900)
    by_name = {n.name: n for n in nodes}
    # rank = longest path from the input
    assert by_name["in"].rank == 0 and by_name["c0"].rank == 1
    assert by_name["add3"].rank == by_name["c3"].rank + 1
    assert by_name["left"].rank == by_name["right"].rank
    assert by_name["cat"].rank == by_name["left"].rank + 1
    assert all(nodes[a].rank < nodes[b].rank for a, b in edges)
    assert len(edges) == sum(len({i for i in layer.inputs}) for layer in layers)
    # the two branches share a rank on two lanes; nothing overlaps; all fits the width
    assert {by_name["left"].lane, by_name["right"].lane} == {0, 1}
    boxes = {(round(n.x), round(n.y)) for n in nodes}
    assert len(boxes) == len(nodes)
    assert all(MARGIN <= n.x <= 900 - MARGIN - NODE_W + 1e-9 for n in nodes)
    assert all(0 < n.y and n.y + NODE_H <= height for n in nodes)
    # wrapped into rows of equal length (up to one rank)
    per_row = {}
    for n in nodes:
        per_row.setdefault(n.row, set()).add(n.rank)
    sizes = [len(ranks) for ranks in per_row.values()]
    assert len(sizes) > 1 and max(sizes) - min(sizes) <= 1


def test_noise_scale():
    scale = NoiseScale.for_values([0.003, -0.2, float("inf"), 0.25])
    assert scale.top == 1.0 and scale.ticks() == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1])
    assert scale.color(0) == scale.color(-1) == scale.color(1e-5) == RAMP[0]
    assert scale.color(1) == scale.color(7) == RAMP[-1]
    positions = [scale.position(v) for v in (1e-4, 1e-3, 0.01, 0.5, 1)]
    assert positions == sorted(positions) and positions[0] == 0 and positions[-1] == 1
    assert NoiseScale.for_values([0.0001]).top == 0.01   # at least 1%


def test_svg_is_well_formed_and_escaped():
    layers = [NetLayer('conv <"1"> & co', "QuantizedConvolution", ["x"], ["y"], True, "3x3"),
              NetLayer("fc", "InnerProduct", ["y"], ["z"], False)]
    svg = network_svg(layers, ["x"], {'conv <"1"> & co': 0.02}, {"fc": "kept <float>"},
                      {'conv <"1"> & co': 1}, width=400)
    root = ET.fromstring(svg)   # well-formed XML
    groups = [g for g in root.iter("g") if g.get("class", "").startswith("node")]
    assert [g.get("data-name") for g in groups] == ["x", 'conv <"1"> & co', "fc"]
    assert groups[2].get("class") == "node float"
    titles = [g.find("title").text for g in groups]
    assert titles[1].startswith('conv <"1"> & co\nQuantizedConvolution')
    assert titles[2].endswith("kept <float>")
    assert groups[0].find("rect").get("fill") == "#e6e6e6"   # no noise known: grey
