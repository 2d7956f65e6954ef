"""Load and save TNN model files; writes are atomic (temporary file, then rename)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import ConfigError, FormatError, TnnQuantError
from ..ir.graph import Graph
from .tnnmodel import format_model, read_model
from .tnnproto import format_proto, parse_proto

PathLike = str | os.PathLike


def _default_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _default_file_mode()


def _read_bytes(path: PathLike, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except IsADirectoryError:
        raise TnnQuantError(f"{path}: is a directory, expected a {what} file") from None
    except OSError as err:
        raise TnnQuantError(f"{path}: cannot read {what} file: {err.strerror}") from None


def load_proto(proto_path: PathLike) -> Graph:
    """Read a .tnnproto alone (layers and parameters, no weights)."""
    return parse_proto(_read_bytes(proto_path, ".tnnproto"), str(proto_path))


def is_onnx(path: PathLike) -> bool:
    return Path(path).suffix.lower() == ".onnx"


def load_model(proto_path: PathLike, model_path: PathLike | None = None, *,
               input_shapes: Mapping[str, Sequence[int]] | None = None) -> Graph:
    """Read a .tnnproto + .tnnmodel pair into a Graph, or convert an ONNX model (``.onnx``,
    alone) in memory as ``tnnquant convert`` does; ``input_shapes`` fixes its dynamic dims."""
    if is_onnx(proto_path):
        if model_path is not None:
            raise ConfigError(f"{model_path}: an ONNX model holds its weights; give "
                              f"{proto_path} alone")
        from ..convert import convert_onnx
        return convert_onnx(proto_path, input_shapes)
    if input_shapes:
        raise ConfigError(f"{proto_path}: input shapes apply to ONNX models; a TNN model "
                          f"states its input dims")
    if model_path is None:
        raise ConfigError(f"{proto_path}: a .tnnproto needs its .tnnmodel (-m X.tnnmodel)")
    graph = load_proto(proto_path)
    data = _read_bytes(model_path, ".tnnmodel")
    if data[:1] == b'"':
        raise FormatError("this is a .tnnproto file; expected the .tnnmodel",
                          path=str(model_path))
    return read_model(data, graph, str(model_path))


def write_files_atomically(contents: dict[PathLike, bytes]) -> None:
    """Write every file or none: each goes to a temporary file beside it, renamed at the end."""
    temps: list[tuple[str, Path]] = []
    try:
        for path, data in contents.items():
            path = Path(path)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                       dir=str(path.parent))
            temps.append((tmp, path))
            os.fchmod(fd, _FILE_MODE)  # mkstemp makes 0600 files; outputs get the usual mode
            with os.fdopen(fd, "wb") as f:
                f.write(data)
    except OSError as err:
        for tmp, _ in temps:
            os.unlink(tmp)
        # named after the file asked for, not the temporary file that failed
        raise TnnQuantError(f"{path}: cannot write: {err.strerror}") from None
    for tmp, path in temps:
        os.replace(tmp, path)


def save_model(graph: Graph, proto_path: PathLike, model_path: PathLike) -> None:
    """Write a Graph as a .tnnproto + .tnnmodel pair (both or neither)."""
    write_files_atomically({proto_path: format_proto(graph), model_path: format_model(graph)})
