"""Reading an ONNX file into the small, plain graph the converter's passes and mappings use.

Everything a hostile file could make large is bounded before it is allocated: the file itself,
the node and tensor counts, each tensor's element count against the bytes that hold it, and
external-data files (which must lie in the model's folder).
"""
from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ...errors import FormatError
from ...formats.rawbuffer import DataType
from ...ir.graph import InputSpec

MAX_FILE_BYTES = 2**31 - 1        # protobuf cannot parse a larger message anyway
MAX_NODES = 200_000
MAX_TENSOR_ELEMENTS = 1 << 30      # 4 GiB of float32
MAX_RANK = 8
MIN_OPSET = 6   # opset 6: PyTorch 0.3 and Caffe2 exports (legacy_broadcast rewrites them)

# ONNX element type -> (numpy dtype, TNN input data type)
INPUT_TYPES = {1: DataType.FLOAT, 10: DataType.HALF, 6: DataType.INT32, 7: DataType.INT32}


@dataclass
class Node:
    """One ONNX node, attributes as plain Python values (strings decoded)."""

    op: str
    name: str                 # TNN's layer name: the node's name, else its first output
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    domain: str = ""
    proto: Any = field(default=None, repr=False)   # the NodeProto read (None for fused nodes)


@dataclass
class OnnxGraph:
    nodes: list[Node]
    consts: dict[str, np.ndarray]        # initializers and Constant outputs, by name
    inputs: list[InputSpec]
    outputs: list[str]
    shapes: dict[str, tuple[int, ...]]   # static shapes found by ONNX shape inference
    opset: int
    path: str
    # what re-running shape inference needs: the inputs' ValueInfoProtos (dims fixed) and the
    # model's operator-set imports
    input_values: list[Any] = field(default_factory=list, repr=False)
    opset_imports: list[Any] = field(default_factory=list, repr=False)

    def consumers(self, blob: str) -> list[Node]:
        return [n for n in self.nodes if blob in n.inputs]

    def replace_blob(self, old: str, new: str) -> None:
        """Every reader of ``old`` reads ``new`` instead (graph outputs keep their name: the
        caller renames the producer's output when ``old`` is a graph output)."""
        for n in self.nodes:
            n.inputs = [new if b == old else b for b in n.inputs]


def read_onnx(path: str | os.PathLike,
              input_shapes: Mapping[str, Sequence[int]] | None = None) -> OnnxGraph:
    """Parse, check and shape-infer an ONNX file; raises FormatError with one line."""
    import onnx
    from onnx import external_data_helper

    path = Path(path)
    where = str(path)

    def fail(message: str) -> FormatError:
        return FormatError(message, path=where)

    try:
        size = path.stat().st_size
    except OSError as err:
        raise fail(f"cannot read ONNX file: {err.strerror}") from None
    if path.is_dir():
        raise fail("is a directory, expected an ONNX file")
    if size == 0:
        raise fail("not an ONNX model: the file is empty")
    if size > MAX_FILE_BYTES:
        raise fail(f"ONNX file of {size} bytes is larger than protobuf's 2 GiB limit (keep "
                   f"large weights as external data)")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise fail(f"cannot read ONNX file: {err.strerror}") from None
    if data[:1] == b'"':
        raise fail("this is a TNN .tnnproto, not an ONNX model")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as err:   # protobuf's DecodeError and friends
        raise fail(f"not an ONNX model (protobuf: {_short(err)})") from None
    del data
    if not model.HasField("graph") or not model.graph.node:
        raise fail("not an ONNX model: it has no graph nodes")
    if len(model.graph.node) > MAX_NODES:
        raise fail(f"{len(model.graph.node)} nodes: more than the {MAX_NODES} supported")
    opsets = {o.domain: o.version for o in model.opset_import}
    opset = opsets.get("", opsets.get("ai.onnx"))
    if opset is None:
        raise fail("the model imports no version of the default ONNX operator set")
    if not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise fail(f"opset {opset} is not supported (ONNX opsets {MIN_OPSET} to "
                   f"{onnx.defs.onnx_opset_version()})")
    _check_names(model, fail)

    if any(external_data_helper.uses_external_data(t) for t in model.graph.initializer):
        _load_external_data(model, path.parent, fail)

    consts: dict[str, np.ndarray] = {}
    for tensor in model.graph.initializer:
        consts[text(tensor.name)] = tensor_to_array(tensor, fail)
    inputs = _input_specs(model, consts, input_shapes, fail)
    for spec in inputs:   # shape inference starts from the fixed input dims
        value = next(v for v in model.graph.input if text(v.name) == spec.name)
        dims = value.type.tensor_type.shape.dim
        for dim, n in zip(dims, spec.dims):
            dim.Clear()
            dim.dim_value = n
    nodes = [_node(n, i, fail) for i, n in enumerate(model.graph.node)]
    outputs = [text(o.name) for o in model.graph.output]
    input_values = [v for v in model.graph.input if text(v.name) in {i.name for i in inputs}]
    graph = OnnxGraph(nodes, consts, inputs, outputs, {}, opset, where, input_values,
                      list(model.opset_import))
    try:
        infer_shapes(graph, first=model)
    except Exception as err:
        raise fail(f"ONNX shape inference failed: {_short(err)}") from None
    return graph


def infer_shapes(graph: OnnxGraph, first: Any = None) -> None:
    """Run ONNX shape inference on the graph as it is now, adding the static shapes it finds.

    Large float constants go in as typed inputs without their data (inference serializes the
    whole model: twice the weights in memory and most of the time for a VGG; only small
    integer tensors feed its data propagation), and the IR version is the current one (IR 3
    wants initializers listed as graph inputs and inference ignores the others; runtimes
    accept them). ``first``: the ModelProto read, whose value_info and functions help the first
    inference, which must succeed. Run again after folding (a failure keeps the shapes found),
    a Reshape whose target was Shape -> Slice -> Cast -> Concat arithmetic, which ONNX's data
    propagation does not follow through Cast, has a constant target and everything after it
    gets a shape."""
    import onnx
    from onnx import helper, numpy_helper
    used = {b for n in graph.nodes for b in n.inputs}
    initializers, weights = [], []
    for name, value in graph.consts.items():
        if name not in used:
            continue
        if value.dtype.kind == "f" and value.size > 64:   # shape only, as in read_onnx
            weights.append(helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(value.dtype), list(value.shape)))
        else:
            initializers.append(numpy_helper.from_array(value, name))
    model = helper.make_model(
        helper.make_graph([n.proto for n in graph.nodes if n.proto is not None], "infer",
                          list(graph.input_values) + weights, [], initializers,
                          value_info=first.graph.value_info if first else None),
        opset_imports=graph.opset_imports, functions=first.functions if first else None)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:
        if first is not None:
            raise
        return   # the shapes found so far stay
    for name, shape in _static_shapes(inferred.graph).items():
        graph.shapes.setdefault(name, shape)


def tensor_to_array(tensor, fail) -> np.ndarray:
    """numpy value of a TensorProto, its element count checked against the bytes it holds."""
    from onnx import helper, numpy_helper
    dims = tuple(tensor.dims)
    if len(dims) > MAX_RANK or any(d < 0 for d in dims):
        raise fail(f"tensor '{tensor.name}': invalid dims {list(dims)[:MAX_RANK + 1]}")
    count = int(np.prod(dims, dtype=np.float64)) if dims else 1
    if count > MAX_TENSOR_ELEMENTS:
        raise fail(f"tensor '{tensor.name}' has {count} elements (limit {MAX_TENSOR_ELEMENTS})")
    try:
        dtype = helper.tensor_dtype_to_np_dtype(tensor.data_type)
    except Exception:
        raise fail(f"tensor '{tensor.name}': unknown element type {tensor.data_type}") from None
    if tensor.HasField("raw_data"):
        held = len(tensor.raw_data) // max(dtype.itemsize, 1)
    else:
        held = max(len(tensor.float_data), len(tensor.int32_data), len(tensor.int64_data),
                   len(tensor.double_data), len(tensor.uint64_data), len(tensor.string_data))
    if held != count:
        raise fail(f"tensor '{tensor.name}': dims {list(dims)} need {count} values, the file "
                   f"holds {held}")
    try:
        return numpy_helper.to_array(tensor)
    except Exception as err:
        raise fail(f"tensor '{tensor.name}': {_short(err)}") from None


def _load_external_data(model, base: Path, fail) -> None:
    from onnx import external_data_helper
    base = base.resolve()
    for tensor in model.graph.initializer:
        if not external_data_helper.uses_external_data(tensor):
            continue
        info = {text(e.key): text(e.value) for e in tensor.external_data}
        location = info.get("location", "")
        target = (base / location).resolve()
        if not location or Path(location).is_absolute() or base not in target.parents:
            raise fail(f"tensor '{tensor.name}': external data '{location}' must be a file in "
                       f"the model's folder")
        try:
            file_size = target.stat().st_size
            offset = int(info.get("offset", 0))
            length = int(info.get("length", file_size - offset))
        except (OSError, ValueError) as err:
            raise fail(f"tensor '{tensor.name}': external data '{location}': "
                       f"{getattr(err, 'strerror', None) or err}") from None
        if offset < 0 or length < 0 or offset + length > file_size:
            raise fail(f"tensor '{tensor.name}': external data '{location}' has "
                       f"{file_size} bytes, the tensor asks for {length} at offset {offset}")
        try:
            external_data_helper.load_external_data_for_tensor(tensor, str(base))
        except Exception as err:
            raise fail(f"tensor '{tensor.name}': external data '{location}': "
                       f"{_short(err)}") from None
        del tensor.external_data[:]
        tensor.data_location = 0


def _input_specs(model, consts: dict[str, np.ndarray],
                 input_shapes: Mapping[str, Sequence[int]] | None, fail) -> list[InputSpec]:
    """Network inputs (graph inputs that are not initializers) with static dims: a dynamic
    first (batch) dim becomes 1 as onnx2tnn does; any other dynamic dim needs --input-shape."""
    import onnx
    given = dict(input_shapes or {})
    specs: list[InputSpec] = []
    dynamic: list[str] = []
    names = [text(v.name) for v in model.graph.input if text(v.name) not in consts]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise fail(f"--input-shape names '{unknown[0]}', which is not an input of the model "
                   f"(inputs: {', '.join(names)})")
    for value in model.graph.input:
        name = text(value.name)
        if name in consts:
            continue
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type not in INPUT_TYPES:
            kind = (onnx.TensorProto.DataType.Name(tensor_type.elem_type)
                    if tensor_type.elem_type in onnx.TensorProto.DataType.values()
                    else tensor_type.elem_type)
            raise fail(f"input '{name}' has element type {kind}; TNN inputs are float, half "
                       f"or int32 (int64 is read as int32)")
        if name in given:
            dims = tuple(int(d) for d in given[name])
            if not dims or any(d <= 0 for d in dims):
                raise fail(f"--input-shape {name}: dims must be positive, got "
                           f"{','.join(map(str, dims))}")
        else:
            if not tensor_type.HasField("shape"):
                dynamic.append(f"{name} [unknown rank]")
                continue
            raw = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else
                   (d.dim_param or "?") for d in tensor_type.shape.dim]
            if raw and not isinstance(raw[0], int):
                raw[0] = 1   # onnx2tnn runs a dynamic batch as 1
            if any(not isinstance(d, int) for d in raw):
                dynamic.append(f"{name} [{', '.join(map(str, raw))}]")
                continue
            dims = tuple(raw)
        if len(dims) > MAX_RANK:
            raise fail(f"input '{name}' has rank {len(dims)} (limit {MAX_RANK})")
        if int(np.prod(dims, dtype=np.float64)) > MAX_TENSOR_ELEMENTS:
            raise fail(f"input '{name}' dims {list(dims)} are too large")
        specs.append(InputSpec(name, dims, INPUT_TYPES[tensor_type.elem_type]))
    if dynamic:
        raise fail(f"dynamic input dims: {'; '.join(dynamic)}; fix them with --input-shape "
                   f"NAME:D0,D1,... (Python: input_shapes={{NAME: dims}})")
    if not specs:
        raise fail("the model has no input (every graph input is an initializer)")
    return specs


def _static_shapes(graph) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        t = value.type.tensor_type
        if not t.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
        if all(d >= 0 for d in dims):
            shapes[text(value.name)] = tuple(dims)
    return shapes


def _node(proto, index: int, fail) -> Node:
    from onnx import helper
    attrs = {}
    for attr in proto.attribute:
        try:
            value = helper.get_attribute_value(attr)
        except Exception as err:
            raise fail(f"node {index} ({proto.op_type}): attribute '{attr.name}': "
                       f"{_short(err)}") from None
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        elif attr.type == attr.TENSOR:
            value = tensor_to_array(value, fail)
        attrs[text(attr.name)] = value
    outputs = [text(b) for b in proto.output]
    op, name = text(proto.op_type), text(proto.name)
    if not outputs or not outputs[0]:
        raise fail(f"node {index} ({op} '{name}') has no output")
    return Node(op, name or outputs[0], [text(b) for b in proto.input], outputs, attrs,
                text(proto.domain), proto)


def _check_names(model, fail) -> None:
    """No name may hold a control character or a line break: TNN's proto could not hold it,
    and every message that names the node or blob would no longer be one line."""
    graph = model.graph
    names = [v.name for v in list(graph.input) + list(graph.output)]
    names += [t.name for t in graph.initializer]
    names += [b for n in graph.node for b in (n.name, *n.input, *n.output)]
    for name in map(text, names):
        if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in name):
            raise fail(f"the name {name!r} holds a control character or a line break")


def text(value: str | bytes) -> str:
    """A protobuf string field; one that is not valid UTF-8 comes back as bytes, kept here
    with surrogate escapes as tnnquant's TNN reader keeps such names."""
    return value if isinstance(value, str) else value.decode("utf-8", "surrogateescape")


def _short(err: Exception) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:160] + "…"
