"""RawBuffer codec (spec model-format §2.1, §2.2, §2.7): layout, every data type and shape, and
TNN's truncating float -> half conversion checked against an independent implementation."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tnnquant.errors import FormatError
from tnnquant.formats.binio import BinReader, BinWriter
from tnnquant.formats.rawbuffer import (MAGIC_V1, MAGIC_V2, DataType, RawBuffer,
                                        float_to_half_truncate)

MEMORY = {DataType.FLOAT: np.float32, DataType.HALF: np.float32, DataType.BFP16: np.float32,
          DataType.INT8: np.int8, DataType.INT32: np.int32, DataType.INT64: np.int64,
          DataType.UINT32: np.uint32}
SIZE = {DataType.FLOAT: 4, DataType.HALF: 2, DataType.INT8: 1, DataType.INT32: 4,
        DataType.BFP16: 2, DataType.INT64: 8, DataType.UINT32: 4}   # spec §2.2


def encode(buf: RawBuffer) -> bytes:
    w = BinWriter()
    w.rawbuffer(buf)
    return w.getvalue()


def decode(data: bytes) -> RawBuffer:
    r = BinReader(data, "t.tnnmodel")
    buf = r.rawbuffer()
    assert r.remaining == 0
    return buf


# --- an independent float32 -> half truncation ---------------------------------------------------

def _all_positive_halves() -> np.ndarray:
    """Value of every finite non-negative half 0x0000..0x7BFF, from the bit pattern alone."""
    bits = np.arange(0x7C00)
    exp, mant = bits >> 10, bits & 0x3FF
    value = np.where(exp == 0, mant * 2.0 ** -24, (1024 + mant) * 2.0 ** (exp - 25))
    assert np.all(np.diff(value) > 0)   # the bit patterns are ordered by magnitude
    return value


HALVES = _all_positive_halves()


def reference_half_bits(x: np.ndarray) -> np.ndarray:
    """TNN's conversion as spec §2.7 states it: clamp to +-65504, then the largest-magnitude
    half not exceeding |x| (round toward zero, subnormals included, tiny values flush to a
    signed zero); NaN is checked separately."""
    x = np.asarray(x, np.float32)
    mag = np.minimum(np.abs(x.astype(np.float64)), 65504.0)
    index = np.searchsorted(HALVES, mag, side="right") - 1
    sign = (x.view(np.uint32) >> 31).astype(np.uint16) << 15
    return index.astype(np.uint16) | sign


def check_truncation(x: np.ndarray) -> None:
    got = float_to_half_truncate(x)
    nan = np.isnan(x)
    assert np.all((got[nan] & 0x7C00) == 0x7C00) and np.all(got[nan] & 0x3FF)
    np.testing.assert_array_equal(got[~nan], reference_half_bits(x[~nan]))


@given(hnp.arrays(np.float32, st.integers(0, 64), elements=st.floats(width=32)))
def test_half_truncation_matches_reference(x):
    check_truncation(x)


def test_half_truncation_on_random_bit_patterns():
    bits = np.random.default_rng(7).integers(0, 2**32, 1_000_000, dtype=np.uint64)
    check_truncation(bits.astype(np.uint32).view(np.float32))


def test_half_truncation_edges():
    tiny = 2.0 ** -24   # the smallest half subnormal
    x = np.float32([0.0, -0.0, 65504, 65519.99, 65520, 1e30, np.inf, -np.inf, -70000,
                    tiny, tiny * 0.999, tiny * 1.5, -tiny * 0.5, 2.0 ** -14, 2.0 ** -14 * 0.999,
                    1 + 2.0 ** -10, 1 + 2.0 ** -11, 1e-45, -1e-45, 3.14159265])
    check_truncation(x)
    got = float_to_half_truncate(x)
    assert got[:9].tolist() == [0x0000, 0x8000, 0x7BFF, 0x7BFF, 0x7BFF, 0x7BFF, 0x7BFF, 0xFBFF,
                                0xFBFF]
    assert got[9:13].tolist() == [0x0001, 0x0000, 0x0001, 0x8000]


def test_half_truncation_is_not_round_to_nearest():
    x = np.float32([1 + 3 * 2.0 ** -12, 2049.0, 0.1])   # numpy.float16 rounds these up
    assert np.any(float_to_half_truncate(x) != x.astype(np.float16).view(np.uint16))
    check_truncation(x)


def test_quiet_nan_keeps_its_payload():
    bits = np.uint32([0x7FC00000, 0xFFC00000, 0x7FC02000, 0x7FFFE000, 0x7FD55555])
    got = float_to_half_truncate(bits.view(np.float32))
    sign = (bits >> 16) & 0x8000
    assert got.tolist() == (sign | 0x7C00 | ((bits & 0x7FFFFF) >> 13)).tolist()


def test_every_half_widens_and_narrows_back():
    """Widening is exact, so narrowing a widened finite half gives it back; so does a NaN."""
    bits = np.arange(2**16, dtype=np.uint16)
    widened = bits.view(np.float16).astype(np.float32)
    back = float_to_half_truncate(widened)
    finite = (bits & 0x7C00) != 0x7C00
    np.testing.assert_array_equal(back[finite], bits[finite])
    quiet_nan = ((bits & 0x7E00) == 0x7E00)
    np.testing.assert_array_equal(back[quiet_nan], bits[quiet_nan])
    # infinities clamp to +-65504, as TNN's converter does
    assert float_to_half_truncate(np.float32([np.inf, -np.inf])).tolist() == [0x7BFF, 0xFBFF]


def test_half_buffer_read_from_a_file_is_written_back_bit_identically():
    payload = np.arange(2**16, dtype="<u2").tobytes()   # every half, incl. inf and NaNs
    data = struct.pack("<Iiii", MAGIC_V2, 1, len(payload), 1) + struct.pack("<i", 2**16)
    buf = decode(data + payload)
    assert encode(buf) == data + payload


# --- the codec over all data types, shapes and values --------------------------------------------

def values_for(dt: DataType, n: int):
    dtype = MEMORY[dt]
    if dtype is np.float32:
        elements = st.floats(width=32)
    else:
        info = np.iinfo(dtype)
        elements = st.integers(int(info.min), int(info.max))
    return hnp.arrays(dtype, n, elements=elements)


@st.composite
def buffers(draw):
    dt = draw(st.sampled_from(list(DataType)))
    magic = draw(st.sampled_from([MAGIC_V2, MAGIC_V1]))
    if magic == MAGIC_V2:
        dims = tuple(draw(st.lists(st.integers(0, 5), max_size=4)))
        n = int(np.prod(dims)) if dims else draw(st.integers(0, 6))
    else:   # legacy buffers store no dims
        dims, n = (), draw(st.integers(0, 40))
    return RawBuffer(draw(values_for(dt, n)), dt, dims, magic)


def expected_bytes(buf: RawBuffer) -> bytes:
    """The layout of spec §2.1, built with struct."""
    if buf.data_type == DataType.HALF:
        payload = float_to_half_truncate(buf.data).astype("<u2").tobytes()
    elif buf.data_type == DataType.BFP16:
        payload = b"".join(struct.pack("<I", b)[2:] for b in buf.data.view(np.uint32).tolist())
    else:
        fmt = {DataType.FLOAT: "f", DataType.INT8: "b", DataType.INT32: "i",
               DataType.INT64: "q", DataType.UINT32: "I"}[buf.data_type]
        payload = struct.pack(f"<{buf.size}{fmt}", *buf.data.tolist())
        if buf.data_type == DataType.FLOAT and np.isnan(buf.data).any():
            payload = buf.data.astype("<f4").tobytes()   # struct would quiet signalling NaNs
    head = struct.pack("<Iii", buf.magic, int(buf.data_type), len(payload))
    if not payload:
        return head   # length 0: nothing else (12 bytes)
    if buf.magic == MAGIC_V2:
        head += struct.pack(f"<i{len(buf.dims)}i", len(buf.dims), *buf.dims)
    return head + payload


@settings(max_examples=300)
@given(buffers())
def test_encode_decode_encode_is_bit_identical(buf):
    first = encode(buf)
    assert first == expected_bytes(buf)
    back = decode(first)
    assert encode(back) == first
    assert back.magic == buf.magic
    assert back.data_type == buf.data_type
    assert back.dims == (buf.dims if buf.size and buf.magic == MAGIC_V2 else ())
    assert back.data.dtype == MEMORY[buf.data_type]
    assert back.nbytes == buf.size * SIZE[buf.data_type]
    if buf.data_type == DataType.HALF:
        assert back.data.view(np.uint32).tolist() == float_to_half_truncate(buf.data).view(
            np.float16).astype(np.float32).view(np.uint32).tolist()
    elif buf.data_type == DataType.BFP16:
        assert back.data.view(np.uint32).tolist() == \
            (buf.data.view(np.uint32) & 0xFFFF0000).tolist()
    else:
        assert back.data.tobytes() == buf.data.tobytes()


def test_layout_examples():
    buf = RawBuffer(np.float32([[1, 2, 3], [4, 5, 6]]).reshape(-1), DataType.FLOAT, (2, 3))
    assert encode(buf) == struct.pack("<Iiiiii6f", MAGIC_V2, 0, 24, 2, 2, 3, 1, 2, 3, 4, 5, 6)
    buf = RawBuffer(np.int8([1, -2]), DataType.INT8, (), MAGIC_V1)
    assert encode(buf) == struct.pack("<Iii2b", MAGIC_V1, 2, 2, 1, -2)
    assert encode(RawBuffer(np.zeros(0, np.int32), DataType.INT32, (5,))) == \
        struct.pack("<Iii", MAGIC_V2, 3, 0)


def test_magic_other_than_v2_means_no_dims():
    """spec §2.1: the buffer magic is not validated; only MAGIC_V2 announces dims."""
    data = struct.pack("<Iii2f", 0x12345678, 0, 8, 1.5, 2.5)
    buf = decode(data)
    assert buf.data.tolist() == [1.5, 2.5] and buf.dims == () and buf.magic == 0x12345678
    assert encode(buf) == data


def test_negative_length_reads_as_empty():
    buf = decode(struct.pack("<Iii", MAGIC_V2, 0, -5))
    assert buf.size == 0
    assert encode(buf) == struct.pack("<Iii", MAGIC_V2, 0, 0)


def test_shape_helpers():
    buf = RawBuffer.of(np.arange(6, dtype=np.float32), dims=(2, 3))
    assert buf.array().shape == (2, 3)
    assert RawBuffer.of(np.arange(6, dtype=np.float32), dims=(4,)).array().shape == (6,)
    assert RawBuffer.of(np.int8([1, 2])).data_type == DataType.INT8
    assert RawBuffer.of(np.arange(3)).data_type == DataType.INT64


@pytest.mark.parametrize("data_type, values", [
    (DataType.INT8, np.array([300])), (DataType.INT8, np.array([1.5])),
    (DataType.UINT32, np.array([-1])), (DataType.INT32, np.array([np.nan])),
])
def test_integer_buffers_refuse_values_they_cannot_store(data_type, values):
    with pytest.raises(ValueError, match="cannot represent"):
        RawBuffer(values, data_type).encode_payload()


@pytest.mark.parametrize("data, message", [
    (struct.pack("<Iii", MAGIC_V2, 9, 4), "unknown data type 9"),
    (struct.pack("<Iiii", MAGIC_V2, 0, 4, -1), "bad dims count -1"),
    (struct.pack("<Iiii", MAGIC_V2, 0, 4, 1000), "bad dims count 1000"),
    (struct.pack("<Iiiii", MAGIC_V2, 0, 6, 1, 1) + bytes(6), "6 bytes is not a whole number"),
    (struct.pack("<Iiiii", MAGIC_V2, 0, 8, 1, 2) + bytes(4), "file ends inside .* 8 bytes, 4"),
    (struct.pack("<Ii", MAGIC_V2, 0), "file ends inside"),
])
def test_bad_buffers(data, message):
    with pytest.raises(FormatError, match=message) as err:
        decode(data)
    assert str(err.value).startswith("t.tnnmodel: byte ")
