"""Build an ONNX model in memory and serialize it, without the ``onnx`` package.

``import onnx`` costs ~0.6 s on a 2-core machine (its ``ml_dtypes`` extension alone ~0.55 s),
more than all of ``quantization_cmd -b 0 -w 0`` on MobileNetV2 may take; onnxruntime only
needs the serialized bytes. This module writes the protobuf wire format of the few messages
a graph of plain operators needs (ModelProto, GraphProto, NodeProto, AttributeProto,
TensorProto, ValueInfoProto; field numbers from onnx.proto), and nothing else: the tests load
what it writes with ``onnx`` and check it.

    g = OnnxGraph()
    y = g.node("Relu", [x])                       # returns a fresh output name
    w = g.const(np.ones(3, np.float32))           # an initializer
    model_bytes = g.model([("x", np.float32, ("N", 3))], [("y", np.float32, ("N", 3))])
"""
from __future__ import annotations

import struct
from typing import Collection, Iterable, Sequence

import numpy as np

OPSET = 17          # ONNX operator set the layers export to
IR_VERSION = 8      # the IR version of opset 17

# TensorProto.DataType codes, one table both ways
ONNX_DTYPES: dict[np.dtype, int] = {
    np.dtype(np.float32): 1, np.dtype(np.uint8): 2, np.dtype(np.int8): 3,
    np.dtype(np.uint16): 4, np.dtype(np.int16): 5, np.dtype(np.int32): 6,
    np.dtype(np.int64): 7, np.dtype(np.bool_): 9, np.dtype(np.float16): 10,
    np.dtype(np.float64): 11, np.dtype(np.uint32): 12, np.dtype(np.uint64): 13,
}
NUMPY_DTYPES = {code: dtype for dtype, code in ONNX_DTYPES.items()}

# AttributeProto.AttributeType and the field holding each kind of value
_ATTR_FLOAT, _ATTR_INT, _ATTR_STRING, _ATTR_TENSOR, _ATTR_FLOATS, _ATTR_INTS = 1, 2, 3, 4, 6, 7


# --- protobuf wire format ----------------------------------------------------------------------
# Messages are lists of byte pieces, so that a model's weights are copied once, into the final
# bytes, rather than once per level of message nesting.

Pieces = list  # of bytes-like objects


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1        # negative int64 values take ten bytes, two's complement
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _int(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(int(value))


def _bytes(field: int, payload: bytes | str) -> bytes:
    if isinstance(payload, str):
        payload = payload.encode()
    return _key(field, 2) + _varint(len(payload)) + payload


def _message(field: int, pieces: Pieces) -> Pieces:
    """A length-delimited field holding the concatenation of ``pieces``."""
    return [_key(field, 2) + _varint(sum(len(p) for p in pieces)), *pieces]


def _packed_ints(field: int, values: Iterable[int]) -> bytes:
    return _bytes(field, b"".join(_varint(int(v)) for v in values))


# --- messages ----------------------------------------------------------------------------------

def _raw(array: np.ndarray) -> np.ndarray:
    """The array as raw_data holds it: contiguous, little-endian (itself when it already is)."""
    if array.dtype not in ONNX_DTYPES:
        raise TypeError(f"no ONNX type for {array.dtype}")
    return np.ascontiguousarray(array, array.dtype.newbyteorder("<"))


def _tensor(array: np.ndarray, name: str, external: bool = False) -> Pieces:
    """TensorProto pieces: dims, data_type, name, little-endian raw_data (the array's own
    memory, not a copy, when it is contiguous little-endian). ``external``: no data, a
    reference to memory the session is handed separately (data_location EXTERNAL)."""
    array = np.asarray(array)
    if array.dtype not in ONNX_DTYPES:
        raise TypeError(f"no ONNX type for {array.dtype}")
    head = _packed_ints(1, array.shape) + _int(2, ONNX_DTYPES[array.dtype]) + _bytes(8, name)
    if external:
        # external_data {key: "location", value: ...} (required, but nothing is read from it)
        location = _bytes(1, "location") + _bytes(2, "memory")
        return [head + _bytes(13, location) + _int(14, 1)]
    raw = _raw(array)
    return [head, _key(9, 2) + _varint(raw.nbytes), memoryview(raw).cast("B")]


def tensor_proto(array: np.ndarray, name: str) -> bytes:
    """A serialized TensorProto."""
    return b"".join(_tensor(array, name))


def _attribute(name: str, value) -> bytes:
    head = _bytes(1, name)
    if isinstance(value, np.ndarray):
        return head + _int(20, _ATTR_TENSOR) + _bytes(5, tensor_proto(value, ""))
    if isinstance(value, str):
        return head + _int(20, _ATTR_STRING) + _bytes(4, value)
    if isinstance(value, (bool, int, np.integer)):
        return head + _int(20, _ATTR_INT) + _int(3, int(value))
    if isinstance(value, (float, np.floating)):
        return head + _int(20, _ATTR_FLOAT) + _key(2, 5) + struct.pack("<f", value)
    values = list(value)
    if values and all(isinstance(v, (int, np.integer)) for v in values):
        return head + _int(20, _ATTR_INTS) + _packed_ints(8, values)
    floats = np.asarray(values, "<f4").tobytes()
    return head + _int(20, _ATTR_FLOATS) + _bytes(7, floats)


def _value_info(name: str, dtype, dims: Sequence[int | str | None] | None) -> bytes:
    """A typed value; ``dims``: ints, names of symbolic dims, None for an unknown dim; None for
    an unknown shape."""
    tensor = _int(1, ONNX_DTYPES[np.dtype(dtype)])
    if dims is not None:
        shape = b"".join(_bytes(1, b"" if d is None else _bytes(2, d) if isinstance(d, str)
                                else _int(1, d)) for d in dims)
        tensor += _bytes(2, shape)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor))


# --- graph builder -----------------------------------------------------------------------------

class OnnxGraph:
    """Nodes and initializers of one ONNX graph; names made here never collide."""

    def __init__(self) -> None:
        self.nodes: list[bytes] = []
        self.initializers: list[tuple[str, np.ndarray]] = []
        self._count = 0
        self.prefix = ""          # set per layer, so helper names say where they come from

    def copy(self) -> "OnnxGraph":
        """A graph to add nodes to without changing this one (arrays are shared)."""
        other = OnnxGraph()
        other.nodes, other.initializers = list(self.nodes), list(self.initializers)
        other._count, other.prefix = self._count, self.prefix
        return other

    def fresh(self, hint: str = "t") -> str:
        self._count += 1
        return f"{self.prefix}::{hint}{self._count}"

    def node(self, op: str, inputs: Sequence[str], outputs: Sequence[str] | str | int = 1,
             **attrs) -> str | list[str]:
        """Add a node; ``outputs`` gives names, or a count of fresh names. Returns the output
        name (a list when several). An input ``""`` is an omitted optional input."""
        if isinstance(outputs, int):
            names = [self.fresh(op.lower()) for _ in range(outputs)]
        else:
            names = [outputs] if isinstance(outputs, str) else list(outputs)
        body = b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in names)
        body += _bytes(3, self.fresh("node")) + _bytes(4, op)
        body += b"".join(_bytes(5, _attribute(k, v)) for k, v in attrs.items() if v is not None)
        self.nodes.append(body)
        return names[0] if len(names) == 1 else names

    def initializer(self, name: str, value: np.ndarray) -> None:
        """A named initializer (the array is kept, not copied, until ``model``)."""
        self.initializers.append((name, np.asarray(value)))

    def const(self, value, dtype=None, hint: str = "c") -> str:
        """An initializer holding ``value`` (a numpy array or a Python number/list)."""
        name = self.fresh(hint)
        self.initializer(name, np.asarray(value, dtype))
        return name

    def ints(self, values: Sequence[int]) -> str:
        """An int64 vector initializer (shapes, axes, pads of operators that take them as
        inputs)."""
        return self.const(np.asarray(values, np.int64).reshape(-1), hint="i")

    def large_initializers(self, min_bytes: int) -> dict[str, np.ndarray]:
        """Initializers of at least ``min_bytes``, as ``model(external=...)`` expects their
        data: contiguous little-endian arrays (the initializers themselves where possible)."""
        return {name: _raw(value) for name, value in self.initializers
                if value.nbytes >= min_bytes}

    def model(self, inputs: Sequence[tuple[str, object, Sequence[int | str | None]]],
              outputs: Sequence[tuple[str, object, Sequence[int | str | None]]],
              name: str = "tnnquant", external: Collection[str] = ()) -> bytes:
        """ModelProto bytes; ``inputs`` and ``outputs`` are (name, dtype, dims), a dim being an
        int, the name of a symbolic dim, or None when unknown. Initializers named in
        ``external`` are written without their data, which the session then takes from
        ``large_initializers`` arrays (onnxruntime's ``add_external_initializers``)."""
        graph: Pieces = [b"".join(_bytes(1, n) for n in self.nodes) + _bytes(2, name)]
        for init_name, value in self.initializers:
            graph += _message(5, _tensor(value, init_name, init_name in external))
        graph.append(b"".join(_bytes(11, _value_info(n, t, d)) for n, t, d in inputs)
                     + b"".join(_bytes(12, _value_info(n, t, d)) for n, t, d in outputs))
        opset = _bytes(1, "") + _int(2, OPSET)
        return b"".join([_int(1, IR_VERSION) + _bytes(2, "tnnquant"), *_message(7, graph),
                         _bytes(8, opset)])


EXTERNAL_BYTES = 4096   # initializers this large are handed to onnxruntime in place


def inference_session(g: OnnxGraph,
                      inputs: Sequence[tuple[str, object, Sequence[int | str | None]]],
                      outputs: Sequence[tuple[str, object, Sequence[int | str | None]]],
                      options):
    """An onnxruntime CPU session of ``g`` (``model`` arguments; ``options`` an
    ``ort.SessionOptions``). The large weights stay in this process's arrays: serialized into
    the model they were copied twice more while the session was built (MobileNetV2's
    calibration session: the process peaks at 143 MB with them in the model, 125 MB without),
    and onnxruntime optimizes external weights as it does its own."""
    import onnxruntime as ort

    weights = g.large_initializers(EXTERNAL_BYTES)
    values = [ort.OrtValue.ortvalue_from_numpy(a) for a in weights.values()]
    if weights:
        options.add_external_initializers(list(weights), values)
    session = ort.InferenceSession(g.model(inputs, outputs, external=weights), options,
                                   providers=["CPUExecutionProvider"])
    session.tnnquant_weights = values   # read in place: they must live as long as the session
    return session
