"""User-facing errors: one line that says where (file, line or byte offset, layer) and what."""
from __future__ import annotations


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
            kind = f"{self.layer_type} " if self.layer_type else "layer "
            where += f"{kind}'{self.layer}': "
        return where + self.message

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
