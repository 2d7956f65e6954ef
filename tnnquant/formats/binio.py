"""Little-endian primitives of .tnnmodel files with byte offsets for errors (spec model-format §2.1)."""
from __future__ import annotations

import struct

from ..errors import FormatError
from .rawbuffer import ITEMSIZE, MAGIC_V2, DataType, RawBuffer, decode_payload

_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
MAX_DIMS = 16   # sanity bound for a RawBuffer's dims count (TNN blobs have at most 6 dims)


class BinReader:
    """Reads primitives from ``data``; every error carries the file, the byte offset of the
    value being read and the record it is in (``layer`` / ``layer_type``)."""

    def __init__(self, data: bytes, path: str | None = None) -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.path = path
        self.layer: str | None = None
        self.layer_type: str | None = None

    def error(self, message: str, offset: int | None = None) -> FormatError:
        return FormatError(message, path=self.path, offset=self.pos if offset is None else offset,
                           layer=self.layer, layer_type=self.layer_type)

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.error(f"file ends inside {what} (needs {n} bytes, {self.remaining} left)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def i32(self, what: str = "an int32") -> int:
        return _I32.unpack(self.take(4, what))[0]

    def u32(self, what: str = "a uint32") -> int:
        return _U32.unpack(self.take(4, what))[0]

    def string(self, what: str = "a string") -> str:
        start = self.pos
        n = self.i32(what)
        if n < 0:
            raise self.error(f"bad length {n} for {what}", start)
        if n > self.remaining:
            raise self.error(f"file ends inside {what} (a string of {n} bytes, "
                             f"{self.remaining} left)", start)
        return bytes(self.take(n, what)).decode("utf-8", errors="surrogateescape")

    def rawbuffer(self, what: str = "a RawBuffer") -> RawBuffer:
        """One RawBuffer (spec model-format §2.1)."""
        start = self.pos
        magic = self.u32(what)
        code = self.i32(what)
        length = self.i32(what)
        if length <= 0:
            # spec §2.1: an empty buffer stops after its length (TNN reads it as FLOAT); keep a
            # valid stored type so that it is written back unchanged
            dt = DataType(code) if code in DataType._value2member_map_ else DataType.FLOAT
            return RawBuffer(decode_payload(b"", dt), dt, (), magic)
        if code not in DataType._value2member_map_:
            raise self.error(f"{what}: unknown data type {code}", start)
        data_type = DataType(code)
        dims: tuple[int, ...] = ()
        if magic == MAGIC_V2:
            ndims_at = self.pos
            ndims = self.i32(what)
            if not 0 <= ndims <= MAX_DIMS:
                raise self.error(f"{what}: bad dims count {ndims}", ndims_at)
            dims = tuple(self.i32(what) for _ in range(ndims))
        if length % ITEMSIZE[data_type]:
            raise self.error(f"{what}: {length} bytes is not a whole number of "
                             f"{data_type.name} elements", start)
        return RawBuffer.decode(self.take(length, what), data_type, dims, magic)


class BinWriter:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def i32(self, value: int) -> None:
        self.parts.append(_I32.pack(int(value)))

    def u32(self, value: int) -> None:
        self.parts.append(_U32.pack(int(value)))

    def string(self, value: str) -> None:
        raw = value.encode("utf-8", errors="surrogateescape")
        self.i32(len(raw))
        self.parts.append(raw)

    def rawbuffer(self, buf: RawBuffer) -> None:
        self.u32(buf.magic)
        self.i32(int(buf.data_type))
        payload = buf.encode_payload()
        self.i32(len(payload))
        if not payload:
            return
        if buf.magic == MAGIC_V2:
            self.i32(len(buf.dims))
            for d in buf.dims:
                self.i32(d)
        self.parts.append(payload)

    def getvalue(self) -> bytes:
        return b"".join(self.parts)
