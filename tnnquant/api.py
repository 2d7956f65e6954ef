"""The Python API behind both command lines."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping

import numpy as np

from .calib.inputs import Preprocess, read_input_file, safe_file_name
from .errors import ConfigError, InputError, TnnQuantError
from .exec import int8_math
from .exec.executor import Executor
from .formats.io import write_files_atomically
from .ir.graph import BlobScale, Graph


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


def simulate(qgraph: Graph, inputs: Mapping[str, np.ndarray] | np.ndarray,
             device: str = "x86") -> dict[str, np.ndarray]:
    """Run a quantized model as TNN's int8 runtime does (spec int8 §11-13) on NCHW float32
    batches; returns output blob name -> float32 array, int8 outputs dequantized as TNN
    returns them. ``device``: "x86" (also stands for ARM) or "naive"."""
    if not qgraph.is_quantized:
        raise ConfigError("the model has no quantized layer: use run()")
    return Executor(qgraph, mode="int8", device=device).run(feeds_for(qgraph, inputs))


def dequantize(blob_scale: BlobScale, q: np.ndarray, device: str = "x86") -> np.ndarray:
    """float32 values of an int8 blob (as a hook of the int8 executor receives it) with its
    BlobScale: ``q * scale[c]`` on x86, ``scale[c] * (q - zero_point[c])`` on NAIVE (and less
    the zero point tnnquant folded into biases around the blob on both)."""
    return int8_math.dequantize(q, blob_scale.scale, blob_scale.zero_points, device,
                                blob_scale.folded_zero_point)


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
