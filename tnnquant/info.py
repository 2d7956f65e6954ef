"""What `tnnquant info` reports about a model."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .formats.rawbuffer import DataType
from .ir.graph import Graph


@dataclass
class ModelInfo:
    inputs: list[tuple[str, tuple[int, ...], str]]
    outputs: list[str]
    layer_counts: Counter
    quantized: bool
    quantized_layers: int
    params_by_type: dict[str, int] = field(default_factory=dict)   # element counts
    bytes_by_type: dict[str, int] = field(default_factory=dict)
    has_weights: bool = False
    blob_scales: int = 0              # blobs with a BlobScale record
    per_channel_blob_scales: int = 0
    legacy_blob_scales: int = 0       # without zero points (older TNN tool)
    constants: int = 0                # constant-map entries


def model_info(graph: Graph) -> ModelInfo:
    info = ModelInfo(
        inputs=[(s.name, s.dims, (s.data_type or DataType.FLOAT).name.lower())
                for s in graph.inputs],
        outputs=list(graph.outputs),
        layer_counts=Counter(layer.proto_type for layer in graph.layers),
        quantized=graph.is_quantized,
        quantized_layers=sum(layer.quantized for layer in graph.layers),
        has_weights=graph.model_path is not None,
        blob_scales=len(graph.blob_scales),
        per_channel_blob_scales=sum(bs.per_channel for bs in graph.blob_scales.values()),
        legacy_blob_scales=sum(bs.zero_point is None for bs in graph.blob_scales.values()),
        constants=len(graph.constants))
    for _, buf in graph.iter_weights():
        key = buf.data_type.name.lower()
        info.params_by_type[key] = info.params_by_type.get(key, 0) + buf.size
        info.bytes_by_type[key] = info.bytes_by_type.get(key, 0) + buf.nbytes
    return info


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def format_info(info: ModelInfo) -> str:
    lines = ["inputs:"]
    for name, dims, dtype in info.inputs:
        lines.append(f"  {name}  {'x'.join(map(str, dims))}  {dtype}")
    lines.append("outputs:")
    lines += [f"  {name}" for name in info.outputs]
    total = sum(info.layer_counts.values())
    lines.append(f"layers: {total}")
    for type_str, n in sorted(info.layer_counts.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {type_str:<24} {n}")
    if info.has_weights:
        n_params = sum(info.params_by_type.values())
        n_bytes = sum(info.bytes_by_type.values())
        lines.append(f"parameters: {n_params:,} ({_human(n_bytes)})")
        for key in sorted(info.params_by_type):
            lines.append(f"  {key:<8} {info.params_by_type[key]:>12,}  "
                         f"{_human(info.bytes_by_type[key])}")
    if info.constants:
        lines.append(f"constants: {info.constants}")
    if info.quantized:
        n = info.quantized_layers
        lines.append(f"quantized: yes ({n} int8 layer{'s' * (n != 1)})")
    else:
        lines.append("quantized: no")
    if info.blob_scales:
        n, pc = info.blob_scales, info.per_channel_blob_scales
        legacy = ", no zero points (legacy)" if info.legacy_blob_scales == n else ""
        lines.append(f"blob scales: {n} ({pc} per-channel, {n - pc} per-tensor{legacy})")
    return "\n".join(lines)
