"""Mixed precision: keep the fewest layers float until the simulated output cosine on the
calibration set reaches ``config.target_cos``.

The int8 model is simulated on the calibration data (TNN's x86 int8 arithmetic) and its layers
are ranked by the noise each one adds (the accuracy report's ranking: relative noise power of
its output minus that of its noisiest input, ``report.compare``). Layers then go back to float
one at a time in that order, each step confirmed by re-simulating, until the mean per-sample
output cosine reaches the target (or nothing is left). A ReLU / max pool whose producer turns
float turns float too (TNN's rule, spec int8 §9), and a blob whose zero point was folded
into biases goes back to symmetric codes when its producer or a reader turns float
(``zero_points.unshift``). Every float layer between int8 layers costs
Reformat layers at run time (spec int8 §11.2): their count is reported.
"""
from __future__ import annotations

import numpy as np

from ..exec.executor import Executor
from ..exec.ort_kernels import clear_sessions
from ..ir.graph import Graph
from .context import Batches, PassContext
from .merge_scales import _merges
from .runtime import runtime_graph
from .zero_points import folded, is_offset_add, unshift


def float_outputs(ctx: PassContext, runs: Batches | None = None
                  ) -> list[dict[str, np.ndarray]]:
    """The float model's outputs, one dict per run of ``runs`` (default ``ctx.runs()``), in
    order."""
    float_exec = Executor(ctx.float_graph, fp32=ctx.config.fp32)
    return [float_exec.run(run) for run in (runs or ctx.runs())()]


def output_cosines(graph: Graph, reference: list[dict[str, np.ndarray]], runs: Batches
                   ) -> np.ndarray:
    """Per-sample cosines of the simulated int8 outputs against ``reference`` (the float
    outputs of the same ``runs``, ``float_outputs``), one per sample and output."""
    from ..report.metrics import sample_cosines   # here: quantization_cmd never loads the report
    executor = Executor(runtime_graph(graph), mode="int8")
    cosines = []
    for run, ref in zip(runs(), reference):
        out = executor.run(run)
        cosines += [sample_cosines(ref[name], out[name]) for name in ref if name in out]
    # the callers score one model after another: with every model's simulator sessions
    # alive, the fallback check's peak memory was 2.5x the recipe's (PP-OCRv4 detection,
    # 10.5 GB against 4.1 GB)
    clear_sessions()
    return np.concatenate(cosines)


def output_cosine(graph: Graph, reference: list[dict[str, np.ndarray]], ctx: PassContext
                  ) -> float:
    """Mean per-sample cosine of the simulated int8 outputs against ``reference``
    (``float_outputs(ctx)``), over samples and outputs."""
    return float(output_cosines(graph, reference, ctx.runs()).mean())


def reformat_count(graph: Graph) -> int:
    return sum(layer.type == "Reformat" for layer in runtime_graph(graph).layers)


def set_float(graph: Graph, names: set[str], float_graph: Graph) -> Graph:
    """A copy with the layers ``names`` float again (float weights back), and every ReLU /
    max pool whose producer is then float un-merged."""
    graph = graph.copy()
    for layer in graph.layers:
        if layer.name in names and layer.quantized:
            layer.quantized = False
            if layer.name in float_graph.resources:
                graph.resources[layer.name] = float_graph.resources[layer.name]
    producers = graph.producers()
    for layer in graph.layers:
        if layer.quantized and _merges(layer):
            source = producers.get(layer.inputs[0])
            if source is None or not source.quantized:
                layer.quantized = False
    consumers = graph.consumers()
    for blob, scale in list(graph.blob_scales.items()):
        if folded(scale) is not None and not all(
                lay.quantized or is_offset_add(lay)
                for lay in [producers[blob], *consumers.get(blob, [])]):
            unshift(graph, blob, float_graph)
    return graph


def keep_float_until_target(graph: Graph, ctx: PassContext) -> Graph:
    """Return a copy with the fewest layers float (module docstring)."""
    target = ctx.config.target_cos
    reference = float_outputs(ctx)
    cosine = output_cosine(graph, reference, ctx)
    start_reformats = reformat_count(graph)
    if cosine >= target:
        ctx.notes.append(f"mixed precision: every layer int8 reaches cosine {cosine:.5f} "
                         f">= {target} on the calibration set")
        return graph
    from ..report.compare import compare   # here: quantization_cmd never loads the report
    report = compare(ctx.float_graph, graph, ctx.batches())
    quantizable = {lay.name for lay in graph.layers if lay.quantized and lay.kind.quantizable}
    ranked = []
    for blob in sorted(report.blobs, key=lambda b: -b.added_noise):
        if blob.layer in quantizable and blob.layer not in ranked:
            ranked.append(blob.layer)
    ranked += sorted(quantizable - set(ranked))   # never measured: last
    kept: list[str] = []
    for step, name in enumerate(ranked, 1):
        kept.append(name)
        trial = set_float(graph, set(kept), ctx.float_graph)
        cosine = output_cosine(trial, reference, ctx)
        ctx.tick("mixed precision", step)
        if cosine >= target:
            break
    graph = set_float(graph, set(kept), ctx.float_graph)
    reached = "reaches" if cosine >= target else "does not reach"
    ctx.notes.append(
        f"mixed precision: {len(kept)} layer(s) kept float ({', '.join(kept)}); int8 model "
        f"{reached} cosine {target} on the calibration set ({cosine:.5f}); TNN inserts "
        f"{reformat_count(graph)} Reformat layer(s) at run time ({start_reformats} with every "
        f"layer int8)")
    return graph
