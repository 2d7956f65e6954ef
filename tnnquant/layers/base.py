"""The contract every layer file implements, and the parameter codec shared by all of them.

A layer file declares a frozen ``Params`` dataclass whose field order is the proto order and
whose defaults are what TNN's reader uses for a missing word (spec model-format §3.2), an
optional resource class (its .tnnmodel payload), an fp32 kernel, an int8 kernel and its role
in quantization. ``register`` adds it to ``LAYERS`` under every type string TNN accepts.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, NamedTuple

import numpy as np

from ..errors import FormatError, TnnQuantError, UnsupportedError
from ..registry import Registry
from ._index import ENUM_MODULES, TYPE_MODULES

if TYPE_CHECKING:
    from ..exec.onnx_model import OnnxGraph
    from ..ir.graph import BlobScale

# --- parameter field kinds -------------------------------------------------------------------


def required(default: Any = 0) -> Any:
    """A scalar TNN reads without a bounds check: a line that omits it is rejected."""
    return field(default=default, metadata={"required": True})


def counted(*, per_count: int = 1, required: bool = False) -> Any:
    """A list written as its count followed by ``count * per_count`` values."""
    return field(default=(), metadata={"list": "counted", "per_count": per_count,
                                       "required": required})


def rest() -> Any:
    """A list made of every remaining word of the line."""
    return field(default=(), metadata={"list": "rest"})


INT32_MIN, INT32_MAX = -2**31, 2**31 - 1


def _format_number(value: Any, kind: type) -> str:
    """One parameter word, by the field's declared type (a numpy float in an int field, or the
    reverse, must not change what is written)."""
    if kind is float:
        return "%g" % float(value)  # spec model-format §1.8: C++ stream formatting = printf %g
    if isinstance(value, (float, np.floating)):
        if not float(value).is_integer():
            raise ValueError(f"integer parameter holds {value!r}")
        value = int(value)
    return str(int(value))


@dataclass(frozen=True)
class Params:
    """Base of every layer's parameter dataclass.

    ``min_fields``: how many leading fields a line must give although TNN's reader would
    default them. Set it where every TNN writer emits those fields and a shorter line can only
    be a damaged file (e.g. a Convolution line without pad_type silently means SAME padding).
    """

    min_fields: ClassVar[int] = 0

    @classmethod
    def _fields(cls) -> list[tuple[dataclasses.Field, type]]:
        cache = cls.__dict__.get("_field_cache")
        if cache is None:
            hints = typing.get_type_hints(cls)
            cache = []
            for f in dataclasses.fields(cls):
                hint = hints[f.name]
                elem = typing.get_args(hint)[0] if typing.get_origin(hint) is tuple else hint
                cache.append((f, elem))
            setattr(cls, "_field_cache", cache)
        return cache

    @classmethod
    def parse(cls, words: list[str]) -> tuple["Params", int]:
        """Parse parameter words; returns the params and how many fields the line gave.

        Raises ValueError with a short reason (the proto reader adds file, line and layer).
        Words after the last field are ignored, as TNN does.
        """
        values: dict[str, Any] = {}
        pos = 0
        present = 0
        for f, elem in cls._fields():
            kind = f.metadata.get("list")
            if pos >= len(words):
                if f.metadata.get("required") or present < cls.min_fields:
                    raise ValueError(_count_message(cls, len(words)))
                break
            if kind == "counted":
                count = _number(words[pos], int, f.name)
                n = count * f.metadata["per_count"]
                if count < 0:
                    raise ValueError(f"parameter '{f.name}': negative count {count}")
                if pos + 1 + n > len(words):
                    raise ValueError(f"parameter '{f.name}': count {count} announces {n} "
                                     f"values, but only {len(words) - pos - 1} follow")
                values[f.name] = tuple(_number(w, elem, f.name) for w in words[pos + 1:pos + 1 + n])
                pos += 1 + n
            elif kind == "rest":
                values[f.name] = tuple(_number(w, elem, f.name) for w in words[pos:])
                pos = len(words)
            else:
                values[f.name] = _number(words[pos], elem, f.name)
                pos += 1
            present += 1
        return cls(**values), present

    def format(self, n_fields: int | None = None) -> list[str]:
        """Parameter words; the first ``n_fields`` fields (all when None), but never dropping a
        field that differs from its default."""
        fields = self._fields()
        last_set = max((i + 1 for i, (f, _) in enumerate(fields)
                        if getattr(self, f.name) != f.default), default=0)
        n = len(fields) if n_fields is None else max(n_fields, last_set)
        words: list[str] = []
        for f, elem in fields[:n]:
            value = getattr(self, f.name)
            kind = f.metadata.get("list")
            if kind == "counted":
                words.append(str(len(value) // f.metadata["per_count"]))
            if kind:
                words.extend(_format_number(v, elem) for v in value)
            else:
                words.append(_format_number(value, elem))
        return words

    def packer_fields(self) -> int | None:
        """How many fields TNN's ModelPacker writes for these values (None: all of them)."""
        return None

    def replace(self, **changes: Any) -> "Params":
        return dataclasses.replace(self, **changes)


def _count_message(cls: type[Params], got: int) -> str:
    """'expected 14 parameters (at least 13), got 12' and the like."""
    fields = cls._fields()
    n_min = max(cls.min_fields,
                max((i + 1 for i, (f, _) in enumerate(fields) if f.metadata.get("required")),
                    default=0))
    if any(f.metadata.get("list") for f, _ in fields):
        return f"expected at least {n_min} parameter{'s' * (n_min != 1)}, got {got}"
    total = len(fields)
    at_least = f" (at least {n_min})" if n_min < total else ""
    return f"expected {total} parameter{'s' * (total != 1)}{at_least}, got {got}"


def _number(word: str, kind: type, name: str) -> Any:
    try:
        value = float(word) if kind is float else int(word)
    except ValueError:
        expected = "a number" if kind is float else "an integer"
        shown = word if len(word) <= 24 else word[:24] + "…"
        raise ValueError(f"parameter '{name}': expected {expected}, got '{shown}'") from None
    if kind is not float and not INT32_MIN <= value <= INT32_MAX:
        raise ValueError(f"parameter '{name}': {value} does not fit in a 32-bit integer")
    return value


@dataclass(frozen=True)
class NoParams(Params):
    """Layers whose proto line carries no parameters."""


# --- layer types -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Int8Context:
    """What an int8 kernel needs besides params and resource (spec int8 §11.3): the BlobScale
    of each input and output blob (None for an fp32 blob) and the device whose arithmetic is
    simulated ("x86" — which ARM matches on symmetric models — or "naive")."""

    inputs: tuple["BlobScale | None", ...]
    outputs: tuple["BlobScale | None", ...]
    device: str = "x86"


TensorType = tuple[tuple[int, ...], np.dtype]   # a blob's static (shape, dtype)


class Value(NamedTuple):
    """A blob as a layer's ONNX export sees it: its name in the ONNX graph and its static
    shape and dtype for a batch of one (``exec.ort_backend.infer_types``)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)


# what ``LayerType.output_types`` raises on parameters or inputs it cannot shape (a damaged
# model's geometry, an output too large to allocate): callers leave such a layer to its numpy
# kernel, which reports the problem as TNN would meet it
SHAPE_ERRORS = (TnnQuantError, ValueError, IndexError, TypeError, ZeroDivisionError,
                OverflowError, MemoryError)


class LayerType:
    """Everything about one TNN layer type. Subclasses set the class attributes below and
    override the kernels they support; all kernels are pure functions of their arguments."""

    names: ClassVar[tuple[str, ...]]            # accepted type strings; the first is canonical
    quantized_names: ClassVar[tuple[str, ...]] = ()  # 'Quantized…' spellings (spec §3.1)
    dynamic_names: ClassVar[tuple[str, ...]] = ()    # 'DynamicRangeQuantized…' spellings
    enum: ClassVar[int]                        # value written in .tnnmodel record headers
    Params: ClassVar[type[Params]] = NoParams
    Resource: ClassVar[type | None] = None     # class with read(reader, type_str) / write(writer)

    # quantization role (spec int8 §4, §7, §9)
    collects_stats: ClassVar[bool] = False     # its input and output blobs get blob scales
    quantizable: ClassVar[bool] = False        # becomes Quantized… when calibrated

    @classmethod
    def forward(cls, p: Any, res: Any, *xs: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """fp32 kernel: NCHW inputs -> output(s); a single array for a layer with several
        outputs is given to every output."""
        raise UnsupportedError(f"no fp32 kernel for layer type {cls.names[0]}")

    @classmethod
    def forward_naive(cls, p: Any, res: Any,
                      *xs: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """fp32 kernel with the arithmetic of TNN's NAIVE CPU device, bit for bit: the blobs
        TNN's quantization tool calibrates on (spec int8 §14; ``exec.naive_math``). Layers
        whose ``forward`` already is bit-exact, or whose NAIVE order is not known, keep this
        default: ``forward``."""
        return cls.forward(p, res, *xs)

    @classmethod
    def forward_int8(cls, p: Any, res: Any, q: Int8Context,
                     *xs: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """int8 kernel of a layer TNN runs quantized: int8 NCHW codes (fp32 where ``q`` has no
        scale) -> int8 codes of the outputs, with TNN's arithmetic (spec int8 §12-13)."""
        raise UnsupportedError(f"TNN has no int8 kernel for layer type {cls.names[0]} "
                               f"(spec int8 §13.1)")

    @classmethod
    def exact_onnx(cls, p: Any) -> bool:
        """Whether ``to_onnx`` computes exactly the f32 operations of ``forward``, one for one
        and in order, so that both give the same bits on finite inputs (element-wise IEEE
        operations; no library function such as exp). Such fp32 layers may run inside the
        int8 simulator's onnxruntime chains."""
        return False

    @classmethod
    def value_bound(cls, p: Any, res: Any, in_bounds: list[float | None]) -> float | None:
        """For a layer with ``exact_onnx``: a bound of |output| when each input's |values| are
        at most ``in_bounds`` (None: unbounded, NaN possible), or None. Lets the int8
        simulator's chains drop checks that cannot fire (``ort_kernels.settle_checks``)."""
        return None

    @classmethod
    def int8_onnxruntime(cls, p: Any, res: Any, q: Int8Context,
                         *shapes: tuple[int, ...]) -> Any:
        """The int8 kernel as an onnxruntime op for inputs of these shapes: (an
        ``exec.ort_kernels`` op, output shape), or None where it has none. The executor runs
        consecutive layers that have one as a single session."""
        return None

    @classmethod
    def output_types(cls, p: Any, res: Any, *xs: TensorType) -> list[TensorType]:
        """(shape, dtype) of each output for inputs of these shapes and dtypes. By default
        the fp32 kernel runs on zeros, so the answer (and any error) is the kernel's own;
        layers whose kernel is costly compute it directly."""
        with np.errstate(all="ignore"):
            out = cls.forward(p, res, *(np.zeros(shape, dtype) for shape, dtype in xs))
        outs = out if isinstance(out, (tuple, list)) else [out]
        return [(np.shape(y), np.asarray(y).dtype) for y in outs]

    @classmethod
    def to_onnx(cls, p: Any, res: Any, g: "OnnxGraph", xs: list[Value],
                ys: list[str]) -> None:
        """Write the fp32 kernel as ONNX nodes into ``g``: read ``xs``, produce the outputs
        named ``ys``, computing what ``forward`` computes (TNN's semantics, spec §3.3). Shapes
        are static except dim 0, the batch: the nodes must hold for any batch size. Layers
        without an export run on the numpy kernels (``exec.ort_backend``)."""
        raise UnsupportedError(f"no ONNX export for layer type {cls.names[0]}")

    @classmethod
    def requires_resource(cls, layer: Any) -> bool:
        """Whether a model must carry a resource record for this layer."""
        return cls.Resource is not None

    @classmethod
    def check_resource(cls, p: Any, res: Any) -> str | None:
        """Return why ``res`` does not fit the parameters, or None."""
        return None


def load_all_layers() -> None:
    """Import every layer module, registering every layer type."""
    for module in sorted(set(TYPE_MODULES.values())):
        importlib.import_module(f"{__package__}.{module}")


class _LayerRegistry(Registry["type[LayerType]"]):
    """Layer types by type string. A type's module (``_index.TYPE_MODULES``) is imported the
    first time the type is asked for, so reading a model imports the layers it uses; listing
    the registry imports them all."""

    def get(self, name: str) -> type[LayerType]:
        if name not in self._items:
            if name in TYPE_MODULES:
                importlib.import_module(f"{__package__}.{TYPE_MODULES[name]}")
            else:
                load_all_layers()   # the error below then lists every known type
        return super().get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in TYPE_MODULES

    def __iter__(self) -> Iterator[str]:
        load_all_layers()
        return super().__iter__()

    def items(self):
        load_all_layers()
        return super().items()

    def names(self) -> list[str]:
        load_all_layers()
        return super().names()


class _LayersByEnum(dict):
    """Layer types by the enum a .tnnmodel record stores, each imported on its first ``get``
    (the only way it is read; ``[]`` and ``in`` see only the modules loaded so far)."""

    def get(self, enum: int, default=None):
        if enum not in self and enum in ENUM_MODULES:
            importlib.import_module(f"{__package__}.{ENUM_MODULES[enum]}")
        return super().get(enum, default)


LAYERS: Registry[type[LayerType]] = _LayerRegistry("layer type")
LAYERS_BY_ENUM: dict[int, type[LayerType]] = _LayersByEnum()
QUANT_PREFIX = "Quantized"
DYNAMIC_PREFIX = "DynamicRangeQuantized"


def register(cls: type[LayerType]) -> type[LayerType]:
    """Class decorator: register a layer type under all of its type strings."""
    for name in cls.names + cls.quantized_names + cls.dynamic_names:
        LAYERS.add(name, cls)
    LAYERS_BY_ENUM.setdefault(cls.enum, cls)
    return cls


def resolve_type(type_str: str) -> tuple[type[LayerType], str, bool, bool]:
    """Type string of a proto line -> (layer type, stored type string, quantized, dynamic).

    spec model-format §1.7: the Quantized prefix is the quantization marker; the stored type
    string (used in .tnnmodel record headers) has no prefix.
    """
    if type_str not in LAYERS:
        prefix = next((p for p in (DYNAMIC_PREFIX, QUANT_PREFIX) if type_str.startswith(p)), "")
        close = difflib.get_close_matches(type_str, list(LAYERS), n=1)
        hint = (f" (TNN has no {prefix} form of {type_str[len(prefix):]})"
                if prefix and type_str[len(prefix):] in LAYERS else
                f" (did you mean '{close[0]}'?)" if close else "")
        raise FormatError(f"unknown layer type '{type_str}'{hint}")
    cls = LAYERS.get(type_str)
    if type_str in cls.dynamic_names:
        return cls, type_str[len(DYNAMIC_PREFIX):], False, True
    if type_str in cls.quantized_names:
        stored = type_str[len(QUANT_PREFIX):]
        return cls, stored if stored in LAYERS else type_str, True, False
    return cls, type_str, False, False
