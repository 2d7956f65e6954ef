"""Models built in memory, written with save_model, read back with load_model: every field
survives, and a second write gives the same bytes (spec model-format §1, §2).

Covers every layer type of the catalog with non-default parameters, the variable-length
parameter lists, optional trailing parameters, quantized layers and int8 payloads (current and
legacy), blob scales, fp16 / bfloat16 weights, the constant map, v1 and v2 protos.
"""
from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest

from tnnquant import load_model, save_model
from tnnquant.errors import FormatError
from tnnquant.formats.rawbuffer import MAGIC_V1, MAGIC_V2, DataType, RawBuffer
from tnnquant.formats.tnnmodel import format_model, read_model
from tnnquant.formats.tnnproto import format_proto, parse_proto
from tnnquant.ir.graph import BlobScale, FileFormat, Graph, InputSpec, Layer
from tnnquant.layers import LAYERS, resolve_type
from tnnquant.layers._resources import BatchNormResource, ConvResource, ElementResource
from tnnquant.layers.gather import GatherResource
from tnnquant.layers.inner_product import InnerProductResource
from tnnquant.layers.matmul import MatMulResource
from tnnquant.layers.prelu import PReLUResource
from tnnquant.layers.scale import ScaleResource
from tnnquant.testing import GraphBuilder

RNG = np.random.default_rng(0)


def f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def rb(array: np.ndarray, data_type: DataType | None = None, dims: bool = True) -> RawBuffer:
    """A buffer with its dims stored, like the converter writes float weights."""
    return RawBuffer.of(array, data_type, dims=np.shape(array) if dims else None)


def i8(n: int) -> RawBuffer:
    """int8 payload as the quantization tool writes it: no dims (spec §2.8)."""
    return RawBuffer.of(RNG.integers(-127, 128, n).astype(np.int8))


# --- helpers -------------------------------------------------------------------------------------

def roundtrip(graph: Graph, tmp_path) -> Graph:
    """save -> load; then check a second write reproduces the files byte for byte."""
    proto, model = tmp_path / "m.tnnproto", tmp_path / "m.tnnmodel"
    save_model(graph, proto, model)
    back = load_model(proto, model)
    assert format_proto(back) == proto.read_bytes()
    assert format_model(back) == model.read_bytes()
    return back


def make_layer(type_str: str, inputs: list[str], outputs: list[str], params: str = "") -> Layer:
    """A layer as the proto reader makes it (the Quantized prefix becomes the flag)."""
    kind, stored, quantized, dynamic = resolve_type(type_str)
    p, n_fields = kind.Params.parse(params.split())
    return Layer(stored, outputs[0] if outputs else type_str.lower(), inputs, outputs, p,
                 quantized=quantized, dynamic_range=dynamic, n_fields=n_fields)


def one_layer_graph(layer: Layer, resource=None, dims=(1, 3, 8, 8)) -> Graph:
    graph = Graph(inputs=[InputSpec(b, dims, DataType.FLOAT) for b in ("x", "y")
                          if b in layer.inputs] or [InputSpec("x", dims, DataType.FLOAT)],
                  outputs=list(layer.outputs), layers=[layer])
    if resource is not None:
        graph.resources[layer.name] = resource
    graph.blob_names = sorted(graph.referenced_blobs())
    return graph


def assert_buffer_equal(got: RawBuffer | None, want: RawBuffer | None) -> None:
    if want is None or got is None:
        assert got is want
        return
    assert got.data_type == want.data_type
    assert got.magic == want.magic
    # dims are stored only by MAGIC_V2 buffers that hold data (spec §2.1)
    assert got.dims == (want.dims if want.magic == MAGIC_V2 and want.size else ())
    assert got.data.dtype == want.data.dtype
    assert got.data.tobytes() == np.ascontiguousarray(want.data).tobytes()


def assert_resource_equal(got, want) -> None:
    assert type(got) is type(want)
    for f in dataclasses.fields(want):
        a, b = getattr(got, f.name), getattr(want, f.name)
        if isinstance(b, RawBuffer) or isinstance(a, RawBuffer):
            assert_buffer_equal(a, b)
        else:
            assert a == b, f.name


def assert_graph_equal(got: Graph, want: Graph) -> None:
    v1 = want.format.proto_magic == MAGIC_V1
    assert [(i.name, i.dims, None if v1 else i.data_type) for i in got.inputs] == \
        [(i.name, i.dims, None if v1 else i.data_type) for i in want.inputs]
    assert got.outputs == want.outputs
    assert got.blob_names == want.blob_names
    assert got.format.proto_magic == want.format.proto_magic
    assert got.format.model_magic == want.format.model_magic
    assert len(got.layers) == len(want.layers)
    for a, b in zip(got.layers, want.layers):
        assert (a.type, a.name, a.inputs, a.outputs, a.quantized, a.dynamic_range) == \
            (b.type, b.name, b.inputs, b.outputs, b.quantized, b.dynamic_range)
        assert a.params == b.params
        assert a.proto_type == b.proto_type
    # the writer stores only the resources of layers in the graph (spec §2.8)
    assert set(got.resources) == set(want.resources) & {lay.name for lay in want.layers}
    for name in got.resources:
        assert_resource_equal(got.resources[name], want.resources[name])
    assert set(got.constants) == set(want.constants)
    for key in got.constants:
        assert_buffer_equal(got.constants[key], want.constants[key])


# --- a GraphBuilder network ----------------------------------------------------------------------

def test_graphbuilder_network(tmp_path):
    b = GraphBuilder(seed=1)
    x = b.input("data", (1, 3, 16, 16))
    y = b.conv(x, 8, 3, stride=2, pad=1, activation=1)
    y = b.conv(y, 8, 3, pad=1, group=8, bias=False)
    y = b.layer("Pooling", y, "1 0 0 1 1 0 0 -1 -1 -1 0 0 0 0")
    y = b.layer("Flatten", y, "1")
    y = b.inner_product(y, 10, 8)
    y = b.layer("SoftmaxCaffe", y, "1")
    graph = b.build(y)
    back = roundtrip(graph, tmp_path)
    assert_graph_equal(back, graph)
    assert back.layers[0].params.activation_type == 1
    assert back.resources[back.layers[1].name].bias is None


# --- every layer type of the catalog -------------------------------------------------------------

def conv_case(params: str, filter_shape: tuple[int, ...]):
    out = filter_shape[0]
    return params, ["x"], lambda name: ConvResource(name, 1, rb(f32(*filter_shape)), rb(f32(out)))


def int8_conv(name: str, zero_point: bool = True) -> ConvResource:
    return ConvResource(name, 1, i8(4 * 3 * 9), RawBuffer.of(RNG.integers(-999, 999, 4)
                                                             .astype(np.int32)),
                        RawBuffer.of(np.zeros(4, np.int8)) if zero_point else None,
                        RawBuffer.of(RNG.random(4).astype(np.float32)))


def int8_fc(name: str, zero_point: bool = True) -> InnerProductResource:
    return InnerProductResource(name, i8(5 * 12), RawBuffer.of(np.arange(5, dtype=np.int32)),
                                RawBuffer.of(np.zeros(1, np.int8)) if zero_point else None,
                                RawBuffer.of(np.float32([0.25])))


BINARY = ("0", ["x"], lambda name: ElementResource(rb(f32(1, 3, 1, 1))))
# type string -> (params, inputs, resource factory); every type with a resource needs one
RESOURCE_CASES = {
    "Convolution": conv_case("2 3 4 3 3 2 2 1 1 1 -1 2 2 1", (4, 3, 3, 3)),
    "QuantizedConvolution": ("1 3 4 3 3 1 1 1 1 1 -1 1 1 1", ["x"], int8_conv),
    "DynamicRangeQuantizedConvolution": ("1 3 4 3 3 1 1 1 1 1 -1 1 1 0", ["x"],
                                         lambda n: int8_conv(n, zero_point=False)),
    "Deconvolution": conv_case("1 3 4 2 2 2 2 0 0 1 -1 1 1 0", (4, 3, 2, 2)),
    "Convolution1D": conv_case("1 3 4 3 1 1 1 1 -1 1 0", (4, 3, 3)),
    "Convolution3D": conv_case("1 3 4 3 3 3 1 1 1 1 1 1 1 -1 1 1 1 0", (4, 3, 3, 3, 3)),
    "BatchNormCxx": ("", ["x"], lambda n: BatchNormResource(rb(f32(3)), rb(f32(3)))),
    "InstBatchNormCxx": ("3 0.001", ["x"], lambda n: BatchNormResource(rb(f32(3)), rb(f32(3)))),
    "Scale": ("1 1 1", ["x"], lambda n: ScaleResource(n, 1, rb(f32(3)), rb(f32(3)))),
    "PReLU": ("0 0", ["x"], lambda n: PReLUResource("a_different_name", rb(f32(3)))),
    "InnerProduct": ("5 1 0 1", ["x"],
                     lambda n: InnerProductResource(n, rb(f32(5, 12)), rb(f32(5)))),
    "QuantizedInnerProduct": ("5 1 0 1", ["x"], int8_fc),
    "DynamicRangeQuantizedInnerProduct": ("5 1 0 1", ["x"],
                                          lambda n: int8_fc(n, zero_point=False)),
    "Add": BINARY, "Sub": BINARY, "Mul": BINARY, "Div": BINARY, "Maximum": BINARY,
    "Minimum": BINARY,
    "QuantizedAdd": ("-1", ["x", "y"], None),   # two blobs, no resource (spec §3.3.4)
    "BiasAdd": ("", ["x"], lambda n: ElementResource(rb(f32(3)))),
    "Const": ("4 1 3 1 1", [], lambda n: ElementResource(rb(f32(1, 3, 1, 1)))),
    "MatMul": ("1", ["x"], lambda n: MatMulResource(rb(f32(8, 5)))),
    "DynamicRangeQuantizedMatMul": ("1", ["x"], lambda n: MatMulResource(
        i8(40), RawBuffer.of(np.float32([0.5])))),
    "Gather": ("0 1 0", ["x"], lambda n: GatherResource(
        1, rb(f32(10, 4)), 0, None)),
    "DynamicRangeQuantizedGather": ("0 1 1", [], lambda n: GatherResource(
        1, i8(40), 1, rb(np.array([3, 1], np.int32)), RawBuffer.of(np.float32([0.1])))),
}


def non_default_words(params_cls) -> str:
    """A parameter line in which every field differs from its default."""
    words: list[str] = []
    for f, elem in params_cls._fields():
        kind = f.metadata.get("list")
        if kind == "counted":
            values = [3, -1, 2] * f.metadata["per_count"]
            words += ["3"] + [str(v) for v in values]
        elif kind == "rest":
            words += ["2", "-1", "3"]
        elif elem is float:
            words.append("%g" % (f.default + 0.375))
        else:
            words.append(str(f.default + 3))
    return " ".join(words)


ALL_TYPES = sorted(LAYERS)


@pytest.mark.parametrize("type_str", ALL_TYPES)
def test_every_layer_type(type_str, tmp_path):
    kind, stored, quantized, dynamic = resolve_type(type_str)
    case = RESOURCE_CASES.get(type_str) or RESOURCE_CASES.get(stored) \
        or RESOURCE_CASES.get(kind.names[0])
    if case is None:
        assert kind.Resource is None, f"add a round-trip case for {type_str} to RESOURCE_CASES"
        case = (non_default_words(kind.Params), ["x"], None)
    params, inputs, make = case
    layer = make_layer(type_str, inputs, ["out"], params)
    layer = layer.replace(name="layer_" + type_str)
    if case[2] is None and kind.Resource is None:
        for f, _ in kind.Params._fields():   # really non-default
            assert getattr(layer.params, f.name) != f.default, f.name
    graph = one_layer_graph(layer, make(layer.name) if make else None)
    back = roundtrip(graph, tmp_path)
    assert_graph_equal(back, graph)
    assert back.layers[0].proto_type == type_str
    assert back.layers[0].kind is kind


def test_catalog_enums():
    """spec §3.1: type strings and the enum written in record headers."""
    expected = {
        "Convolution": 1, "QuantizedConvolution": 1, "DynamicRangeQuantizedConvolution": 1,
        "BatchNormCxx": 2, "Pooling": 4, "ReLU": 5, "Split": 7, "Concat": 8, "Reshape": 9,
        "Flatten": 10, "Dropout": 11, "LRN": 12, "Scale": 16, "InnerProduct": 19,
        "Softmax": 21, "SoftmaxCaffe": 21, "Deconvolution": 22, "Sigmoid": 23, "Permute": 32,
        "PReLU": 35, "Add": 38, "Tanh": 39, "LeakyRelu": 40, "Abs": 41, "Mul": 42,
        "InstBatchNormCxx": 43, "Pad": 44, "Normalize": 45, "BiasAdd": 54,
        "StridedSlice": 57, "ShuffleChannel": 63, "Power": 69, "Const": 100, "Slice": 102,
        "Cast": 103, "Gather": 104, "MatMul": 105, "Sub": 108, "Squeeze": 118,
        "QuantizedMul": 124, "ReLU6": 125, "Elu": 132, "ReduceSum": 133, "Maximum": 137,
        "Minimum": 140, "Tile": 148, "Repeat": 148, "Upsample": 149, "SplitV": 153,
        "Unsqueeze": 164, "ReduceMean": 169, "Reformat": 170, "Clip": 171,
        "HardSigmoid": 172, "HardSwish": 173, "Div": 175, "ReduceMax": 177,
        "Convolution3D": 201, "Convolution1D": 203, "Expand": 304, "StridedSliceV2": 306,
        "PadV2": 316, "GroupNorm": 318, "LayerNorm": 326, "Swish": 401,
    }
    assert {name: LAYERS.get(name).enum for name in expected} == expected


# --- variable-length parameters ------------------------------------------------------------------

VARIABLE = [
    ("Reshape", "0 4 4 0 -1 1 1 0"),
    ("Reshape", "0 -1 3 0 0 -1 1"),                # reshape_type omitted (7 words)
    ("Permute", "4 0 2 3 1"),
    ("StridedSlice", "4 0 24 0 0 4 0 48 0 0 4 1 1 1 1"),
    ("StridedSliceV2", "2 0 1 2 2147483647 -1 2 2 3 2 1 -1"),
    ("StridedSliceV2", "1 0 1 4"),                 # axes and strides omitted
    ("SplitV", "1 3 16 16 32"),
    ("PadV2", "4 0 0 1 1 0 0 1 1 1 0.5"),
    ("PadV2", "2 1 2 3 4"),                        # type and value omitted
    ("ReduceMean", "1 2 3"),
    ("ReduceSum", "0"),                            # keep_dims only: no axes
    ("ReduceMax", "1 -1"),
    ("Squeeze", "2 2 3"),
    ("Unsqueeze", "1 0"),
    ("Expand", "4 1 3 8 8"),
    ("Tile", "1 1 2 2"),
    ("Tile", ""),
    ("Const", "4 1 3 1 1"),
    ("Const", "0"),
]


@pytest.mark.parametrize("type_str, words", VARIABLE)
def test_variable_length_params(type_str, words, tmp_path):
    kind = LAYERS.get(type_str)
    params, n_fields = kind.Params.parse(words.split())
    assert " ".join(params.format(n_fields)) == words
    inputs = [] if type_str == "Const" else ["x"]
    layer = make_layer(type_str, inputs, ["out"], words)
    res = ElementResource(rb(f32(1, 3, 1, 1))) if type_str == "Const" else None
    graph = one_layer_graph(layer, res)
    # the words survive a file round trip (n_fields comes from the proto reader)
    graph = parse_proto(format_proto(graph), "g.tnnproto")
    graph.resources = {layer.name: res} if res else {}
    back = roundtrip(graph, tmp_path)
    assert_graph_equal(back, graph)
    line = (tmp_path / "m.tnnproto").read_text().splitlines()[5]
    assert line == f'"{type_str} out {len(inputs)} 1 {" ".join(inputs + ["out"])} ' \
                   f'{words + " " if words else ""},"'


def test_counted_list_values():
    from tnnquant.layers.strided_slice_v2 import StridedSliceV2Params
    p, _ = StridedSliceV2Params.parse("2 0 1 2 2147483647 -1 2 2 3 2 1 -1".split())
    assert (p.begins, p.ends, p.axes, p.strides) == ((0, 1), (2147483647, -1), (2, 3), (1, -1))
    from tnnquant.layers.pad_v2 import PadV2Params
    p, _ = PadV2Params.parse("2 1 2 3 4 2 0.25".split())
    assert (p.pads, p.type, p.value) == ((1, 2, 3, 4), 2, 0.25)


# --- optional trailing parameters ----------------------------------------------------------------

HEADER = '"1 2 1 4206624772 ,"\n"x 4 1 3 8 8 0 ,"\n" out x ,"\n"out ,"\n" 1 ,"\n'


@pytest.mark.parametrize("type_str, words", [
    ("Convolution", "1 3 4 3 3 1 1 1 1 1 -1 1 1"),           # 13 words (no activation)
    ("Convolution", "1 3 4 3 3 1 1 1 1 1 -1 1 1 0"),         # 14, last one at its default
    ("Pooling", "1 0 0 1 1 0 0 -1 -1 -1 0"),                 # 11 (no adaptive fields)
    ("Upsample", "2 2 2"),
    ("Upsample", "2 2 2 1 16 16"),
    ("Normalize", "1 0.0001"),
    ("HardSwish", ""),
    ("HardSwish", "0.166667 0.5"),
    ("Add", ""),                                             # benchmark protos: no params
    ("Clip", "0 6"),
    ("Elu", ""),
    ("PReLU", "1"),
    ("Softmax", ""),
    ("Concat", "-1"),
    ("Power", "2"),
])
def test_trailing_params_kept_omitted(type_str, words):
    line = f'"{type_str} out 1 1 x out {words + " " if words else ""},"\n'
    data = (HEADER + line).encode()
    graph = parse_proto(data, "t.tnnproto")
    assert graph.layers[0].n_fields == len(words.split())
    assert format_proto(graph) == data


def test_changed_field_beyond_given_ones_is_written():
    data = (HEADER + '"Convolution out 1 1 x out 1 3 4 3 3 1 1 1 1 1 -1 1 1 ,"\n').encode()
    graph = parse_proto(data, "t.tnnproto")
    layer = graph.layers[0]
    graph.layers[0] = layer.replace(params=layer.params.replace(activation_type=2))
    assert format_proto(graph).decode().splitlines()[5] == \
        '"Convolution out 1 1 x out 1 3 4 3 3 1 1 1 1 1 -1 1 1 2 ,"'
    # a change inside the given fields keeps the 13-word form
    graph.layers[0] = layer.replace(params=layer.params.replace(stride_h=2))
    assert format_proto(graph).decode().splitlines()[5] == \
        '"Convolution out 1 1 x out 1 3 4 3 3 2 1 1 1 1 -1 1 1 ,"'
    # Pooling: setting the adaptive flag writes up to it, later fields stay omitted
    data = (HEADER + '"Pooling out 1 1 x out 1 0 0 1 1 0 0 -1 -1 -1 0 ,"\n').encode()
    graph = parse_proto(data, "t.tnnproto")
    layer = graph.layers[0]
    graph.layers[0] = layer.replace(params=layer.params.replace(output_w=7))
    assert format_proto(graph).decode().splitlines()[5].endswith(" -1 0 0 0 7 ,\"")


def test_float_params_printed_like_printf_g():
    from tnnquant.layers.clip import ClipParams
    p = ClipParams(min=np.float32(-3.4028235e38), max=1 / 6)
    assert p.format() == ["-3.40282e+38", "0.166667"]
    from tnnquant.layers.normalize import NormalizeParams
    assert NormalizeParams().format() == ["0", "1e-12", "1", "1", "2"]


def test_int_param_holding_a_float_is_refused():
    from tnnquant.layers.concat import ConcatParams
    assert ConcatParams(axis=np.float64(2.0)).format() == ["2"]
    with pytest.raises(ValueError):
        ConcatParams(axis=1.5).format()


# --- quantized layers, int8 payloads, blob scales ------------------------------------------------

def quantized_graph() -> Graph:
    layers = [
        make_layer("QuantizedConvolution", ["data"], ["c1"], "1 3 4 3 3 1 1 1 1 1 -1 1 1 1"),
        make_layer("ReLU", ["c1"], ["r1"]),
        make_layer("QuantizedConvolution", ["r1"], ["c2"], "1 4 4 3 3 1 1 1 1 1 -1 1 1 0"),
        make_layer("QuantizedAdd", ["c2", "r1"], ["sum"], "-1"),
        make_layer("QuantizedPooling", ["sum"], ["pool"], "1 0 0 1 1 0 0 -1 -1 -1 0 0 0 0"),
        make_layer("QuantizedInnerProduct", ["pool"], ["fc"], "5 1 0 1"),
    ]
    graph = Graph(inputs=[InputSpec("data", (1, 3, 8, 8), DataType.FLOAT)], outputs=["fc"],
                  layers=layers)
    graph.resources["c1"] = int8_conv("c1")
    graph.resources["c2"] = ConvResource(
        "c2", 1, i8(4 * 4 * 9), RawBuffer.of(np.arange(4, dtype=np.int32)),
        RawBuffer.of(np.zeros(1, np.int8)), RawBuffer.of(np.float32([0.125])))  # per-tensor
    fc = int8_fc("fc")
    graph.resources["fc"] = InnerProductResource("fc", i8(5 * 4), fc.bias, fc.zero_point,
                                                 fc.scale)
    per_channel = BlobScale(np.float32([0.5, 1, 2, 4]), np.zeros(4, np.int8))
    graph.blob_scales.update({
        "data": BlobScale(np.float32([0.02]), np.zeros(1, np.int8)),
        "c1": per_channel, "r1": per_channel,  # one object under two names (ReLU merge)
        "c2": BlobScale(np.float32([0.1, 0.2, 0.3, 0.4]), np.int8([0, 1, -1, 0]),
                        np.int32([0, 0, 0, 0])),
        "sum": BlobScale(np.float32([0.3])), "pool": BlobScale(np.float32([0.3])),
        "fc": BlobScale(np.float32([0.07] * 5)),
        "unused": BlobScale(np.float32([9.0])),   # touches no quantized layer: not written
    })
    graph.blob_names = sorted(graph.referenced_blobs())
    return graph


def assert_blob_scale_equal(got: BlobScale, want: BlobScale) -> None:
    assert got.scale.tobytes() == want.scale.tobytes()
    assert (got.zero_point is None) == (want.zero_point is None)
    assert got.zero_points.tobytes() == want.zero_points.tobytes()
    assert got.bias.tobytes() == want.bias.tobytes()


def test_quantized_model(tmp_path):
    graph = quantized_graph()
    back = roundtrip(graph, tmp_path)
    assert_graph_equal(back, graph)
    assert [lay.quantized for lay in back.layers] == [True, False, True, True, True, True]
    assert [lay.type for lay in back.layers][0] == "Convolution"
    assert set(back.blob_scales) == set(graph.blob_scales) - {"unused"}
    for name, bs in back.blob_scales.items():
        assert_blob_scale_equal(bs, graph.blob_scales[name])
    assert back.blob_scales["c1"].per_channel and not back.blob_scales["data"].per_channel
    # records in ModelPacker order (spec §2.8): input scales, the layer, output scales; each
    # blob scale once; the int8 record header carries the unprefixed type string
    data = (tmp_path / "m.tnnmodel").read_bytes()
    order = ["data_scale_data_", "c1", "c1_scale_data_", "r1_scale_data_", "c2",
             "c2_scale_data_", "sum_scale_data_", "pool_scale_data_", "fc", "fc_scale_data_"]
    offsets = [data.index(struct.pack("<i", len(n)) + n.encode()) for n in order]
    assert offsets == sorted(offsets)
    assert struct.unpack_from("<i", data, 4)[0] == len(order)
    assert b"unused" not in data
    assert struct.pack("<i", 1) + struct.pack("<i", 11) + b"Convolution" + \
        struct.pack("<i", 2) + b"c1" in data
    proto = (tmp_path / "m.tnnproto").read_text()
    assert '"QuantizedConvolution c1 1 1 data c1 ' in proto


def test_blob_scale_record_bytes_match_spec_example():
    """spec §2.8 gives the byte image of a 3-channel blob scale for blob 'data'."""
    graph = Graph(inputs=[InputSpec("data", (1, 3, 4, 4), DataType.FLOAT)], outputs=["r"],
                  layers=[make_layer("QuantizedReLU", ["data"], ["r"])])
    scales = np.float32([0.5, 0.25, 2.0])
    graph.blob_scales["data"] = BlobScale(scales, np.zeros(3, np.int8))
    data = format_model(graph)
    magic = bytes.fromhex("0400BCFA")
    expected = (bytes.fromhex("58020000") + bytes.fromhex("09000000") + b"BlobScale"
                + bytes.fromhex("10000000") + b"data_scale_data_"
                + magic + bytes.fromhex("02000000 03000000 00000000 000000")
                + magic + bytes.fromhex("00000000 0C000000 00000000") + scales.tobytes()
                + magic + bytes.fromhex("03000000 0C000000 00000000") + bytes(12))
    assert data == magic + struct.pack("<i", 1) + expected


def test_legacy_int8_payloads(tmp_path):
    """Older tool (spec int8 §10.3): MAGIC_V1 buffers, no dims, no zero points."""
    def v1(buf: RawBuffer) -> RawBuffer:
        return RawBuffer(buf.data, buf.data_type, (), MAGIC_V1)
    graph = quantized_graph()
    graph.format = FileFormat(proto_magic=MAGIC_V1)
    graph.inputs = [InputSpec("data", (1, 3, 8, 8))]
    for name in ("c1", "c2"):
        res = graph.resources[name]
        graph.resources[name] = ConvResource(name, 1, v1(res.filter), v1(res.bias), None,
                                             v1(res.scale))
    fc = graph.resources["fc"]
    graph.resources["fc"] = InnerProductResource("fc", v1(fc.weight), v1(fc.bias), None,
                                                 v1(fc.scale))
    graph.blob_scales = {name: BlobScale(bs.scale) for name, bs in graph.blob_scales.items()}
    back = roundtrip(graph, tmp_path)
    assert_graph_equal(back, graph)
    for name in ("c1", "c2", "fc"):
        assert back.resources[name].zero_point is None
    for name, bs in back.blob_scales.items():
        assert bs.zero_point is None and not bs.zero_points.any()
        assert_blob_scale_equal(bs, graph.blob_scales[name])
    assert MAGIC_V2.to_bytes(4, "little") not in (tmp_path / "m.tnnmodel").read_bytes()[4:]


def test_blob_scale_with_empty_bias_and_dims_written_back_unchanged(tmp_path):
    graph = quantized_graph()
    save_model(graph, tmp_path / "a.tnnproto", tmp_path / "a.tnnmodel")
    data = bytearray((tmp_path / "a.tnnmodel").read_bytes())
    # replace the bias of 'data_scale_data_' (INT32, 1 value, no dims) by an empty buffer
    start = data.index(b"data_scale_data_") + len(b"data_scale_data_")
    bias_at = start + (16 + 1) + (16 + 4)          # after the zero-point and scale buffers
    assert data[bias_at:bias_at + 20] == MAGIC_V2.to_bytes(4, "little") + struct.pack(
        "<iii", 3, 4, 0) + bytes(4)
    data[bias_at:bias_at + 20] = MAGIC_V2.to_bytes(4, "little") + struct.pack("<ii", 3, 0)
    graph2 = read_model(bytes(data), parse_proto((tmp_path / "a.tnnproto").read_bytes()))
    assert format_model(graph2) == bytes(data)
    # once changed, the blob scale is written in the current layout again: a 1-value INT32
    # bias with its ndims word (8 bytes more than the 12-byte empty buffer)
    graph2.blob_scales["data"] = BlobScale(np.float32([0.04]), np.zeros(1, np.int8))
    assert len(format_model(graph2)) == len(data) + 8


# --- fp16 / bfloat16 -----------------------------------------------------------------------------

def test_half_and_bfloat16_weights(tmp_path):
    halves = RNG.standard_normal(4 * 3 * 9).astype(np.float16).astype(np.float32)
    bf16 = (RNG.standard_normal(4).astype(np.float32).view(np.uint32) & 0xFFFF0000) \
        .view(np.float32)
    layer = make_layer("Convolution", ["x"], ["c"], "1 3 4 3 3 1 1 1 1 1 -1 1 1 0")
    res = ConvResource("c", 1, RawBuffer.of(halves, DataType.HALF, (4, 3, 3, 3)),
                       RawBuffer.of(bf16, DataType.BFP16, (4,)))
    graph = one_layer_graph(layer, res)
    back = roundtrip(graph, tmp_path)
    assert_graph_equal(back, graph)
    assert back.resources["c"].filter.data.dtype == np.float32   # widened for compute
    data = (tmp_path / "m.tnnmodel").read_bytes()
    assert halves.astype(np.float16).tobytes() in data
    assert (bf16.view(np.uint32) >> 16).astype("<u2").tobytes() in data


def test_half_weights_narrowed_by_truncation(tmp_path):
    values = np.float32([1 + 2**-11 + 2**-12, -(1 + 2**-11 + 2**-12), 1e5, -np.inf, 3e-8])
    layer = make_layer("Convolution", ["x"], ["c"], "1 1 5 1 1 1 1 0 0 0 -1 1 1 0")
    graph = one_layer_graph(layer, ConvResource("c", 0, RawBuffer.of(values, DataType.HALF)),
                            dims=(1, 1, 2, 2))
    back = roundtrip(graph, tmp_path)
    # round toward zero (np.float16 would round 1+3*2^-12 up), clamp to 65504, flush
    assert back.resources["c"].filter.data.tolist() == [1.0, -1.0, 65504.0, -65504.0, 0.0]


def test_half_inf_and_nan_payloads_survive_unchanged(tmp_path):
    """A HALF buffer read from a file is written back from its bytes while unchanged: the
    truncating conversion could not reproduce infinities or signalling NaN payloads."""
    bits = np.array([0x7C00, 0xFC00, 0x7C01, 0x7E00, 0x3C00], "<u2")
    buf = RawBuffer.decode(bits.tobytes(), DataType.HALF)
    assert not buf.data.flags.writeable
    layer = make_layer("Convolution", ["x"], ["c"], "1 1 5 1 1 1 1 0 0 0 -1 1 1 0")
    graph = one_layer_graph(layer, ConvResource("c", 0, buf), dims=(1, 1, 2, 2))
    back = roundtrip(graph, tmp_path)
    assert bits.tobytes() in (tmp_path / "m.tnnmodel").read_bytes()
    changed = back.resources["c"].filter
    changed.data = np.array(changed.data)   # a new array: converted again, like TNN's converter
    assert np.frombuffer(changed.encode_payload(), "<u2").tolist() == \
        [0x7BFF, 0xFBFF, 0x7E01, 0x7E00, 0x3C00]


# --- constant map, file layouts, names -----------------------------------------------------------

def test_constant_map(tmp_path):
    layer_mul = make_layer("Mul", ["x", "w"], ["m"], "-1")
    layer_reshape = make_layer("Reshape", ["m", "shape"], ["out"], "0 2 2 1 -1 0")
    graph = Graph(inputs=[InputSpec("x", (1, 4, 2, 2), DataType.FLOAT)], outputs=["out"],
                  layers=[layer_mul, layer_reshape])
    graph.constants = {"w": rb(f32(1, 4, 1, 1)),
                       "shape": rb(np.array([1, -1], np.int32)),
                       "half": RawBuffer.of(np.float32([0.5, 2]), DataType.HALF, (2,))}
    graph.blob_names = sorted(graph.referenced_blobs())
    back = roundtrip(graph, tmp_path)
    assert_graph_equal(back, graph)
    data = (tmp_path / "m.tnnmodel").read_bytes()
    # written in byte-wise sorted key order (spec §2.6)
    positions = [data.index(key) for key in (b"\x04\x00\x00\x00half", b"\x05\x00\x00\x00shape",
                                             b"\x01\x00\x00\x00w")]
    assert positions == sorted(positions)


def test_empty_constant_map_section_and_no_file_magic(tmp_path):
    """onnx2tnn's intermediate files always end with 'magic, 0'; very old files have no magic."""
    graph = one_layer_graph(make_layer("ReLU", ["x"], ["r"]))
    graph.format.empty_constant_map = True
    graph.format.model_magic = False
    back = roundtrip(graph, tmp_path)
    assert back.format.empty_constant_map and not back.format.model_magic
    assert (tmp_path / "m.tnnmodel").read_bytes() == struct.pack("<iIi", 0, MAGIC_V2, 0)
    graph.format = FileFormat()
    assert format_model(graph) == struct.pack("<Ii", MAGIC_V2, 0)   # ModelPacker: no section


def test_v1_and_v2_protos(tmp_path):
    layers = [make_layer("Concat", ["a", "b"], ["out"], "1")]
    v2 = Graph(inputs=[InputSpec("a", (1, 3, 4, 4), DataType.FLOAT),
                       InputSpec("b", (1, 2, 4, 4), DataType.INT32)], outputs=["out"],
               layers=layers, blob_names=["a", "b", "out"])
    back = roundtrip(v2, tmp_path)
    assert_graph_equal(back, v2)
    assert (tmp_path / "m.tnnproto").read_text().splitlines()[:2] == [
        f'"1 3 1 {MAGIC_V2} ,"', '"a 4 1 3 4 4 0 : b 4 1 2 4 4 3 ,"']
    v1 = dataclasses.replace(v2, inputs=[InputSpec("a", (1, 3, 4, 4)), InputSpec("b", (2, 4))],
                             format=FileFormat(proto_magic=MAGIC_V1))
    back = roundtrip(v1, tmp_path)
    assert_graph_equal(back, v1)
    assert [i.data_type for i in back.inputs] == [None, None]
    assert (tmp_path / "m.tnnproto").read_text().splitlines()[:2] == [
        f'"1 3 1 {MAGIC_V1} ,"', '"a 1 3 4 4 : b 2 4 ,"']


def test_empty_buffers_keep_their_type(tmp_path):
    """A zero-length RawBuffer is 12 bytes; TNN reads it as FLOAT (spec §2.1), we keep the
    stored type so the file is written back unchanged."""
    layer = make_layer("InnerProduct", ["x"], ["fc"], "2 0 0 1")
    res = InnerProductResource("fc", rb(f32(2, 12)), RawBuffer.of(np.zeros(0, np.int32)))
    back = roundtrip(one_layer_graph(layer, res, dims=(1, 3, 2, 2)), tmp_path)
    assert back.resources["fc"].bias.size == 0
    assert back.resources["fc"].bias.data_type == DataType.INT32
    assert (tmp_path / "m.tnnmodel").read_bytes().endswith(
        MAGIC_V2.to_bytes(4, "little") + struct.pack("<ii", 3, 0))


def test_non_utf8_names_roundtrip(tmp_path):
    name = b"conv\xff\xfe".decode("utf-8", errors="surrogateescape")
    layer = make_layer("Convolution", ["x"], [name], "1 3 4 1 1 1 1 0 0 0 -1 1 1 0")
    graph = one_layer_graph(layer, ConvResource(name, 0, rb(f32(4, 3, 1, 1))))
    back = roundtrip(graph, tmp_path)
    assert_graph_equal(back, graph)
    assert b"conv\xff\xfe" in (tmp_path / "m.tnnproto").read_bytes()


def test_resource_for_a_layer_not_in_the_graph_is_not_written():
    graph = one_layer_graph(make_layer("ReLU", ["x"], ["r"]))
    graph.resources["gone"] = ElementResource(rb(f32(3)))
    assert format_model(graph) == struct.pack("<Ii", MAGIC_V2, 0)


@pytest.mark.parametrize("bad_name, message", [
    ("a b", "contains ' '"), ("a,b", "contains ','"), ('a"b', "contains '\"'"),
    ("", "empty name"),
])
def test_writer_refuses_names_tnn_cannot_read(bad_name, message):
    graph = one_layer_graph(make_layer("ReLU", ["x"], ["r"]))
    graph.layers[0] = graph.layers[0].replace(name=bad_name)
    with pytest.raises(FormatError, match=message):
        format_proto(graph)


def test_writer_refuses_input_name_with_colon():
    graph = one_layer_graph(make_layer("ReLU", ["x:0"], ["r"]))
    graph.inputs = [InputSpec("x:0", (1, 3))]
    with pytest.raises(FormatError, match="contains ':'"):
        format_proto(graph)


def test_writer_refuses_records_tnn_would_truncate():
    words = " ".join(["4"] + ["1000000"] * 4)
    layer = make_layer("Tile", ["x"], ["t"], " ".join(["1000000"] * 600))
    with pytest.raises(FormatError, match="TNN reads only the first 4095"):
        format_proto(one_layer_graph(layer))
    format_proto(one_layer_graph(make_layer("Tile", ["x"], ["t"], words)))
