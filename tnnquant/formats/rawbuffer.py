"""TNN RawBuffer <-> numpy, one data-type table both ways (spec model-format §2.1-2.2, §2.7).

Half and bfloat16 buffers are widened to float32 for compute and remember their storage type;
widening is exact, and narrowing back uses TNN's truncating conversion, so an unchanged buffer
is written back bit-identically.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

MAGIC_V1 = 0xFABC0002
MAGIC_V2 = 0xFABC0004


class DataType(IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BFP16 = 4
    INT64 = 5
    UINT32 = 6


# storage dtype in the file, dtype of the in-memory array
DTYPES: dict[DataType, tuple[np.dtype, np.dtype]] = {
    DataType.FLOAT: (np.dtype("<f4"), np.dtype(np.float32)),
    DataType.HALF: (np.dtype("<f2"), np.dtype(np.float32)),
    DataType.INT8: (np.dtype("i1"), np.dtype(np.int8)),
    DataType.INT32: (np.dtype("<i4"), np.dtype(np.int32)),
    DataType.BFP16: (np.dtype("<u2"), np.dtype(np.float32)),
    DataType.INT64: (np.dtype("<i8"), np.dtype(np.int64)),
    DataType.UINT32: (np.dtype("<u4"), np.dtype(np.uint32)),
}

ITEMSIZE = {dt: DTYPES[dt][0].itemsize for dt in DataType}


@dataclass(eq=False)
class RawBuffer:
    """One tensor of a .tnnmodel file.

    ``data`` is a flat array (float32 for FLOAT/HALF/BFP16); ``dims`` is the stored shape, which
    TNN treats as informational for most layers; ``magic`` is MAGIC_V2 (dims stored) or MAGIC_V1
    (legacy, no dims).
    """

    data: np.ndarray
    data_type: DataType = DataType.FLOAT
    dims: tuple[int, ...] = ()
    magic: int = field(default=MAGIC_V2)
    # the payload bytes this buffer was read from, with the (read-only) array decoded from them:
    # a widened HALF buffer is written back from these while ``data`` is still that array, so
    # infinities and NaN payloads, which the truncating conversion cannot reproduce, survive
    _source: tuple[np.ndarray, bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_type = DataType(self.data_type)
        self.dims = tuple(int(d) for d in self.dims)

    @classmethod
    def decode(cls, payload: bytes | memoryview, data_type: DataType,
               dims: tuple[int, ...] = (), magic: int = MAGIC_V2) -> "RawBuffer":
        """The buffer a file stores as ``payload``; encoding it again gives the same bytes."""
        buf = cls(decode_payload(payload, data_type), data_type, dims, magic)
        if data_type == DataType.HALF:
            buf.data.flags.writeable = False
            buf._source = (buf.data, bytes(payload))
        return buf

    @classmethod
    def of(cls, array: np.ndarray, data_type: DataType | None = None,
           dims: tuple[int, ...] | None = None) -> "RawBuffer":
        """A buffer holding ``array`` (flattened); no dims unless given, like TNN's tool writes."""
        array = np.asarray(array)
        if data_type is None:
            data_type = {np.dtype(np.int8): DataType.INT8, np.dtype(np.int32): DataType.INT32,
                         np.dtype(np.int64): DataType.INT64,
                         np.dtype(np.uint32): DataType.UINT32}.get(array.dtype, DataType.FLOAT)
        memory_dtype = DTYPES[DataType(data_type)][1]
        return cls(np.ascontiguousarray(array, dtype=memory_dtype).reshape(-1), data_type,
                   () if dims is None else dims)

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def nbytes(self) -> int:
        """Payload size in the file."""
        return self.size * ITEMSIZE[self.data_type]

    def array(self, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """The values, reshaped to ``shape`` (or to the stored dims when they fit)."""
        if shape is None:
            shape = self.dims if self.dims and int(np.prod(self.dims)) == self.size else (self.size,)
        return self.data.reshape(shape)

    def encode_payload(self) -> bytes:
        """The payload bytes: HALF and BFP16 narrowed by truncation like TNN (spec §2.7);
        integer types must hold values their storage type can represent."""
        storage = DTYPES[self.data_type][0]
        if self._source is not None and self._source[0] is self.data:
            return self._source[1]
        if self.data_type == DataType.HALF:
            return float_to_half_truncate(self.data).astype("<u2").tobytes()
        if self.data_type == DataType.BFP16:
            bits = np.ascontiguousarray(self.data, dtype=np.float32).view(np.uint32)
            return (bits >> 16).astype("<u2").tobytes()
        data = np.asarray(self.data)
        with np.errstate(invalid="ignore"):   # NaN -> int is refused just below
            out = np.ascontiguousarray(data, dtype=storage)
        if storage.kind in "iu" and data.dtype != storage and not np.array_equal(out, data):
            raise ValueError(f"{self.data_type.name} buffer holds values its storage type "
                             f"cannot represent (array of {data.dtype})")
        return out.tobytes()


def decode_payload(payload: bytes | memoryview, data_type: DataType) -> np.ndarray:
    """Flat in-memory array of a payload (a read-only view of it when no conversion is needed)."""
    storage, memory = DTYPES[data_type]
    raw = np.frombuffer(payload, dtype=storage)
    if data_type == DataType.HALF:
        return raw.astype(np.float32)
    if data_type == DataType.BFP16:
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.astype(memory, copy=False)


def float_to_half_truncate(values: np.ndarray) -> np.ndarray:
    """float32 -> IEEE half bits with TNN's conversion: clamp to +-65504, truncate the mantissa.

    spec model-format §2.7: non-Apple TNN builds round toward zero, so ``np.float16`` (round to
    nearest even) would not reproduce TNN's fp16 files.
    """
    x = np.asarray(values, dtype=np.float32)
    bits = x.view(np.uint32).astype(np.uint32)
    sign = ((bits >> 16) & 0x8000).astype(np.uint16)
    nan = np.isnan(x)
    clamped = np.where(nan, x, np.clip(x, -65504.0, 65504.0)).astype(np.float32)
    cbits = clamped.view(np.uint32)
    exp = ((cbits >> 23) & 0xFF).astype(np.int32)
    mant = (cbits & 0x7FFFFF).astype(np.uint32)
    half_exp = exp - 127 + 15
    normal = half_exp >= 1
    out = np.zeros(x.shape, dtype=np.uint16)
    out[normal] = ((half_exp[normal].astype(np.uint32) << 10) | (mant[normal] >> 13)).astype(np.uint16)
    # subnormal halves: shift the implicit-one mantissa right, dropping bits (truncation)
    sub = ~normal & (half_exp >= -10)
    shift = (14 - half_exp[sub]).astype(np.uint32)
    out[sub] = ((mant[sub] | 0x800000) >> shift).astype(np.uint16)
    out[nan] = (0x7C00 | (mant[nan] >> 13) | 0x200).astype(np.uint16)
    return out | sign
