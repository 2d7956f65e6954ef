"""The .tnnmodel binary codec (spec model-format §2).

Reading checks the whole file is consumed and that every resource fits its layer; writing
follows ModelPacker's record order (spec §2.8), so files written by TNN round-trip exactly.
"""
from __future__ import annotations

from ..errors import FormatError
from ..ir.graph import BlobScale, Graph
from ..layers import LAYERS, LAYERS_BY_ENUM
from .binio import BinReader, BinWriter
from .rawbuffer import MAGIC_V1, MAGIC_V2, DataType, RawBuffer

BLOB_SCALE_ENUM = 600
BLOB_SCALE_TYPE = "BlobScale"
SCALE_SUFFIX = "_scale_data_"
MAX_RECORDS = 10000


def read_model(data: bytes, graph: Graph, path: str | None = None) -> Graph:
    """Fill ``graph`` (parsed from the proto) with the resources stored in .tnnmodel bytes."""
    r = BinReader(data, path)
    if len(data) < 8:
        raise r.error(f"not a TNN model: file has only {len(data)} bytes", 0)
    magic = r.u32()
    if magic in (MAGIC_V1, MAGIC_V2):
        graph.format.model_magic = True
    else:
        graph.format.model_magic = False
        r.pos = 0
    count = r.i32("record count") & 0x1FFFFFFF
    if count >= MAX_RECORDS:
        raise r.error(f"not a TNN model: record count {count} (TNN accepts < {MAX_RECORDS})", 0)

    layers = {layer.name: layer for layer in graph.layers}
    for index in range(count):
        r.layer = None
        start = r.pos
        type_enum = r.i32(f"record {index} header")
        if not 0 <= type_enum <= MAX_RECORDS:
            raise r.error(f"record {index}: bad layer type number {type_enum}", start)
        first = r.string(f"record {index} header")
        if first in LAYERS or first == BLOB_SCALE_TYPE:
            type_str, name = first, r.string(f"record {index} name")
        else:  # legacy header: the integer is the type, the string the name (spec §2.4)
            name = first
            type_str = BLOB_SCALE_TYPE if type_enum == BLOB_SCALE_ENUM else None
            if type_str is None:
                kind = LAYERS_BY_ENUM.get(type_enum)
                if kind is None:
                    raise r.error(f"record '{name}': unknown layer type number {type_enum}", start)
                type_str = kind.names[0]
        r.layer = name
        if type_str == BLOB_SCALE_TYPE:
            if not name.endswith(SCALE_SUFFIX):
                raise r.error(f"BlobScale record name must end with '{SCALE_SUFFIX}'", start)
            graph.blob_scales[name[:-len(SCALE_SUFFIX)]] = _read_blob_scale(r)
            continue
        kind = LAYERS.get(type_str)
        if kind.Resource is None:
            raise r.error(f"layer type {type_str} has no resource payload", start)
        resource = kind.Resource.read(r)
        layer = layers.get(name)
        if layer is not None and layer.kind.Resource is not kind.Resource:
            raise r.error(f"record of type {type_str} does not fit the proto's "
                          f"{layer.proto_type} layer", start)
        graph.resources[name] = resource

    if r.remaining >= 4:
        r.layer = None
        r.u32("constant map magic")
        n = r.i32("constant map count")
        if not 0 <= n < 1 << 20:
            raise r.error(f"bad constant map count {n}")
        graph.format.empty_constant_map = n == 0
        for _ in range(n):
            key = r.string("constant name")
            r.layer = key
            graph.constants[key] = r.rawbuffer(f"constant '{key}'")
    if r.remaining:
        raise r.error(f"{r.remaining} unexpected trailing bytes")
    _check_resources(graph, path)
    graph.model_path = path
    return graph


def _read_blob_scale(r: BinReader) -> BlobScale:
    first = r.rawbuffer("blob zero point or scale")
    if first.data_type == DataType.INT8:
        zero_point, scale = first, r.rawbuffer("blob scale")
    elif first.data_type == DataType.FLOAT:
        zero_point, scale = None, first   # legacy: no zero points (spec int8 §10.3)
    else:
        raise r.error(f"blob scale: unexpected {first.data_type.name} buffer")
    bias = r.rawbuffer("blob scale bias")
    if scale.data_type != DataType.FLOAT:
        raise r.error(f"blob scale: scales must be FLOAT, got {scale.data_type.name}")
    if zero_point is not None and zero_point.size != scale.size:
        raise r.error(f"blob scale: {zero_point.size} zero points for {scale.size} scales")
    return BlobScale(scale.data, None if zero_point is None else zero_point.data,
                     bias.data.astype("int32") if bias.size else None)


def _check_resources(graph: Graph, path: str | None) -> None:
    for layer in graph.layers:
        kind = layer.kind
        res = graph.resources.get(layer.name)
        where = dict(path=path, layer=layer.name, layer_type=layer.proto_type)
        if res is None:
            if kind.requires_resource(layer) and not (
                    set(layer.inputs) & set(graph.constants)):
                raise FormatError("the model file has no weights for this layer", **where)
            continue
        problem = kind.check_resource(layer.params, res)
        if problem:
            raise FormatError(f"model does not match the proto: {problem}", **where)


def _blob_scale_buffers(bs: BlobScale) -> list[RawBuffer]:
    magic = MAGIC_V2 if bs.zero_point is not None else MAGIC_V1
    bufs = []
    if bs.zero_point is not None:
        bufs.append(RawBuffer(bs.zero_point, DataType.INT8, (), magic))
    bufs.append(RawBuffer(bs.scale, DataType.FLOAT, (), magic))
    bufs.append(RawBuffer(bs.bias, DataType.INT32, (), magic))
    return bufs


def format_model(graph: Graph) -> bytes:
    """Write the resources of ``graph`` as .tnnmodel bytes in ModelPacker order (spec §2.8)."""
    records: list[tuple[int, str, str, object]] = []
    written_scales: set[str] = set()

    def add_scales(blobs: list[str]) -> None:
        for b in blobs:
            if b in graph.blob_scales and b not in written_scales:
                written_scales.add(b)
                records.append((BLOB_SCALE_ENUM, BLOB_SCALE_TYPE, b + SCALE_SUFFIX,
                                graph.blob_scales[b]))

    for layer in graph.layers:
        if layer.quantized:
            add_scales(layer.inputs)
        if layer.name in graph.resources:
            records.append((layer.kind.enum, layer.type, layer.name, graph.resources[layer.name]))
        if layer.quantized:
            add_scales(layer.outputs)

    w = BinWriter()
    if graph.format.model_magic:
        w.u32(MAGIC_V2)
    w.i32(len(records))
    for enum, type_str, name, payload in records:
        w.i32(enum)
        w.string(type_str)
        w.string(name)
        if isinstance(payload, BlobScale):
            for buf in _blob_scale_buffers(payload):
                w.rawbuffer(buf)
        else:
            payload.write(w)
    if graph.constants or graph.format.empty_constant_map:
        w.u32(MAGIC_V2)
        w.i32(len(graph.constants))
        for key in sorted(graph.constants):
            w.string(key)
            w.rawbuffer(graph.constants[key])
    return w.getvalue()
