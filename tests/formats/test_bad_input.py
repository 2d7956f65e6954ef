"""Damaged and wrong inputs give one FormatError/TnnQuantError line that says where: file,
line or byte offset, layer. Never an IndexError, struct.error, UnicodeError, numpy error."""
from __future__ import annotations

import itertools
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tnnquant import load_model, load_proto, save_model
from tnnquant.errors import FormatError, TnnQuantError
from tnnquant.formats.rawbuffer import MAGIC_V2, DataType, RawBuffer
from tnnquant.formats.tnnmodel import format_model, read_model
from tnnquant.formats.tnnproto import format_proto, parse_proto
from tnnquant.ir.graph import BlobScale, Graph, InputSpec, Layer
from tnnquant.layers import resolve_type
from tnnquant.layers._resources import ConvResource, ElementResource

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"


def layer(type_str: str, inputs: list[str], outputs: list[str], params: str = "") -> Layer:
    kind, stored, quantized, dynamic = resolve_type(type_str)
    p, n = kind.Params.parse(params.split())
    return Layer(stored, outputs[0], inputs, outputs, p, quantized, dynamic, n)


def small_graph() -> Graph:
    """A quantized conv with blob scales, a ReLU, a Mul reading a constant, an Add with a
    constant resource: every kind of record and the constant map."""
    rng = np.random.default_rng(0)
    graph = Graph(
        inputs=[InputSpec("data", (1, 3, 4, 4), DataType.FLOAT)], outputs=["add1"],
        layers=[layer("QuantizedConvolution", ["data"], ["conv1"], "1 3 2 1 1 1 1 0 0 1 -1 1 1 0"),
                layer("ReLU", ["conv1"], ["relu1"]),
                layer("Mul", ["relu1", "k"], ["mul1"], "-1"),
                layer("Add", ["mul1"], ["add1"], "1")])
    graph.resources["conv1"] = ConvResource(
        "conv1", 1, RawBuffer.of(rng.integers(-127, 128, 6).astype(np.int8)),
        RawBuffer.of(np.int32([5, -7])), RawBuffer.of(np.zeros(2, np.int8)),
        RawBuffer.of(np.float32([0.5, 0.25])))
    graph.resources["add1"] = ElementResource(RawBuffer.of(np.float32([1, 2]), dims=(1, 2, 1, 1)))
    graph.blob_scales["data"] = BlobScale(np.float32([0.1]), np.zeros(1, np.int8))
    graph.blob_scales["conv1"] = BlobScale(np.float32([0.2, 0.3]), np.zeros(2, np.int8))
    graph.constants["k"] = RawBuffer.of(np.float32([3, 4]), dims=(1, 2, 1, 1))
    graph.blob_names = sorted(graph.referenced_blobs())
    return graph


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("small")
    save_model(small_graph(), d / "small.tnnproto", d / "small.tnnmodel")
    return d / "small.tnnproto", d / "small.tnnmodel"


def record_spans(model: bytes) -> list[tuple[str, str, int, int]]:
    """(type string, name, start, end) of every record and constant, found without the codec:
    by the known record headers in the order the writer emits them (spec §2.8)."""
    names = [("BlobScale", "data_scale_data_"), ("Convolution", "conv1"),
             ("BlobScale", "conv1_scale_data_"), ("Add", "add1")]
    starts = []
    for type_str, name in names:
        header = struct.pack("<i", len(type_str)) + type_str.encode() + \
            struct.pack("<i", len(name)) + name.encode()
        starts.append(model.index(header) - 4)
    const_map = model.index(struct.pack("<Ii", MAGIC_V2, 1) + struct.pack("<i", 1) + b"k")
    ends = starts[1:] + [const_map]
    return [(t, n, s, e) for (t, n), s, e in zip(names, starts, ends)] + \
        [("constant", "k", const_map + 8, len(model))]


def test_record_spans_cover_the_file(files):
    model = files[1].read_bytes()
    spans = record_spans(model)
    assert spans[0][2] == 8 and spans[-1][3] == len(model)


def test_truncated_model_at_every_cut_point(files, tmp_path):
    proto, model_path = files
    model = model_path.read_bytes()
    spans = record_spans(model)
    cut_file = tmp_path / "cut.tnnmodel"
    for cut in range(len(model)):
        cut_file.write_bytes(model[:cut])
        with pytest.raises(FormatError) as info:
            load_model(proto, cut_file)
        err = info.value
        message = str(err)
        assert "\n" not in message
        assert err.path == str(cut_file) and message.startswith(f"{cut_file}: byte ")
        assert err.offset is not None and 0 <= err.offset <= cut, (cut, message)
        for type_str, name, start, end in spans:
            header = 4 + 4 + len(type_str) + 4 + len(name)
            if type_str == "constant":
                if start + 4 + len(name) <= cut < end:
                    assert "constant 'k'" in message, (cut, message)
            elif start + header <= cut < end:    # inside the payload: names the record
                assert err.layer == name, (cut, message)
                assert f"'{name}'" in message
        if cut == spans[-1][2] - 8:   # the whole constant map cut off: the reader of 'k'
            assert err.layer == "mul1" and "constant map" in message, message


def test_model_with_every_byte_changed_never_crashes(files):
    """Single-byte damage anywhere: either still a valid model or a FormatError."""
    proto, model_path = files
    graph_bytes, model = proto.read_bytes(), model_path.read_bytes()
    outcomes = {"ok": 0, "error": 0}
    for pos, value in itertools.product(range(len(model)), (0x00, 0x01, 0x03, 0x7F, 0x80, 0xFF)):
        damaged = bytearray(model)
        damaged[pos] = value
        try:
            read_model(bytes(damaged), parse_proto(graph_bytes, "p"), "m")
            outcomes["ok"] += 1
        except TnnQuantError as err:
            assert err.path in ("m", "p"), str(err)
            assert err.offset is not None or err.layer is not None, str(err)
            outcomes["error"] += 1
    assert outcomes["error"] > 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_as_model(data):
    graph = parse_proto(format_proto(small_graph()), "p")
    try:
        read_model(data, graph, "m")
    except TnnQuantError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_damaged_proto_text_never_crashes(data):
    text = bytearray(format_proto(small_graph()))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(text) - 1))
        op = data.draw(st.sampled_from(["set", "delete", "insert"]))
        char = data.draw(st.sampled_from(list(b'" ,\n:-0123456789xQ\t\r\xff')))
        if op == "set":
            text[pos] = char
        elif op == "delete":
            del text[pos:pos + data.draw(st.integers(1, 20))]
        else:
            text[pos:pos] = bytes([char])
    try:
        graph = parse_proto(bytes(text), "p")
        read_model(format_model(small_graph()), graph, "m")
        format_proto(graph)
    except TnnQuantError:
        pass


# --- proto errors name file:line and the layer ---------------------------------------------------

HEADER = ('"1 3 1 4206624772 ,"\n"x 4 1 3 8 8 0 ,"\n" c r x ,"\n"r ,"\n" 1 ,"\n'
          '"ReLU r 1 1 c r ,"\n')


def proto_error(tmp_path, text: str | bytes) -> FormatError:
    path = tmp_path / "bad.tnnproto"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(FormatError) as info:
        load_proto(path)
    assert "\n" not in str(info.value)
    return info.value


@pytest.mark.parametrize("conv_line, message", [
    ('"Convolution c 1 1 x c 1 3 4 3 3 1 1 1 1 1 -1 1 ,"',
     "Convolution 'c': expected 14 parameters (at least 13), got 12"),
    ('"Convolution c 1 1 x c 1 3 4 3 x 1 1 1 1 1 -1 1 1 ,"',
     "Convolution 'c': parameter 'kernel_w': expected an integer, got 'x'"),
    ('"InnerProduct c 1 1 x c 10 1 ,"', "InnerProduct 'c': expected 4 parameters, got 2"),
    ('"Clip c 1 1 x c 0 six ,"', "Clip 'c': parameter 'max': expected a number, got 'six'"),
    ('"Reshape c 1 1 x c 0 4 4 0 -1 ,"',
     "Reshape 'c': parameter 'shape': count 4 announces 4 values, but only 2 follow"),
    ('"Reshape c 1 1 x c 0 4 ,"', "Reshape 'c': expected at least 3 parameters, got 2"),
    ('"Permute c 1 1 x c -2 ,"', "parameter 'orders': negative count -2"),
    ('"Pooling c 1 1 x c 0 2 2 2 2 0 0 ,"',
     "Pooling 'c': expected 14 parameters (at least 11), got 7"),
    ('"Concat c 1 1 x c 99999999999 ,"', "'axis': 99999999999 does not fit in a 32-bit"),
    ('"Convolutoin c 1 1 x c 1 ,"',
     "layer 'c': unknown layer type 'Convolutoin' (did you mean 'Convolution'?)"),
    ('"QuantizedReLU6 c 1 1 x c ,"', "TNN has no Quantized form of ReLU6"),
    ('"Convolution c one 1 x c ,"', "Convolution 'c': input and output counts must be integers"),
    ('"Convolution c 2 1 x c ,"', "Convolution 'c': declares 2 inputs and 1 outputs but the "
                                  "line has only 2 words after the counts"),
    ('"Convolution c ,"', "Convolution 'c': the line ends before the input and output counts"),
])
def test_bad_layer_line(tmp_path, conv_line, message):
    text = HEADER.replace('"ReLU r 1 1 c r ,"\n', "") + conv_line + "\n" + \
        '"ReLU r 1 1 c r ,"\n'
    err = proto_error(tmp_path, text)
    assert str(err).startswith(f"{tmp_path / 'bad.tnnproto'}:6: ")
    assert message in str(err)
    assert err.line == 6 and err.layer == "c"


def test_error_line_number_counts_physical_lines(tmp_path):
    text = HEADER + '"ReLU a 1 1 r a ,"\n\n"Convolution b 1 1 a b 1 ,"\n'
    err = proto_error(tmp_path, text)
    assert err.line == 9 and err.layer == "b"


def test_duplicate_layer_name(tmp_path):
    err = proto_error(tmp_path, HEADER + '"ReLU r 1 1 r r2 ,"\n')
    assert str(err).endswith(":7: ReLU 'r': a second layer with this name")


@pytest.mark.parametrize("text, message", [
    ("", "not a TNN proto: the file is empty"),
    ('"\n"\n', "not a TNN proto: the file is empty"),
    ("hello world, this is text\n", "not a TNN proto: expected header, input, blob, output and "
                                    "layer-count records before the layers, found 2 record(s)"),
    (PNG, "not a TNN proto (binary data)"),
    (struct.pack("<Ii", MAGIC_V2, 0), "this is a .tnnmodel file; expected the .tnnproto"),
    (HEADER.replace("4206624772", "42"), ":1: not a TNN proto: header '1 3 1 42' lacks the magic"),
    (HEADER.replace("x 4 1 3 8 8 0", "x 4 1 3 8 0"), ":2: input 'x': rank 4 needs 4 dimensions "
                                                     "and a data type, got 4 numbers"),
    (HEADER.replace("x 4 1 3 8 8 0", "x 4 1 3 8 8 9"), ":2: input 'x': unknown data type 9"),
    (HEADER.replace("x 4 1 3 8 8 0", "x 4 1 3 a 8 0"), ":2: input 'x': dimensions must be"),
    (HEADER.replace("x 4 1 3 8 8 0", "x"), ":2: bad input 'x': expected a name and dimensions"),
    (HEADER.replace('"x 4 1 3 8 8 0 ,"', '"x 4 1 3 8 8 0 : x 4 1 3 8 8 0 ,"'),
     ":2: an input name appears twice"),
    (HEADER.replace('"r ,"', '" ,"'), ":4: the network has no outputs"),
    (HEADER.replace('"r ,"', '"r q ,"'), ":4: output 'q' is neither a network input nor produced"),
    (HEADER.replace('"r ,"', '"r  x ,"'), ":4: output '' is neither"),   # double space
    (HEADER + '"Tile t 1 1 r t ' + "1 " * 3000 + ',"\n',
     ":7: record is 6015 bytes long; TNN reads only the first 4095 bytes of a record"),
])
def test_bad_proto(tmp_path, text, message):
    err = proto_error(tmp_path, text)
    assert str(err).startswith(str(tmp_path / "bad.tnnproto"))
    assert message in str(err)


@pytest.mark.parametrize("layers, message", [
    ('"ReLU a 1 1 x r ,"\n',
     ":7: ReLU 'a': output blob 'r' is already produced by ReLU 'r' (line 6)"),
    ('"ReLU a 1 1 r x ,"\n', ":7: ReLU 'a': output blob 'x' is a network input"),
    ('"ReLU a 1 1 a a ,"\n', ":7: ReLU 'a': the graph has a cycle: a -> a"),
    ('"ReLU a 1 1 c2 a ,"\n"ReLU b 1 1 a b ,"\n"ReLU c 1 1 b c2 ,"\n',
     ":7: ReLU 'a': the graph has a cycle: a -> b -> c -> a"),
])
def test_blobs_with_two_producers_and_cycles(tmp_path, layers, message):
    """Rejected at load, naming the layer where it shows (spec model-format §1.7: every blob
    has one producer and TNN runs layers in file order)."""
    err = proto_error(tmp_path, HEADER + layers)
    assert message in str(err), str(err)


def test_layers_out_of_file_order_still_load(tmp_path):
    """A layer reading a blob a later line produces is no cycle: it loads (and runs in
    dependency order)."""
    path = tmp_path / "order.tnnproto"
    path.write_text(HEADER.replace('"ReLU r 1 1 c r ,"\n', '"ReLU r 1 1 a r ,"\n'
                                                          '"ReLU a 1 1 x a ,"\n'))
    graph = load_proto(path)
    assert [layer.name for layer in graph.topo_order()] == ["a", "r"]


@pytest.mark.parametrize("dims, message", [
    ("4 1 3 0 8", "input 'x': dims 1 3 0 8: every dimension must be at least 1"),
    ("4 1 -3 8 8", "input 'x': dims 1 -3 8 8: every dimension must be at least 1"),
    ("4 1 3 65536 65536", "input 'x': dims 1x3x65536x65536 make a tensor of 1.29e+10 elements; "
                          "TNN holds at most 2^31 - 1"),
])
def test_input_dims_that_no_tensor_can_hold(tmp_path, dims, message):
    err = proto_error(tmp_path, HEADER.replace("x 4 1 3 8 8 0", f"x {dims} 0"))
    assert ":2: " + message in str(err), str(err)


def test_long_blob_list_is_fine(tmp_path):
    """TNN ignores line 3 (spec §1.5), so its length does not matter: real files exceed 4095."""
    text = HEADER.replace('" c r x ,"', '"' + " c r x" * 1000 + ' ,"')
    path = tmp_path / "ok.tnnproto"
    path.write_text(text)
    load_proto(path)


def test_undecodable_bytes_are_kept(tmp_path):
    path = tmp_path / "latin.tnnproto"
    path.write_bytes(HEADER.replace("ReLU r", "ReLU r\xe9").encode("latin-1"))
    graph = load_proto(path)
    assert graph.layers[0].name == "r\udce9"
    assert format_proto(graph) == path.read_bytes()


# --- the model does not match the proto ----------------------------------------------------------

def model_error(tmp_path, graph: Graph, proto_graph: Graph | None = None) -> FormatError:
    """Write ``graph``'s model beside ``proto_graph``'s proto and load the pair."""
    proto, model = tmp_path / "p.tnnproto", tmp_path / "m.tnnmodel"
    proto.write_bytes(format_proto(proto_graph or graph))
    model.write_bytes(format_model(graph))
    with pytest.raises(FormatError) as info:
        load_model(proto, model)
    assert "\n" not in str(info.value)
    return info.value


def with_layer(graph: Graph, index: int, type_str: str, params: str) -> Graph:
    graph = graph.copy()
    old = graph.layers[index]
    graph.layers[index] = layer(type_str, old.inputs, old.outputs, params).replace(name=old.name)
    return graph


def test_filter_size_mismatch(tmp_path):
    graph = small_graph()
    proto_graph = with_layer(graph, 0, "QuantizedConvolution", "1 3 2 3 3 1 1 1 1 1 -1 1 1 0")
    err = model_error(tmp_path, graph, proto_graph)
    record = (tmp_path / "m.tnnmodel").read_bytes().index(b"\x0b\x00\x00\x00Convolution") - 4
    assert str(err) == (f"{tmp_path / 'm.tnnmodel'}: byte {record}: QuantizedConvolution 'conv1': "
                        f"model does not match the proto: filter has 6 values, the parameters "
                        f"need 2x3x3x3 = 54")


def test_bias_flag_mismatch(tmp_path):
    graph = small_graph()
    proto_graph = with_layer(graph, 0, "QuantizedConvolution", "1 3 2 1 1 1 1 0 0 0 -1 1 1 0")
    err = model_error(tmp_path, graph, proto_graph)
    assert "proto says bias=0 but the model says has_bias=1" in str(err)


def test_missing_weights_for_a_conv(tmp_path):
    graph = small_graph()
    del graph.resources["conv1"]
    err = model_error(tmp_path, graph)
    assert str(err) == (f"{tmp_path / 'm.tnnmodel'}: QuantizedConvolution 'conv1': the model "
                        f"file has no weights for this layer")


def test_model_of_another_proto(tmp_path):
    graph = small_graph()
    other = graph.copy()
    other.layers = [lay.replace(name=lay.name + "_x") for lay in other.layers]
    err = model_error(tmp_path, graph, other)
    assert "no weights for this layer (its records are for other layers, e.g. 'conv1': is it " \
           "the model of another .tnnproto?)" in str(err)


def test_record_type_mismatch(tmp_path):
    graph = small_graph()
    proto_graph = with_layer(graph, 3, "BatchNormCxx", "")
    err = model_error(tmp_path, graph, proto_graph)
    assert err.layer == "add1" and err.offset is not None
    assert "the model's Add record does not fit the proto's BatchNormCxx layer of this name" \
        in str(err)


def test_record_for_a_layer_without_resources(tmp_path):
    graph = small_graph()
    proto_graph = with_layer(graph, 3, "ReLU", "")
    err = model_error(tmp_path, graph, proto_graph)
    assert "the model's Add record does not fit the proto's ReLU layer" in str(err)


def test_missing_constant(tmp_path):
    graph = small_graph()
    graph.constants = {"other": graph.constants["k"]}
    err = model_error(tmp_path, graph)
    assert str(err) == (f"{tmp_path / 'p.tnnproto'}:8: Mul 'mul1': input blob 'k' is not a "
                        f"network input, no layer produces it and it is not in the constant "
                        f"map of {tmp_path / 'm.tnnmodel'}")


def patched_model(edit) -> bytes:
    data = bytearray(format_model(small_graph()))
    edit(data)
    return bytes(data)


def read_error(data: bytes) -> FormatError:
    with pytest.raises(FormatError) as info:
        read_model(data, parse_proto(format_proto(small_graph()), "p"), "m")
    return info.value


def test_int8_zero_points_without_matching_scales():
    def edit(data):   # conv1's scales: INT8 instead of FLOAT
        at = data.index(struct.pack("<Iii", MAGIC_V2, 0, 8), data.index(b"conv1"))
        data[at + 4:at + 8] = struct.pack("<i", 2)
    err = read_error(patched_model(edit))
    assert err.layer == "conv1"
    assert "filter: 2 zero points need as many FLOAT scales, got 8 INT8 values" in str(err)


def test_empty_int8_zero_point_buffer():
    """TNN would read it as the scales (spec §2.5) and then misparse the rest."""
    def edit(data):
        at = data.index(struct.pack("<Iii", MAGIC_V2, 2, 2), data.index(b"conv1") + 20)
        data[at:at + 8 + 4 + 4 + 2] = struct.pack("<Iii", MAGIC_V2, 2, 0)
    err = read_error(patched_model(edit))
    assert "empty zero-point buffer (TNN would misread it as the scales)" in str(err)


def test_empty_blob_scale_zero_point_buffer():
    def edit(data):
        at = data.index(b"data_scale_data_") + len(b"data_scale_data_")
        data[at:at + 17] = struct.pack("<Iii", MAGIC_V2, 2, 0)
    err = read_error(patched_model(edit))
    assert err.layer == "data_scale_data_" and err.layer_type == "BlobScale"
    assert "empty zero-point buffer" in str(err)


def test_crlf_proto_reads_like_lf(tmp_path):
    """CRs are trimmed as blanks (spec §1.2); the writer writes LF like ModelPacker."""
    lf = format_proto(small_graph())
    graph = parse_proto(lf.replace(b"\n", b"\r\n"), "crlf.tnnproto")
    assert format_proto(graph) == lf


def test_duplicate_record():
    graph = small_graph()
    data = bytearray(format_model(graph))
    start = data.index(struct.pack("<i", 3) + b"Add") - 4
    end = data.index(struct.pack("<Ii", MAGIC_V2, 1), start)
    record = data[start:end]
    data[start:start] = record
    data[4:8] = struct.pack("<i", 5)
    err = read_error(bytes(data))
    assert f"Add 'add1': a second record with this name (the first is at byte {start})" in str(err)


def test_trailing_bytes():
    err = read_error(format_model(small_graph()) + b"\x00\x01")
    assert str(err).endswith("2 unexpected bytes after the constant map")


@pytest.mark.parametrize("data, message", [
    (b"", "m: byte 0: not a TNN model: the file is empty"),
    (b"\x04\x00\xbc", "m: byte 0: not a TNN model: the file has only 3 bytes"),
    (PNG, "m: byte 0: not a TNN model: it does not start with the magic number 0xFABC0004 and "),
    (b"hello world, some text\n", "m: byte 0: not a TNN model: it does not start with the magic"),
    (struct.pack("<Ii", MAGIC_V2, 10000), "m: byte 4: record count 10000 is too large"),
    (struct.pack("<Iii", MAGIC_V2, 1, -5), "m: byte 8: record 0: bad layer type number -5"),
    (struct.pack("<Iiii", MAGIC_V2, 1, 1, -3), "m: byte 12: bad length -3 for the header of "
                                               "record 0 of 1"),
    (struct.pack("<Iiii", MAGIC_V2, 1, 999, 1) + b"z", "m: byte 8: record 0 'z': unsupported "
                                                       "layer type number 999"),
    (struct.pack("<Iiii", MAGIC_V2, 1, 5, 4) + b"ReLU" + struct.pack("<i", 1) + b"r",
     "m: byte 8: ReLU 'r': layer type ReLU has no resource payload"),
    (struct.pack("<Iiii", MAGIC_V2, 1, 600, 9) + b"BlobScale" + struct.pack("<i", 1) + b"r",
     "m: byte 8: BlobScale 'r': a blob-scale record must be named '<blob>_scale_data_'"),
])
def test_bad_model(data, message):
    err = read_error(data)
    assert str(err).startswith(message), str(err)


# --- files that are not there or not what they should be -----------------------------------------

def test_wrong_files(files, tmp_path):
    proto, model = files
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "dir").mkdir()
    cases = [
        ((tmp_path / "a.png", model), "a.png: not a TNN proto (binary data)"),
        ((proto, tmp_path / "a.png"), "a.png: byte 0: not a TNN model"),
        ((tmp_path / "empty", model), "empty: not a TNN proto: the file is empty"),
        ((proto, tmp_path / "empty"), "empty: byte 0: not a TNN model: the file is empty"),
        ((model, proto), "small.tnnmodel: this is a .tnnmodel file; expected the .tnnproto"),
        ((proto, proto), "small.tnnproto: this is a .tnnproto file; expected the .tnnmodel"),
        ((tmp_path / "nope.tnnproto", model),
         "nope.tnnproto: cannot read .tnnproto file: No such file or directory"),
        ((proto, tmp_path / "nope.tnnmodel"),
         "nope.tnnmodel: cannot read .tnnmodel file: No such file or directory"),
        ((tmp_path / "dir", model), "dir: is a directory, expected a .tnnproto file"),
        ((proto, tmp_path / "dir"), "dir: is a directory, expected a .tnnmodel file"),
    ]
    for (p, m), message in cases:
        with pytest.raises(TnnQuantError) as info:
            load_model(p, m)
        assert message in str(info.value) and "\n" not in str(info.value)


def test_unwritable_target_is_named_and_nothing_is_left(tmp_path):
    """A write that fails names the file asked for (not the temporary file beside it) and
    leaves neither file behind."""
    proto, model = tmp_path / "x.tnnproto", tmp_path / "missing" / "x.tnnmodel"
    with pytest.raises(TnnQuantError) as err:
        save_model(small_graph(), proto, model)
    assert str(err.value).startswith(f"{model}: cannot write: ")   # then the OS's reason
    assert list(tmp_path.iterdir()) == []
