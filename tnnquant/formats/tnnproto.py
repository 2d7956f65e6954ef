"""The .tnnproto text codec (spec model-format §1).

Records are separated by commas; quotes and line feeds are cosmetic (§1.2). The reader keeps
each record's line number for error messages. Where TNN would silently truncate a record
longer than 4095 bytes, reader and writer refuse it (except the blob list, which TNN ignores).
"""
from __future__ import annotations

import math

from ..errors import FormatError, TnnQuantError
from ..ir.graph import FileFormat, Graph, InputSpec, Layer
from ..layers import resolve_type
from .rawbuffer import MAGIC_V1, MAGIC_V2, DataType

_BLANK = bytes(range(0x21))
_BLANK_STR = _BLANK.decode("ascii")
MAX_RECORD = 4095   # TNN keeps only the first 4095 bytes of each record (spec §1.2)
MAX_INT = 2**31 - 1


def _segments(data: bytes) -> list[tuple[int, int, str]]:
    """(line number, length as TNN sees it, text) of each comma-separated record, quotes and
    LFs removed, blanks trimmed (spec §1.2)."""
    out = []
    line = 1
    start = 0
    while True:
        comma = data.find(b",", start)
        raw = data[start:] if comma < 0 else data[start:comma]
        # the record's line is where its first non-blank, non-quote byte sits
        stripped = raw.lstrip(_BLANK + b'"')
        seg_line = line + raw[:len(raw) - len(stripped)].count(b"\n")
        text = raw.replace(b'"', b"").replace(b"\n", b"")
        out.append((seg_line, len(text),
                    text.strip(_BLANK).decode("utf-8", errors="surrogateescape")))
        line += raw.count(b"\n")
        if comma < 0:
            return out
        start = comma + 1


def parse_proto(data: bytes, path: str | None = None) -> Graph:
    """Parse .tnnproto bytes into a Graph without resources."""
    def fail(message: str, line: int | None = None, **where) -> FormatError:
        return FormatError(message, path=path, line=line, **where)

    if data[:4] in (MAGIC_V1.to_bytes(4, "little"), MAGIC_V2.to_bytes(4, "little")):
        raise fail("this is a .tnnmodel file; expected the .tnnproto")
    if b"\x00" in data[:4096]:
        raise fail("not a TNN proto (binary data)")
    if not data.replace(b'"', b"").replace(b"\n", b"").strip(_BLANK):
        raise fail("not a TNN proto: the file is empty")
    segs = _segments(data)
    if len(segs) < 6:
        raise fail(f"not a TNN proto: expected header, input, blob, output and layer-count "
                   f"records before the layers, found {len(segs)} record(s)")
    for index, (line, length, _) in enumerate(segs):
        if length > MAX_RECORD and index != 2:   # TNN ignores the blob list (§1.5)
            raise fail(f"record is {length} bytes long; TNN reads only the first "
                       f"{MAX_RECORD} bytes of a record", line)

    line, _, header = segs[0]
    words = header.split(" ")
    try:
        magic = int(words[3]) & 0xFFFFFFFF if len(words) >= 4 else 0
    except ValueError:
        magic = 0
    if magic not in (MAGIC_V1, MAGIC_V2):
        raise fail(f"not a TNN proto: header '{_clip(header)}' lacks the magic number "
                   f"{MAGIC_V2} (or {MAGIC_V1})", line)
    fmt = FileFormat(proto_magic=magic, header_words=(words[0], words[2]))

    line, _, text = segs[1]
    inputs = [_parse_input(piece.strip(_BLANK_STR), magic, lambda m: fail(m, line))
              for piece in text.split(":")]
    names = [spec.name for spec in inputs]
    if len(set(names)) < len(names):
        raise fail("an input name appears twice", line)

    blob_names = [w for w in segs[2][2].split(" ") if w]
    line, _, text = segs[3]
    outputs = text.split(" ")
    if outputs == [""]:
        raise fail("the network has no outputs", line)

    layers = []
    seen: set[str] = set()
    for line, _, text in segs[5:]:
        if not text:
            continue
        layer = _parse_layer(text, lambda m, **w: fail(m, line, **w))
        layer.line = line
        if layer.name in seen:
            raise fail("a second layer with this name", line, layer=layer.name,
                       layer_type=layer.proto_type)
        seen.add(layer.name)
        layers.append(layer)

    produced = set(names).union(*(layer.outputs for layer in layers))
    for name in outputs:
        if name not in produced:
            raise fail(f"output '{name}' is neither a network input nor produced by a layer",
                       segs[3][0])
    graph = Graph(inputs=inputs, outputs=outputs, layers=layers, blob_names=blob_names,
                  format=fmt, proto_path=path)
    graph.check_structure()
    return graph


def _clip(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[:n] + "…"


def _parse_input(piece: str, magic: int, fail) -> InputSpec:
    words = [w.strip(_BLANK_STR) for w in piece.split(" ")]
    if len(words) < 2 or not words[0]:
        raise fail(f"bad input '{_clip(piece)}': expected a name and dimensions")
    name = words[0]
    try:
        numbers = [int(w) for w in words[1:]]
    except ValueError:
        raise fail(f"input '{name}': dimensions must be integers separated by single spaces, "
                   f"got '{_clip(' '.join(words[1:]))}'") from None
    if any(abs(n) > MAX_INT for n in numbers):
        raise fail(f"input '{name}': dimension out of range")
    if magic == MAGIC_V1:
        return InputSpec(name, _checked_dims(name, numbers, fail))
    rank = numbers[0]
    if rank < 0 or len(numbers) < rank + 2:   # TNN takes the last word as the type
        raise fail(f"input '{name}': rank {rank} needs {max(rank, 0)} dimensions and a data "
                   f"type, got {len(numbers) - 1} numbers")
    code = numbers[-1]
    if code not in DataType._value2member_map_:
        raise fail(f"input '{name}': unknown data type {code}")
    return InputSpec(name, _checked_dims(name, numbers[1:1 + rank], fail), DataType(code))


def _checked_dims(name: str, dims: list[int], fail) -> tuple[int, ...]:
    """Input dims TNN can hold: positive, and a tensor of fewer than 2^31 elements (TNN counts
    elements in an int)."""
    if any(d < 1 for d in dims):
        raise fail(f"input '{name}': dims {' '.join(map(str, dims))}: every dimension must be "
                   f"at least 1")
    if math.prod(dims) > MAX_INT:
        raise fail(f"input '{name}': dims {'x'.join(map(str, dims))} make a tensor of "
                   f"{math.prod(dims):.3g} elements; TNN holds at most 2^31 - 1")
    return tuple(dims)


def _parse_layer(text: str, fail) -> Layer:
    words = [w for w in (w.strip(_BLANK_STR) for w in text.split(" ")) if w]
    if len(words) < 2:
        raise fail(f"layer record '{_clip(text)}' needs a type, a name, and input and output "
                   f"counts")
    if len(words) < 4:
        raise fail("the line ends before the input and output counts", layer=words[1],
                   layer_type=words[0])
    type_str, name = words[0], words[1]
    try:
        kind, stored, quantized, dynamic = resolve_type(type_str)
    except TnnQuantError as err:
        raise fail(err.message, layer=name) from None
    where = dict(layer=name, layer_type=type_str)
    try:
        n_in, n_out = int(words[2]), int(words[3])
    except ValueError:
        raise fail(f"input and output counts must be integers, got '{_clip(words[2], 12)}' "
                   f"and '{_clip(words[3], 12)}'", **where) from None
    if n_in < 0 or n_out < 0 or 4 + n_in + n_out > len(words):
        raise fail(f"declares {n_in} inputs and {n_out} outputs but the line has only "
                   f"{len(words) - 4} words after the counts", **where)
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
    _check_names(graph)
    records = [text.encode("utf-8", errors="surrogateescape") for text in lines]
    for index, record in enumerate(records):
        if len(record) > MAX_RECORD and index != 2:
            what = f"layer '{graph.layers[index - 5].name}'" if index >= 5 else f"line {index + 1}"
            raise FormatError(f"cannot write {what}: its record would be {len(record)} bytes "
                              f"long and TNN reads only the first {MAX_RECORD}")
    return b"".join(b'"' + record + b',"\n' for record in records)


def _check_names(graph: Graph) -> None:
    """Names must survive TNN's tokenizer (spec §1.1-1.4): no quote, comma, blank or control
    character, and no ':' in input names."""
    def check(name: str, what: str, extra: str = "") -> None:
        if not name:
            raise FormatError(f"cannot write the proto: {what} has an empty name")
        bad = next((c for c in name if c in '",' + extra or ord(c) <= 0x20), None)
        if bad is not None:
            raise FormatError(f"cannot write the proto: {what} '{name}' contains {bad!r}, "
                              f"which TNN's proto reader treats as a separator")
    for spec in graph.inputs:
        check(spec.name, "input", ":")
    for name in graph.outputs:
        check(name, "output")
    for layer in graph.layers:
        check(layer.name, "layer")
        for blob in layer.inputs + layer.outputs:
            check(blob, f"a blob of layer '{layer.name}'")
