"""The .tnnproto text codec (spec model-format §1).

Records are separated by commas; quotes and line feeds are cosmetic (§1.2). The reader keeps
each record's line number for error messages and, unlike TNN, never truncates a record.
"""
from __future__ import annotations

from ..errors import FormatError, TnnQuantError
from ..ir.graph import FileFormat, Graph, InputSpec, Layer
from ..layers import resolve_type
from .rawbuffer import MAGIC_V1, MAGIC_V2, DataType

_BLANK = bytes(range(0x21))


def _segments(data: bytes) -> list[tuple[int, str]]:
    """(line number, text) of each comma-separated record, quotes and LFs removed, trimmed."""
    out = []
    line = 1
    start = 0
    while True:
        comma = data.find(b",", start)
        raw = data[start:] if comma < 0 else data[start:comma]
        # the record's line is where its first non-blank, non-quote byte sits
        stripped = raw.lstrip(_BLANK + b'"')
        seg_line = line + raw[:len(raw) - len(stripped)].count(b"\n")
        text = raw.replace(b'"', b"").replace(b"\n", b"").strip(_BLANK)
        out.append((seg_line, text.decode("utf-8", errors="surrogateescape")))
        line += raw.count(b"\n")
        if comma < 0:
            return out
        start = comma + 1


def parse_proto(data: bytes, path: str | None = None) -> Graph:
    """Parse .tnnproto bytes into a Graph without resources."""
    def fail(message: str, line: int | None = None, **where) -> FormatError:
        return FormatError(message, path=path, line=line, **where)

    if data.startswith(b"\x00") or b"\x00" in data[:4096]:
        raise fail("not a TNN proto (binary data; is this the .tnnmodel?)")
    if not data.replace(b'"', b"").replace(b"\n", b""):
        raise fail("proto content is empty")
    segs = _segments(data)
    if len(segs) < 6:
        raise fail(f"not a TNN proto: expected header, input, blob, output and layer-count "
                   f"records before the layers, found {len(segs)} record(s)")

    line, header = segs[0]
    words = header.split(" ")
    try:
        magic = int(words[3]) & 0xFFFFFFFF if len(words) >= 4 else 0
    except ValueError:
        magic = 0
    if magic not in (MAGIC_V1, MAGIC_V2):
        raise fail(f"not a TNN proto: header '{header[:60]}' lacks the magic number "
                   f"{MAGIC_V2} (or {MAGIC_V1})", line)
    fmt = FileFormat(proto_magic=magic, header_words=(words[0], words[2]))

    line, text = segs[1]
    inputs = [_parse_input(piece.strip(), magic, lambda m: fail(m, line))
              for piece in text.split(":")]

    blob_names = [w for w in segs[2][1].split(" ") if w]
    outputs = segs[3][1].split(" ")
    if outputs == [""]:
        raise fail("the network has no outputs", segs[3][0])

    layers = []
    seen: set[str] = set()
    for line, text in segs[5:]:
        if not text:
            continue
        layer = _parse_layer(text, lambda m, **w: fail(m, line, **w))
        layer.line = line
        if layer.name in seen:
            raise fail("duplicate layer name", line, layer=layer.name, layer_type=layer.proto_type)
        seen.add(layer.name)
        layers.append(layer)
    return Graph(inputs=inputs, outputs=outputs, layers=layers, blob_names=blob_names,
                 format=fmt, proto_path=path)


def _parse_input(piece: str, magic: int, fail) -> InputSpec:
    words = [w.strip(" \t\r") for w in piece.split(" ")]
    if len(words) < 2 or not words[0]:
        raise fail(f"bad input description '{piece}': expected 'name dims…'")
    try:
        numbers = [int(w) for w in words[1:]]
    except ValueError:
        raise fail(f"bad input description '{piece}': dimensions must be integers") from None
    if magic == MAGIC_V1:
        return InputSpec(words[0], tuple(numbers))
    rank = numbers[0]
    if rank < 0 or len(numbers) < rank + 2:
        raise fail(f"bad input description '{piece}': rank {rank} needs {rank} dims and a "
                   f"data type")
    code = numbers[-1]
    if code not in DataType._value2member_map_:
        raise fail(f"input '{words[0]}': unknown data type {code}")
    return InputSpec(words[0], tuple(numbers[1:1 + rank]), DataType(code))


def _parse_layer(text: str, fail) -> Layer:
    words = [w for w in text.split(" ") if w]
    if len(words) < 4:
        raise fail(f"layer record '{text[:60]}' needs type, name, input and output counts")
    type_str, name = words[0], words[1]
    try:
        kind, stored, quantized, dynamic = resolve_type(type_str)
    except TnnQuantError as err:
        raise fail(err.message, layer=name) from None
    where = dict(layer=name, layer_type=type_str)
    try:
        n_in, n_out = int(words[2]), int(words[3])
    except ValueError:
        raise fail("input/output counts must be integers", **where) from None
    if n_in < 0 or n_out < 0 or 4 + n_in + n_out > len(words):
        raise fail(f"declares {n_in} inputs and {n_out} outputs but the line has only "
                   f"{len(words) - 4} names", **where)
    inputs = words[4:4 + n_in]
    outputs = words[4 + n_in:4 + n_in + n_out]
    try:
        params, n_fields = kind.Params.parse(words[4 + n_in + n_out:])
    except ValueError as err:
        raise fail(str(err), **where) from None
    return Layer(type=stored, name=name, inputs=inputs, outputs=outputs, params=params,
                 quantized=quantized, dynamic_range=dynamic, n_fields=n_fields)


def format_proto(graph: Graph) -> bytes:
    """Write a Graph as .tnnproto bytes (spec model-format §1.8 layout)."""
    magic = graph.format.proto_magic
    lines = [f"{graph.format.header_words[0]} {len(graph.blob_names)} "
             f"{graph.format.header_words[1]} {magic} "]
    pieces = []
    for spec in graph.inputs:
        words = [spec.name]
        if magic == MAGIC_V2:
            code = 0 if spec.data_type is None else int(spec.data_type)
            words += [str(len(spec.dims)), *map(str, spec.dims), str(code)]
        else:
            words += list(map(str, spec.dims))
        pieces.append(" ".join(words) + " ")
    lines.append(": ".join(pieces))
    lines.append("".join(" " + b for b in graph.blob_names) + " ")
    lines.append("".join(o + " " for o in graph.outputs))
    lines.append(f" {len(graph.layers)} ")
    for layer in graph.layers:
        words = [layer.proto_type, layer.name, str(len(layer.inputs)), str(len(layer.outputs)),
                 *layer.inputs, *layer.outputs, *layer.params.format(layer.n_fields)]
        lines.append("".join(w + " " for w in words))
    return "".join(f'"{text},"\n' for text in lines).encode("utf-8", errors="surrogateescape")
