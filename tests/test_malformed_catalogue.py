"""The README's catalogue of malformed inputs: what was tried and what each gives. Every row is
run here, and the README's table must hold exactly these rows (``test_readme_lists_them``),
so the catalogue cannot drift. The random counterpart is tests/test_fuzz.py."""
from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

import tnnquant
from tnnquant.calib import inputs as inputs_module
from tnnquant.calib.inputs import list_samples, load_sample, read_input_file
from tnnquant.errors import TnnQuantError
from tnnquant.ir.graph import InputSpec
from test_fuzz import SAMPLE_SPEC, write_model

README = Path(__file__).resolve().parents[1] / "README.md"


@dataclass(frozen=True)
class Row:
    kind: str        # which file
    damage: str      # what was tried
    result: str      # what it gives: a fragment of the one-line error (or "warning: ...")
    run: Callable[[Path], None]


def edited_proto(old: str, new: str) -> Callable[[Path], None]:
    def run(folder: Path) -> None:
        text = (folder / "m.tnnproto").read_text()
        assert old in text, old
        (folder / "m.tnnproto").write_text(text.replace(old, new, 1))
        tnnquant.load_model(folder / "m.tnnproto", folder / "m.tnnmodel")
    return run


def edited_model(edit: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def run(folder: Path) -> None:
        (folder / "m.tnnmodel").write_bytes(edit((folder / "m.tnnmodel").read_bytes()))
        tnnquant.load_model(folder / "m.tnnproto", folder / "m.tnnmodel")
    return run


def sample_file(name: str, content: bytes | Callable[[], bytes]) -> Callable[[Path], None]:
    def run(folder: Path) -> None:
        samples = folder / "samples"
        samples.mkdir()
        (samples / name).write_bytes(content() if callable(content) else content)
        for sample in list_samples(samples, [SAMPLE_SPEC]):
            load_sample(sample, [SAMPLE_SPEC])
    return run


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=allow_pickle)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                              0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def huge_npy_header() -> bytes:
    """A valid .npy header claiming 10^7 samples, followed by one sample's data."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": "<f4", "fortran_order": False,
                                               "shape": (9999999, 3, 8, 8)})
    return out.getvalue() + np.zeros(192, np.float32).tobytes()


def memory_of(gib: float) -> Callable[[Path], None]:
    def run(folder: Path) -> None:
        spec = InputSpec("data", (1, 3, 20000, 20000))
        original = inputs_module.physical_memory
        inputs_module.physical_memory = lambda: int(gib * 2**30)
        try:
            read_input_file(folder / "photo.png", spec)
        finally:
            inputs_module.physical_memory = original
    return run


def cut_model(at: int) -> Callable[[bytes], bytes]:
    return lambda data: data[:at]


def with_int32(offset: int | Callable[[bytes], int], value: int) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        at = offset(data) if callable(offset) else offset
        return data[:at] + struct.pack("<i", value) + data[at + 4:]
    return edit


def filter_field(k: int) -> Callable[[bytes], int]:
    """Offset of word ``k`` (0 magic, 1 data type, 2 byte length) of conv1's filter buffer:
    after the record header, the resource's name string and its has_bias word."""
    def offset(data: bytes) -> int:
        name_end = data.index(b"conv1", data.index(b"conv1") + 5) + 5
        return name_end + 4 + 4 * k
    return offset


def empty_proto(folder: Path) -> None:
    (folder / "m.tnnproto").write_bytes(b"")
    tnnquant.load_proto(folder / "m.tnnproto")


CONV1 = "Convolution conv1 1 1 data conv1 1 3 4 3 3 1 1 1 1 1 -1 1 1 0"
CATALOGUE = [
    Row(".tnnproto", "empty file", "not a TNN proto: the file is empty", empty_proto),
    Row(".tnnproto", "a .tnnmodel given as the proto", "this is a .tnnmodel file; expected the "
        ".tnnproto", lambda f: tnnquant.load_proto(f / "m.tnnmodel")),
    Row(".tnnproto", "header without TNN's magic number", "lacks the magic number",
        edited_proto("4206624772", "42")),
    Row(".tnnproto", "a layer line cut short", "expected 14 parameters (at least 13), got 12",
        edited_proto(CONV1, CONV1.rsplit(" ", 2)[0])),
    Row(".tnnproto", "a parameter that is not an integer",
        "parameter 'kernel_w': expected an integer, got 'x'",
        edited_proto(CONV1, CONV1.replace(" 4 3 3 ", " 4 3 x "))),
    Row(".tnnproto", "unknown layer type", "unknown layer type 'Convolutoin' (did you mean "
        "'Convolution'?)", edited_proto("Convolution conv1", "Convolutoin conv1")),
    Row(".tnnproto", "a record over 4095 bytes", "TNN reads only the first 4095 bytes of a "
        "record", edited_proto("Softmax prob 1 1 fc1 prob 1", "Softmax prob 1 1 fc1 prob 1"
                               + " 1" * 2100)),
    Row(".tnnproto", "two layers with one name", "a second layer with this name",
        edited_proto("ReLU relu1 1 1", "ReLU conv1 1 1")),
    Row(".tnnproto", "a blob produced by two layers", "output blob 'conv2' is already "
        "produced by Convolution 'conv2'", edited_proto("1 1 conv2 conv3", "1 1 conv2 conv2")),
    Row(".tnnproto", "a cycle", "the graph has a cycle: relu1 -> pool1 -> relu1",
        edited_proto("ReLU relu1 1 1 conv1", "ReLU relu1 1 1 pool1")),
    Row(".tnnproto", "an input dimension of 0", "every dimension must be at least 1",
        edited_proto("data 4 1 3 8 8 0", "data 4 1 3 0 8 0")),
    Row(".tnnproto", "input dims of 2^31 elements or more", "TNN holds at most 2^31 - 1",
        edited_proto("data 4 1 3 8 8 0", "data 4 1 3 65536 65536 0")),
    Row(".tnnproto", "an output no layer produces", "output 'nothing' is neither a network "
        "input nor produced by a layer", edited_proto('"prob ,"', '"nothing ,"')),
    Row(".tnnmodel", "cut short at any byte", "file ends inside", edited_model(cut_model(200))),
    Row(".tnnmodel", "record count of 2^20", "record count 1048576 is too large",
        edited_model(with_int32(4, 1 << 20))),
    Row(".tnnmodel", "a buffer length of 2^31 - 4 bytes", "file ends inside filter (needs "
        "2147483644 bytes", edited_model(with_int32(filter_field(2), (1 << 31) - 4))),
    Row(".tnnmodel", "unknown data type", "unknown data type 9",
        edited_model(with_int32(filter_field(1), 9))),
    Row(".tnnmodel", "weights that do not fit the proto's layer", "model does not match the "
        "proto: filter has 108 values", edited_proto(CONV1, CONV1.replace(" 3 4 3 3 ",
                                                                         " 3 8 3 3 "))),
    Row(".tnnmodel", "the weights of another model", "the model file has no weights for this "
        "layer", edited_proto("Convolution conv1 1 1", "Convolution convX 1 1")),
    Row(".tnnmodel", "a layer reading a blob nothing produces", "input blob 'ghost' is not a "
        "network input, no layer produces it", edited_proto("1 1 relu1 pool1", "1 1 ghost pool1")),
    Row(".tnnmodel", "bytes after the end", "4 unexpected bytes after the constant map",
        edited_model(lambda data: data + bytes(12))),
    Row(".npy", "a header claiming 10^7 samples", "the header describes 7679999232 bytes",
        sample_file("a.npy", huge_npy_header)),
    Row(".npy", "an array of the wrong shape", "does not fit input 'data'",
        sample_file("a.npy", lambda: npy_bytes(np.zeros((3, 8, 9), np.float32)))),
    Row(".npy", "an array of Python objects", "is not a real number type",
        sample_file("a.npy", lambda: npy_bytes(np.array([None] * 192).reshape(3, 8, 8),
                                               allow_pickle=True))),
    Row(".txt", "a value that is not a number", ":3: value 3: 'abc' is not a number",
        sample_file("a.txt", b"1\n2\nabc\n" + b"0\n" * 189)),
    Row(".txt", "too few values", "expected 192 values (3×8×8 for input 'data'), the file "
        "ends after 2", sample_file("a.txt", b"1\n2\n")),
    Row(".txt", "NaN", "value 1: 'nan' is not a finite number", sample_file("a.txt",
                                                                          b"nan\n" * 192)),
    Row("image", "corrupt data", "cannot decode image", sample_file("a.png",
                                                                    png_claiming(8, 8))),
    Row("image", "a header claiming 10000x10000 pixels", "the image claims 10000x10000 "
        "pixels, more than Pillow's decompression-bomb limit",
        sample_file("a.png", png_claiming(10000, 10000))),
    Row("image", "a header claiming 100000x100000 pixels", "cannot decode image: Image size "
        "(10000000000 pixels) exceeds limit", sample_file("a.png", png_claiming(100000, 100000))),
    Row("image", "input dims larger than the machine's memory (20000x20000, 1 GiB of RAM)",
        "one sample takes 4.5 GiB as float32, more than this machine's 1.0 GiB",
        memory_of(1.0)),
]


@pytest.fixture
def folder(tmp_path) -> Path:
    write_model(tmp_path)
    return tmp_path


@pytest.mark.parametrize("row", CATALOGUE, ids=lambda r: f"{r.kind}: {r.damage}")
def test_malformed_input(row, folder):
    with pytest.raises(TnnQuantError) as err:
        row.run(folder)
    message = str(err.value)
    assert "\n" not in message and row.result in message, message


def readme_rows() -> list[tuple[str, str, str]]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Malformed inputs"):]
    section = section[:section.index("\n#", 1)] if "\n#" in section[1:] else section
    rows = re.findall(r"^\| (.+?) \| (.+?) \| `(.+?)` \|$", section, flags=re.M)
    return [(k, d, r.replace("\\|", "|")) for k, d, r in rows if k != "file"]


def test_readme_lists_them():
    assert readme_rows() == [(r.kind, r.damage, r.result) for r in CATALOGUE]
