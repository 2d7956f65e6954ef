"""The .tnnmodel binary codec (spec model-format §2).

Reading checks the whole file is consumed and that every resource fits its layer; writing
follows ModelPacker's record order (spec §2.8), so files written by TNN round-trip exactly.
"""
from __future__ import annotations

import numpy as np

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
    if not data:
        raise r.error("not a TNN model: the file is empty", 0)
    if len(data) < 8:
        raise r.error(f"not a TNN model: the file has only {len(data)} bytes", 0)
    magic = r.u32()
    graph.format.model_magic = magic in (MAGIC_V1, MAGIC_V2)
    if not graph.format.model_magic:
        r.pos = 0   # very old files start with the record count (spec §2.3)
    count = r.i32("the record count") & 0x1FFFFFFF
    if count >= MAX_RECORDS:
        if not graph.format.model_magic:
            raise r.error(f"not a TNN model: it does not start with the magic number "
                          f"0x{MAGIC_V2:08X} and {count} is not a record count", 0)
        raise r.error(f"record count {count} is too large (TNN accepts < {MAX_RECORDS})", 4)

    layers = {layer.name: layer for layer in graph.layers}
    record_at: dict[str, int] = {}
    for index in range(count):
        r.layer = r.layer_type = None
        start = r.pos
        header = f"the header of record {index} of {count}"
        type_enum = r.i32(header)
        if not 0 <= type_enum <= MAX_RECORDS:
            raise r.error(f"record {index}: bad layer type number {type_enum}", start)
        first = r.string(header)
        if first in LAYERS or first == BLOB_SCALE_TYPE:
            type_str, name = first, r.string(f"the name of {first} record {index}")
        else:  # legacy header: the integer is the type, the string the name (spec §2.4)
            name = first
            type_str = BLOB_SCALE_TYPE if type_enum == BLOB_SCALE_ENUM else None
            if type_str is None:
                kind = LAYERS_BY_ENUM.get(type_enum)
                if kind is None:
                    raise r.error(f"record {index} '{name}': unsupported layer type number "
                                  f"{type_enum}", start)
                type_str = kind.names[0]
        r.layer, r.layer_type = name, type_str
        if name in record_at:
            raise r.error(f"a second record with this name (the first is at byte "
                          f"{record_at[name]})", start)
        record_at[name] = start
        if type_str == BLOB_SCALE_TYPE:
            if not name.endswith(SCALE_SUFFIX) or name == SCALE_SUFFIX:
                raise r.error(f"a blob-scale record must be named '<blob>{SCALE_SUFFIX}'", start)
            graph.blob_scales[name[:-len(SCALE_SUFFIX)]] = _read_blob_scale(r)
            continue
        kind = LAYERS.get(type_str)
        if kind.Resource is None:
            raise r.error(f"layer type {type_str} has no resource payload", start)
        layer = layers.get(name)
        if layer is not None and layer.kind.Resource is not kind.Resource:
            raise r.error(f"the model's {type_str} record does not fit the proto's "
                          f"{layer.proto_type} layer of this name", start)
        graph.resources[name] = kind.Resource.read(r)

    r.layer = r.layer_type = None
    has_constant_map = r.remaining >= 4
    if has_constant_map:
        r.u32("the constant-map magic")
        n_at = r.pos
        n = r.i32("the constant count")
        if n < 0:
            raise r.error(f"bad constant count {n}", n_at)
        graph.format.empty_constant_map = n == 0
        for index in range(n):
            key = r.string(f"the name of constant {index} of {n}")
            graph.constants[key] = r.rawbuffer(f"constant '{key}'")
    if r.remaining:
        raise r.error(f"{r.remaining} unexpected bytes after the "
                      f"{'constant map' if has_constant_map else 'last record'}")
    _check_resources(graph, path, record_at)
    _check_inputs(graph, path, None if has_constant_map else len(data))
    graph.model_path = path
    return graph


def _read_blob_scale(r: BinReader) -> BlobScale:
    """zero_point, scale, bias (current) or scale, bias (legacy); spec §2.5."""
    at = r.pos
    first = r.rawbuffer("zero points or scales")
    if first.data_type == DataType.INT8:
        if first.size == 0:   # TNN reads an empty buffer as FLOAT, i.e. as the scales
            raise r.error("empty zero-point buffer (TNN would misread it as the scales)", at)
        zero_point, scale_at = first, r.pos
        scale = r.rawbuffer("scales")
        if scale.data_type != DataType.FLOAT or scale.size != first.size:
            raise r.error(f"{first.size} zero points need as many FLOAT scales, got "
                          f"{scale.size} {scale.data_type.name} values", scale_at)
    elif first.data_type == DataType.FLOAT:
        zero_point, scale = None, first   # legacy: no zero points (spec int8 §10.3)
    else:
        raise r.error(f"expected INT8 zero points or FLOAT scales, got a "
                      f"{first.data_type.name} buffer", at)
    bias_at = r.pos
    bias = r.rawbuffer("bias")
    if bias.data_type not in (DataType.INT32, DataType.FLOAT):
        raise r.error(f"bias must be INT32, got {bias.data_type.name}", bias_at)
    bs = BlobScale(scale.data, None if zero_point is None else zero_point.data,
                   bias.data.astype(np.int32) if bias.size else None)
    # remembered so that an unchanged blob scale is written back byte for byte
    bs._file_buffers = [b for b in (zero_point, scale, bias) if b is not None]
    return bs


def _check_resources(graph: Graph, path: str | None, record_at: dict[str, int]) -> None:
    """Every layer that needs weights has them, and they fit its parameters."""
    orphans = [name for name in graph.resources
               if name not in {layer.name for layer in graph.layers}]
    for layer in graph.layers:
        kind = layer.kind
        res = graph.resources.get(layer.name)
        where = dict(path=path, layer=layer.name, layer_type=layer.proto_type)
        if res is None:
            if kind.requires_resource(layer) and not (
                    set(layer.inputs) & set(graph.constants)):
                hint = (f" (its records are for other layers, e.g. '{orphans[0]}': is it the "
                        f"model of another .tnnproto?)" if orphans else "")
                raise FormatError(f"the model file has no weights for this layer{hint}", **where)
            continue
        problem = kind.check_resource(layer.params, res)
        if problem:
            raise FormatError(f"model does not match the proto: {problem}",
                              offset=record_at.get(layer.name), **where)


def _check_inputs(graph: Graph, path: str | None, end_without_constants: int | None) -> None:
    """Every layer input is a network input, a layer output or a constant-map entry."""
    known = {spec.name for spec in graph.inputs} | set(graph.constants)
    for layer in graph.layers:
        known.update(layer.outputs)
    for layer in graph.layers:
        missing = [b for b in layer.inputs if b not in known]
        if not missing:
            continue
        what = (f"input blob '{missing[0]}' is not a network input, no layer produces it and "
                f"it is not in the constant map")
        if end_without_constants is not None:
            raise FormatError(f"the file ends without a constant map, but {what}",
                              path=path, offset=end_without_constants, layer=layer.name,
                              layer_type=layer.proto_type)
        raise FormatError(f"{what} of {path or 'the model'}", path=graph.proto_path,
                          line=layer.line, layer=layer.name, layer_type=layer.proto_type)


def _blob_scale_buffers(bs: BlobScale) -> list[RawBuffer]:
    stored = getattr(bs, "_file_buffers", None)
    if stored is not None:
        zp = stored[0].data if len(stored) == 3 else None
        scale, bias = stored[-2].data, stored[-1].data
        unchanged = ((zp is None) == (bs.zero_point is None)
                     and (zp is None or zp.tobytes() == bs.zero_point.tobytes())
                     and scale.tobytes() == bs.scale.tobytes()
                     and (bias.astype(np.int32).tobytes() == bs.bias.tobytes()
                          or (bias.size == 0 and not bs.bias.any())))
        if unchanged:
            return stored
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
