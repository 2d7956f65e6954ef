"""Calibration and evaluation samples: finding them in a folder and turning them into tensors.

File types (extension, case-insensitive), as TNN's ``quantization_cmd`` reads them (spec int8 §3):

``.txt``
    The values of one sample in NCHW order, whitespace-separated decimal numbers (TNN's tool
    writes one ``%.9g`` value per line). Exactly C·H·W values (the product of the input's dims
    after the batch axis), parsed to float32 with correct rounding like ``strtof``. No mean or
    scale is applied.
``.npy``
    A float or integer array of the input's dims without the batch axis (C, H, W), or with it
    (N, C, H, W); a batch of N counts as N samples. No mean or scale is applied.
``.jpg .jpeg .png .bmp``
    Decoded with Pillow into as many channels as the input has (1: gray, 3: RGB, 4: RGBA;
    other channel counts cannot take images), resized to the input's H×W with Pillow's bilinear
    filter when the size differs, then ``x[c] = (pixel[src(c)] - mean[c]) * scale[c]`` in
    float32, where ``src(c) = 2 - c`` for the first three channels when ``reverse_channel`` is
    set (RGB -> BGR), else ``c``.

Differences from TNN, all deliberate: files are taken in name order (TNN: directory order), a
file that cannot be used is an error (TNN logs and skips it), ``.npy`` works (TNN skips it),
mean/scale must have a value for every channel (TNN reads past the end), and every input of a
multi-input model is fed (TNN feeds only the first input in byte-wise name order). Images are
decoded and resized by Pillow, not stb_image: PNG/BMP files at the input size give TNN's values
exactly (channel conversions follow stb: gray from ``(77 R + 150 G + 29 B) >> 8``, 16-bit
reduced to the high byte, alpha dropped without blending); JPEG decoding and resizing differ
slightly.

Folder layout
-------------
Single-input model: the calibration folder holds the sample files directly. Sub-folders,
files of other types and ``.txt`` files whose first word is not a number (label lists, class
names) are skipped, with one warning per folder that names them and says why
(:func:`not_a_sample`). Calibration, evaluation (``--eval``) and ``compare`` read folders by
this same rule.

Multi-input model: the calibration folder holds one sub-folder per network input, named after
the input with every character other than an ASCII letter, a digit, ``.``, ``_`` or ``-``
replaced by ``_`` (input ``img:0`` -> folder ``img_0``). Sample files are matched across the
sub-folders by file name without extension (``image/0001.png`` goes with ``mask/0001.npy``);
every sub-folder must hold the same set of names, and matched ``.npy`` batches must have the
same N. Samples are taken in name order. A single-input model may use the same layout: it is
chosen whenever the folder has a sub-folder named after an input, and other entries of the
folder are then skipped with a warning.
"""
from __future__ import annotations

import io
import itertools
import logging
import math
import os
import re
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np

from ..errors import ConfigError, InputError
from ..ir.graph import InputSpec

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

TEXT_EXTENSIONS = (".txt",)
NPY_EXTENSIONS = (".npy",)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
SAMPLE_EXTENSIONS = TEXT_EXTENSIONS + NPY_EXTENSIONS + IMAGE_EXTENSIONS

Warn = Callable[[str], None]

_NUMBER_BYTES = b"0123456789+-.eE"  # everything else in a .txt number token is garbage
_FLOAT_SYNTAX = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Preprocess:
    """Image preprocessing (options -n/--bias, -s/--scale, -r/--reverse_channel): per
    destination channel ``(pixel - mean) * scale``. Empty tuples mean 0 and 1 for every channel.
    Text and .npy samples are never preprocessed."""

    mean: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()
    reverse_channel: bool = False

    def channel_values(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """float32 (mean, scale) for the first ``channels`` channels, as TNN stores them."""
        mean = self.mean or (0.0,) * channels
        scale = self.scale or (1.0,) * channels
        for option, values in (("-n/--bias (mean)", mean), ("-s/--scale", scale)):
            if len(values) < channels:
                raise ConfigError(f"{option} gives {len(values)} value(s) but the image input "
                                  f"has {channels} channels: give one value per channel")
        return np.array(mean[:channels], np.float32), np.array(scale[:channels], np.float32)


def parse_channel_values(text: str, option: str) -> tuple[float, ...]:
    """Parse a comma-separated list of numbers such as ``"123.675,116.28,103.53"``.

    Accepts standard float syntax (``1e-3``, ``+1``, ``.5``) and blanks around items, which
    TNN rejects; rejects empty items, NaN/Inf and anything that is not a number.
    """
    items = text.split(",")
    values = []
    for k, item in enumerate(items, 1):
        item = item.strip()
        where = f"{option}: item {k} of '{text}'"
        if not item:
            raise ConfigError(f"{where} is empty (expected numbers separated by commas)")
        if not _FLOAT_SYNTAX.fullmatch(item):
            raise ConfigError(f"{where}, '{item}', is not a number")
        value = float(item)
        with np.errstate(over="ignore"):
            stored = np.float32(value)   # TNN keeps these as float
        if not np.isfinite(stored):
            raise ConfigError(f"{where}, '{item}', is outside the float32 range")
        values.append(value)
    return tuple(values)


def safe_file_name(blob_name: str) -> str:
    """A blob name usable as a file name: characters other than ASCII letters, digits, ``.``,
    ``_`` and ``-`` become ``_`` (input sub-folders, ``run -o DIR`` outputs)."""
    return _UNSAFE_NAME_CHARS.sub("_", blob_name)


@dataclass(frozen=True)
class Sample:
    """One calibration item: a file per network input. ``count`` is the number of tensors it
    holds (N of a .npy batch, else 1)."""

    name: str                 # file name (flat folder) or shared file stem (per-input folders)
    files: dict[str, Path]    # input name -> file
    count: int = 1


def list_samples(folder: str | Path, inputs: list[InputSpec],
                 warn: Warn | None = None) -> list[Sample]:
    """Find the samples in ``folder`` (layout in the module docstring), in name order.

    Cheap: only names and .npy headers are read; decoding happens in :func:`load_sample`.
    Entries that are not samples are reported through ``warn`` (default: this module's logger).
    """
    warn = warn or log.warning
    folder = Path(folder)
    if not folder.is_dir():
        problem = "is a file, not a folder" if folder.exists() else "no such folder"
        raise InputError(f"{problem} (expected a folder of samples)", path=str(folder))
    if not inputs:
        raise InputError("the model declares no input", path=str(folder))
    subfolders = {safe_file_name(spec.name) for spec in inputs}
    if len(subfolders) < len(inputs):
        names = ", ".join(f"'{spec.name}'" for spec in inputs)
        raise InputError(f"the model inputs {names} do not map to distinct sub-folder names",
                         path=str(folder))
    entries = _entries(folder)
    if any(p.name in subfolders and p.is_dir() for p in entries):
        return _list_per_input(folder, entries, inputs, warn)
    if len(inputs) > 1:
        layout = ", ".join(f"{safe_file_name(spec.name)}/" for spec in inputs)
        raise InputError(f"the model has {len(inputs)} inputs, so the folder needs one "
                         f"sub-folder per input ({layout}) holding files matched by name "
                         f"without extension", path=str(folder))
    spec = inputs[0]
    files = _sample_files(folder, entries, warn)
    return [Sample(p.name, {spec.name: p}, _file_count(p, spec)) for p in files]


def _entries(folder: Path) -> list[Path]:
    """The folder's entries in name order."""
    try:
        return sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as e:
        raise InputError(f"cannot list the folder: {e.strerror or e}", path=str(folder)) from None


_TEXT_SNIFF_BYTES = 256   # enough for the first word of a .txt


def not_a_sample(path: Path) -> str | None:
    """Why a folder entry is not a sample (None: it is one). The one rule every sample folder
    follows (calibration, ``--eval``, ``compare``): a sample is a file with a sample extension,
    except a ``.txt`` whose first word is not a number, which is a label list or class names
    (``labels.txt``, ``classes.txt`` of an evaluation folder), not a tensor."""
    if path.is_dir():
        return "folders"
    if not path.is_file() or path.suffix.lower() not in SAMPLE_EXTENSIONS:
        return f"not {' '.join(SAMPLE_EXTENSIONS)} files"
    if path.suffix.lower() in TEXT_EXTENSIONS:
        try:
            with open(path, "rb") as f:
                head = f.read(_TEXT_SNIFF_BYTES).split(None, 1)
        except OSError:
            return None   # read (and reported, with the reason) as a sample
        if head and not _parses_as_float(head[0]):
            return "text whose first word is not a number: labels or class names"
    return None


def _parses_as_float(token: bytes) -> bool:
    """Number-like (NaN and Inf included: such a sample is read, and rejected with its line)."""
    try:
        float(token)
    except ValueError:
        return False
    return True


def _sample_files(folder: Path, entries: list[Path], warn: Warn) -> list[Path]:
    """The sample files among ``entries``; says once what it skipped and why, fails if none
    are left."""
    files, skipped = [], {}
    for p in entries:
        reason = not_a_sample(p)
        if reason is None:
            files.append(p)
        else:
            skipped.setdefault(reason, []).append(p.name + ("/" if p.is_dir() else ""))
    if skipped:
        n = sum(map(len, skipped.values()))
        groups = "; ".join(", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
                           + f" ({reason})" for reason, names in skipped.items())
        what = "entry that is not a sample" if n == 1 else "entries that are not samples"
        warn(f"{folder}: skipped {n} {what}: {groups}")
    if not files:
        raise InputError(f"no sample files ({' '.join(SAMPLE_EXTENSIONS)}) in the folder",
                         path=str(folder))
    return files


def _list_per_input(folder: Path, entries: list[Path], inputs: list[InputSpec],
                    warn: Warn) -> list[Sample]:
    wanted = {safe_file_name(spec.name) for spec in inputs}
    extra = [p.name + ("/" if p.is_dir() else "") for p in entries
             if not (p.name in wanted and p.is_dir())]
    if extra:
        warn(f"{folder}: skipped {', '.join(extra[:5])}{', ...' if len(extra) > 5 else ''} "
             f"(not a sub-folder named after a model input)")
    by_stem: dict[str, dict[str, Path]] = {}   # input name -> {stem: file}
    for spec in inputs:
        sub = folder / safe_file_name(spec.name)
        if not sub.is_dir():
            raise InputError(f"no sub-folder '{sub.name}' for model input '{spec.name}' (with "
                             f"per-input sub-folders every input needs one)", path=str(folder))
        stems: dict[str, Path] = {}
        for p in _sample_files(sub, _entries(sub), warn):
            if p.stem in stems:
                raise InputError(f"'{stems[p.stem].name}' and '{p.name}' have the same name "
                                 f"without extension; samples are matched by it", path=str(sub))
            stems[p.stem] = p
        by_stem[spec.name] = stems
    first = inputs[0].name
    for spec in inputs[1:]:
        for a, b in ((first, spec.name), (spec.name, first)):
            missing = sorted(by_stem[a].keys() - by_stem[b].keys())
            if missing:
                raise InputError(f"'{by_stem[a][missing[0]].name}' has no match in "
                                 f"'{safe_file_name(b)}/' (files are matched by name "
                                 f"without extension)",
                                 path=str(folder / safe_file_name(a)))
    samples = []
    for stem in sorted(by_stem[first]):
        files = {spec.name: by_stem[spec.name][stem] for spec in inputs}
        counts = {spec.name: _file_count(files[spec.name], spec) for spec in inputs}
        if len(set(counts.values())) > 1:
            detail = ", ".join(f"{files[n].name}: {c}" for n, c in counts.items())
            raise InputError(f"sample '{stem}' has different batch sizes per input ({detail})",
                             path=str(folder))
        samples.append(Sample(stem, files, counts[first]))
    return samples


def _file_count(path: Path, spec: InputSpec) -> int:
    """Samples held by one file: N for a .npy (from its header), 1 otherwise."""
    if path.suffix.lower() not in NPY_EXTENSIONS:
        return 1
    return _npy_header(path, spec)[0]


_NPY_HEADER_BYTES = 1 << 16   # numpy refuses headers over 10000 bytes; read no more than this


def _npy_header(path: Path, spec: InputSpec) -> tuple[int, tuple[int, ...], np.dtype]:
    """(N, shape, dtype) of a .npy, from its header, checked against the input and against
    the file size before anything is allocated (a damaged header can claim any length)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = io.BytesIO(f.read(min(size, _NPY_HEADER_BYTES)))
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", path=str(path)) from None
    try:
        version = np.lib.format.read_magic(head)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        with warnings.catch_warnings():   # a damaged header's bad escapes: refused, not warned
            warnings.simplefilter("ignore")
            shape, _, dtype = read_header(head)
    except Exception as e:   # numpy parses the header text with ast: any failure means damage
        raise InputError(f"not a valid .npy file ({type(e).__name__}: {e})",
                         path=str(path)) from None
    n = _npy_batch(shape, dtype, spec, path)
    data_bytes = math.prod(shape) * dtype.itemsize
    if head.tell() + data_bytes != size:
        raise InputError(f"the header describes {data_bytes} bytes of {dtype} values of shape "
                         f"{shape}, the file holds {size - head.tell()} after the header",
                         path=str(path))
    return n, shape, dtype


def _npy_batch(shape: tuple[int, ...], dtype: np.dtype, spec: InputSpec, path: Path) -> int:
    """N of a .npy holding ``shape``, or InputError if it does not fit the input."""
    per_sample = tuple(spec.dims[1:])
    if dtype.kind not in "iuf":
        raise InputError(f"array dtype {dtype} is not a real number type", path=str(path))
    if shape == per_sample:
        return 1
    if len(shape) == len(spec.dims) and shape[1:] == per_sample:
        if shape[0] == 0:
            raise InputError(f"array shape {shape} holds no sample", path=str(path))
        return shape[0]
    sizes = ", ".join(map(str, per_sample))
    raise InputError(f"array shape {shape} does not fit input '{spec.name}' with dims "
                     f"{tuple(spec.dims)}: expected ({sizes}) or (N, {sizes})", path=str(path))


def load_sample(sample: Sample, inputs: list[InputSpec],
                preprocess: Preprocess = Preprocess()) -> dict[str, np.ndarray]:
    """Read one sample: input name -> float32 array (N, *dims[1:]), N = ``sample.count``."""
    out = {spec.name: read_input_file(sample.files[spec.name], spec, preprocess)
           for spec in inputs}
    for spec in inputs:
        if len(out[spec.name]) != sample.count:
            raise InputError(f"holds {len(out[spec.name])} samples, expected {sample.count} "
                             f"(the file changed after listing?)",
                             path=str(sample.files[spec.name]))
    return out


def iter_batches(samples: Iterable[Sample], inputs: list[InputSpec],
                 preprocess: Preprocess = Preprocess(),
                 batch_size: int = 1) -> Iterator[dict[str, np.ndarray]]:
    """Yield input name -> (B, *dims[1:]) float32 batches with B = ``batch_size`` (the last
    one may be smaller), reading one sample at a time. A .npy batch larger than
    ``batch_size`` is split across batches."""
    return rebatch((load_sample(sample, inputs, preprocess) for sample in samples), batch_size)


def rebatch(feeds: Iterable[dict[str, np.ndarray]],
            batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    """Split and concatenate input name -> (N, ...) batches into batches of ``batch_size``."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    return _rebatch(feeds, batch_size)


def _rebatch(feeds: Iterable[dict[str, np.ndarray]],
             batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    pending: list[dict[str, np.ndarray]] = []
    filled = 0
    for arrays in feeds:
        count = len(next(iter(arrays.values())))
        start = 0
        while start < count:
            take = min(batch_size - filled, count - start)
            pending.append({name: a[start:start + take] for name, a in arrays.items()})
            filled += take
            start += take
            if filled == batch_size:
                yield _concat(pending)
                pending, filled = [], 0
    if pending:
        yield _concat(pending)


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def read_input_file(path: str | Path, spec: InputSpec,
                    preprocess: Preprocess = Preprocess()) -> np.ndarray:
    """Read one .txt, .npy or image file for ``spec``: float32 (N, *dims[1:])."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in SAMPLE_EXTENSIONS:
        raise InputError(f"unsupported file type '{path.suffix}' (expected one of "
                         f"{' '.join(SAMPLE_EXTENSIONS)})", path=str(path))
    check_fits_memory(spec)
    try:
        if ext in TEXT_EXTENSIONS:
            return read_text(path, spec)
        if ext in NPY_EXTENSIONS:
            return read_npy(path, spec)
        return read_image(path, spec, preprocess)
    except MemoryError:
        raise InputError(f"out of memory reading a sample for input '{spec.name}' (dims "
                         f"{'x'.join(map(str, spec.dims))})", path=str(path)) from None


def physical_memory() -> int | None:
    """Bytes of RAM of this machine, if the platform says."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits_memory(spec: InputSpec) -> None:
    """Refuse an input whose float32 tensor (one sample) is larger than this machine's memory,
    before anything is decoded or resized to it."""
    nbytes = math.prod(spec.dims[1:]) * 4
    memory = physical_memory()
    if memory is not None and nbytes > memory:
        raise InputError(f"input '{spec.name}' has dims {'x'.join(map(str, spec.dims))}: one "
                         f"sample takes {nbytes / 2**30:.1f} GiB as float32, more than this "
                         f"machine's {memory / 2**30:.1f} GiB of memory")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", path=str(path)) from None


# --- .txt --------------------------------------------------------------------------------------

def read_text(path: Path, spec: InputSpec) -> np.ndarray:
    """One sample of whitespace-separated numbers: float32 (1, *dims[1:])."""
    data = _read_bytes(path)
    tokens = data.split()
    values = None
    if not data.translate(None, _NUMBER_BYTES + b" \t\n\r\v\f"):
        try:
            values = np.array(tokens, dtype=np.float64)  # C-level parse, correctly rounded
        except ValueError:
            pass
    if values is None:
        k, problem = next((k, p) for k, p in enumerate(map(_token_problem, tokens)) if p)
        raise InputError(f"value {k + 1}: {problem}", path=str(path),
                         line=_token_line(data, k))
    per_sample = tuple(spec.dims[1:])
    expected = math.prod(per_sample)
    if len(tokens) != expected:
        shape = "×".join(map(str, per_sample))
        want = f"expected {expected} values ({shape} for input '{spec.name}')"
        if len(tokens) > expected:
            raise InputError(f"{want}, found {len(tokens)}: value {expected + 1} is here",
                             path=str(path), line=_token_line(data, expected))
        raise InputError(f"{want}, the file ends after {len(tokens)}", path=str(path),
                         line=_token_line(data, len(tokens) - 1) if tokens else None)
    out = _decimal_to_float32(tokens, values)
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        k = int(bad[0])
        raise InputError(f"value {k + 1}: '{tokens[k].decode()}' is outside the float32 range",
                         path=str(path), line=_token_line(data, k))
    return out.reshape((1,) + per_sample)


def _token_problem(token: bytes) -> str | None:
    """Why a .txt token is not a usable number, or None (error path only)."""
    text = token.decode("utf-8", "replace")
    try:
        value = float(token)
    except ValueError:
        return f"'{text}' is not a number"
    if not math.isfinite(value):
        return f"'{text}' is not a finite number"
    if token.translate(None, _NUMBER_BYTES):   # float() also takes '1_000'
        return f"'{text}' is not a number"
    return None


def _token_line(data: bytes, index: int) -> int:
    """1-based line of the ``index``-th whitespace-separated token (error path only)."""
    match = next(itertools.islice(re.finditer(rb"\S+", data), index, None))
    return data.count(b"\n", 0, match.start()) + 1


def _decimal_to_float32(tokens: list[bytes], values: np.ndarray) -> np.ndarray:
    """Round decimal tokens to float32 correctly (as TNN's ``strtof``), given their float64
    values. Rounding twice (decimal -> f64 -> f32) can only differ from rounding once when the
    f64 lies exactly halfway between two f32 neighbours; those rare tokens are settled exactly."""
    with np.errstate(over="ignore"):
        out = values.astype(np.float32)
    # an overflowed entry stands for 2**128, the next float32 if the exponent went on, so the
    # overflow threshold (halfway between it and the largest float32) is settled like the rest
    back = np.where(np.isinf(out), np.copysign(2.0 ** 128, values), out.astype(np.float64))
    away = np.where(values > back, np.float32(np.inf), np.float32(-np.inf))
    other = np.nextafter(out, away)   # the f32 neighbour on the other side of ``values``
    halfway = ((values != back) & np.isfinite(values)
               & ((back + other.astype(np.float64)) * 0.5 == values))
    for k in np.flatnonzero(halfway):
        midpoint = Fraction(float(values[k]))
        exact = Fraction(tokens[k].decode())
        if (exact - midpoint) * (midpoint - Fraction(float(back[k]))) > 0:
            out[k] = other[k]
    return out


# --- .npy --------------------------------------------------------------------------------------

def read_npy(path: Path, spec: InputSpec) -> np.ndarray:
    """A .npy of dims[1:] or (N, *dims[1:]): float32 (N, *dims[1:])."""
    n, shape, _ = _npy_header(path, spec)   # checked before np.load allocates anything
    try:
        with warnings.catch_warnings():   # the header's text is parsed again (see _npy_header)
            warnings.simplefilter("ignore")
            array = np.load(path, allow_pickle=False)
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", path=str(path)) from None
    except ValueError as e:
        raise InputError(f"not a valid .npy file ({e})", path=str(path)) from None
    if not isinstance(array, np.ndarray) or array.shape != shape:
        raise InputError("changed while it was read", path=str(path))
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(array, dtype=np.float32).reshape((n,) + tuple(spec.dims[1:]))
    finite = np.isfinite(out)
    if not finite.all():
        flat = int(np.flatnonzero(~finite.reshape(-1))[0])
        index = tuple(int(i) for i in np.unravel_index(flat, array.shape))
        value = array[index]
        what = (f"{value} is outside the float32 range" if np.isfinite(value)
                else f"{value} is not a finite number")
        raise InputError(f"element {index}: {what}", path=str(path))
    return out


# --- images ------------------------------------------------------------------------------------

def read_image(path: Path, spec: InputSpec, preprocess: Preprocess) -> np.ndarray:
    """Decode, resize and normalize an image for a (N, C, H, W) input: float32 (1, C, H, W)."""
    if len(spec.dims) != 4:
        raise InputError(f"image inputs need a 4-D (N, C, H, W) input; input '{spec.name}' has "
                         f"dims {tuple(spec.dims)}", path=str(path))
    _, channels, height, width = spec.dims
    if channels not in (1, 3, 4):
        raise InputError(f"image inputs need a 1-, 3- or 4-channel input; input "
                         f"'{spec.name}' has {channels} channels", path=str(path))
    mean, scale = preprocess.channel_values(channels)
    from PIL import Image   # only image inputs need Pillow (imported on demand: start-up time)
    # Pillow errors for corrupt or unsupported image files; it has no common base class for them
    image_errors = (OSError, SyntaxError, ValueError, EOFError, IndexError,
                    Image.DecompressionBombError)
    try:
        with warnings.catch_warnings():   # Pillow warns above its limit; we refuse instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)      # reads the header only
        with image:
            w, h = image.size
            limit = Image.MAX_IMAGE_PIXELS   # None when an application lifted it
            if limit and w * h > limit:
                raise InputError(f"the image claims {w}x{h} pixels, more than Pillow's "
                                 f"decompression-bomb limit of {limit}", path=str(path))
            pixels = _decode(image, channels)            # (h, w, C) uint8
    except image_errors as e:
        raise InputError(f"cannot decode image: {e}", path=str(path)) from None
    if pixels.shape[:2] != (height, width):
        # channel by channel, as TNN's resizer does: Pillow would premultiply RGBA by alpha
        bilinear = getattr(Image, "Resampling", Image).BILINEAR  # Pillow < 9.1: no Resampling
        planes = [np.asarray(Image.fromarray(pixels[..., c]).resize((width, height), bilinear))
                  for c in range(channels)]
    else:
        planes = [pixels[..., c] for c in range(channels)]
    src = list(range(channels))
    if preprocess.reverse_channel and channels >= 3:
        src[:3] = [2, 1, 0]
    chw = np.stack([planes[s] for s in src]).astype(np.float32)
    return ((chw - mean[:, None, None]) * scale[:, None, None])[None]


def _decode(image: "Image.Image", channels: int) -> np.ndarray:
    """Pixels as (h, w, channels) uint8 with stb_image's conversions (spec int8 §3.5 step 1)."""
    from PIL import Image
    if channels == 1 and image.format == "JPEG":
        image.draft("L", None)   # like stb, take a colour JPEG's decoded luma plane
    image.load()
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit gray: stb keeps the high byte (Pillow's convert would clip to 255)
        high = np.asarray(image).astype(np.int64) >> 8
        image = Image.fromarray(np.clip(high, 0, 255).astype(np.uint8), "L")
    if channels == 3:
        return np.asarray(image.convert("RGB"))
    if channels == 4:
        return np.asarray(image.convert("RGBA"))
    if image.mode in ("L", "LA", "1"):
        return np.asarray(image.convert("L"))[..., None]
    rgb = np.asarray(image.convert("RGB")).astype(np.uint16)
    # stb's luma, (77 R + 150 G + 29 B) >> 8, not Pillow's ITU-R 601 weights
    gray = (77 * rgb[..., 0] + 150 * rgb[..., 1] + 29 * rgb[..., 2]) >> 8
    return gray.astype(np.uint8)[..., None]
