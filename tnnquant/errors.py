"""User-facing errors: one line that says where (file, line or byte offset, layer) and what."""
from __future__ import annotations


NAME_CHARS_SHOWN = 120   # a name read from a damaged file can be any length


def one_line(text: str) -> str:
    """``text`` with control characters (line feeds, NUL, ...) written as ``\\xNN``."""
    return "".join(c if c >= " " and c != "\x7f" else f"\\x{ord(c):02x}" for c in text)


def _clip(name: str) -> str:
    return name if len(name) <= NAME_CHARS_SHOWN else name[:NAME_CHARS_SHOWN] + "…"


class TnnQuantError(Exception):
    """An error caused by the user's input; the CLI prints ``str(err)`` and exits 1."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 offset: int | None = None, layer: str | None = None,
                 layer_type: str | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.offset = offset
        self.layer = layer
        self.layer_type = layer_type
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
            if self.offset is not None:
                where += f": byte {self.offset}"
            where += ": "
        elif self.offset is not None:
            where = f"byte {self.offset}: "
        if self.layer is not None:
            kind = f"{_clip(self.layer_type)} " if self.layer_type else "layer "
            where += f"{kind}'{_clip(self.layer)}': "
        return one_line(where + self.message)   # names from files may hold line feeds

    def located(self, **where) -> "TnnQuantError":
        """Return a copy with the missing location fields filled in."""
        fields = dict(path=self.path, line=self.line, offset=self.offset, layer=self.layer,
                      layer_type=self.layer_type)
        for key, value in where.items():
            if fields.get(key) is None:
                fields[key] = value
        return type(self)(self.message, **fields)


class FormatError(TnnQuantError):
    """A .tnnproto / .tnnmodel file that TNN would reject or misread."""


class ConfigError(TnnQuantError):
    """An invalid option or option combination."""


class InputError(TnnQuantError):
    """A calibration or evaluation input that cannot be used."""


class UnsupportedError(TnnQuantError):
    """A valid model that tnnquant cannot execute (e.g. a layer type without a kernel)."""
