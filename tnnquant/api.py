"""The Python API behind both command lines."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping

import numpy as np

from .calib.inputs import Preprocess, read_input_file, safe_file_name
from .errors import InputError, TnnQuantError
from .exec.executor import Executor
from .formats.io import write_files_atomically
from .ir.graph import Graph


def feeds_for(graph: Graph, inputs: Mapping[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
    """Accept a single array for a single-input model, else a name -> array mapping."""
    if isinstance(inputs, np.ndarray):
        if len(graph.inputs) != 1:
            names = ", ".join(s.name for s in graph.inputs)
            raise InputError(f"the model has {len(graph.inputs)} inputs ({names}); pass a dict")
        return {graph.inputs[0].name: inputs}
    return dict(inputs)


def run(graph: Graph, inputs: Mapping[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
    """Run the float model on NCHW float32 batches; returns output blob name -> array."""
    return Executor(graph).run(feeds_for(graph, inputs))


def read_inputs(graph: Graph, files: Mapping[str, str | Path] | str | Path,
                preprocess: Preprocess = Preprocess()) -> dict[str, np.ndarray]:
    """Read one .txt/.npy/image file per network input (a single path for one input)."""
    if not isinstance(files, Mapping):
        if len(graph.inputs) != 1:
            names = ", ".join(s.name for s in graph.inputs)
            raise InputError(f"the model has {len(graph.inputs)} inputs ({names}); give one "
                             f"file per input as NAME=FILE")
        files = {graph.inputs[0].name: files}
    specs = {s.name: s for s in graph.inputs}
    unknown = sorted(set(files) - set(specs))
    if unknown:
        raise InputError(f"the model has no input named '{unknown[0]}' "
                         f"(inputs: {', '.join(specs)})")
    missing = sorted(set(specs) - set(files))
    if missing:
        raise InputError(f"no file given for input '{missing[0]}'")
    return {name: read_input_file(path, specs[name], preprocess) for name, path in files.items()}


def save_outputs(outputs: Mapping[str, np.ndarray], folder: str | Path) -> list[Path]:
    """Write ``folder/<output blob name>.npy`` (unsafe characters -> ``_``), float32."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TnnQuantError(f"{folder}: cannot create output folder: {err.strerror}") from None
    contents = {}
    for name, value in outputs.items():
        buf = io.BytesIO()
        np.save(buf, np.asarray(value, dtype=np.float32))
        contents[folder / f"{safe_file_name(name)}.npy"] = buf.getvalue()
    write_files_atomically(contents)
    return list(contents)
