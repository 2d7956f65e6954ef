"""The int8 simulator's x86 layers in onnxruntime: one convolution, or a run of consecutive
layers (convolutions, inner products, Reformats, fp32 layers with an exact export) as one
session (``run_chain``).

TNN's x86 int8 convolution (spec int8 §12.3, §13) is integer sums, then
``x86_round(f32((float)(acc + bq) · M[o]))`` with the fused ReLU/ReLU6 and the fused add
``fma(a_q, A[o], v)`` (before or after the activation) in between. In one onnxruntime session
per weight resource and layer geometry (the weights are constants, the factors inputs):

* the sums are a float Conv of the integer codes: exact while every partial sum stays below
  2^24 in any order, which holds when the terms' absolute values sum below 2^24. With codes in
  [-128, 127] and the layer's largest |weight| w, input channels go in chunks of at most
  ``2^24 // (128 · w)`` terms; chunk sums are added in double;
* ``(float)(acc + bq)``: an int32 addition converted once (C's round to nearest), or the
  Conv's own f32 bias when ``|sum| + |bq|`` provably stays below 2^24 (then exact);
* the factor, the activation and ``x86_round`` are the f32 operations ``int8_math`` states;
  where the value cannot be negative (after a ReLU, or a ReLU6 with a limit >= 0) the ±0.5 is
  +0.5 and only the upper clamp can act;
* the fused add's FMA is one rounding of the exact ``a_q·A + v``: here the sum of doubles,
  exact when it holds few enough bits (``fma_exact_in_double``, checked per channel on every
  call; else the layer runs in numpy). ``v`` is first clamped to ±C, C a power of two above
  ``128·|A| + 129``: beyond it the sum saturates to the same code either way.

``requantize_conv`` in int8_math remains the reference; tests/layers/test_convolution_int8.py
holds both paths to TNN's integer formula.
"""
from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass, field

import numpy as np

from . import int8_math
from ..parallel import usable_cpus
from .onnx_model import OnnxGraph, inference_session

MAX_CODE = 128                 # |activation code| <= 128 (spec int8 §12.1)
INT32_LIMIT = 2.0 ** 31        # x86_round: |t| >= 2^31 (and NaN) convert to INT32_MIN
DOUBLE_EXACT = 2.0 ** 52       # a double holds k·g exactly for |k| < 2^53 (one bit spare)
SATURATED = 130                # |sum| >= this rounds to a saturated code (|code| <= 128)
# False runs every int8 layer in numpy (int8_math), e.g. to test both paths
ENABLED = True

# one session per live run of weight resources and input geometries: the weights are
# constants (so onnxruntime packs them once; a session is rebuilt if they change), the factors
# M, A and the ReLU6 limits are inputs (new blob scales need no new session)
_sessions: dict[int, dict] = {}
_lock = threading.Lock()


def clear_sessions() -> None:
    """Drop every cached chain session (rebuilt on demand). Sessions live as long as the
    weights they are anchored to, and chains anchored to float layers' weights, which every
    int8 model of one float model shares, pile up while several int8 models are simulated,
    each holding its activation memory."""
    with _lock:
        for per_res in _sessions.values():
            per_res.clear()


def _options():
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = min(2, usable_cpus())
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_mem_pattern = False
    options.log_severity_level = 3
    return options


def _half_away(g: OnnxGraph, v: str) -> str:
    """``v + copysign(0.5, v)`` in f32 for a number v: the half is ``clamp(v·2^100, ±0.5)``,
    exactly ±0.5 once |v| >= 2^-101; below, |v + half| stays <= 0.5 and truncates to 0 as
    ``v ± 0.5`` does. (onnxruntime's Sign is several times slower than Mul and Clip.)"""
    half = g.node("Clip", [g.node("Mul", [v, g.const(np.float32(2.0 ** 100))]),
                           g.const(-int8_math.HALF), g.const(int8_math.HALF)])
    return g.node("Add", [v, half])


def _codes(g: OnnxGraph, t: str, out: str, clamp: bool = True) -> str:
    """``t`` (already ±0.5) clamped to the int8 range unless it provably is in it, then
    truncated: writes the int8 codes ``out``; returns them as floats."""
    if clamp:
        t = g.node("Clip", [t, g.const(np.float32(int8_math.QMIN)),
                            g.const(np.float32(int8_math.QMAX))])
    return g.node("Cast", [g.node("Cast", [t], out, to=3)], to=1)   # truncation to int8


def _round(g: OnnxGraph, v: str, out: str) -> str:
    """``int8_math.x86_round`` for |v| < 2^31 - 1 (the caller checks): ±0.5 added in f32,
    clamp, truncate (``_codes``)."""
    return _codes(g, _half_away(g, v), out)


def _round_nonnegative(g: OnnxGraph, v: str, out: str) -> str:
    """``_round`` of a value in [-0, 127]: +0.5 (what copysign gives for +0; -0 ends at code
    0 either way), and no clamp can act."""
    return _codes(g, g.node("Add", [v, g.const(int8_math.HALF)]), out, clamp=False)


def _fused_add(g: OnnxGraph, v: str, add: str, tag: str) -> str:
    """``fma(a_q, A, v)`` as the double sum of ``clamp(v, -C, C)`` and the exact ``a_q·A``
    (exact where ``fma_exact_in_double`` holds), rounded once to f32."""
    v = g.node("Clip", [v, f"{tag}neg_limit", f"{tag}limit"])
    term = g.node("Mul", [g.node("Cast", [add], to=11), f"{tag}af"])
    return g.node("Cast", [g.node("Add", [g.node("Cast", [v], to=11), term])], to=1)


@dataclass
class Int8Conv:
    """One TNN x86 int8 convolution: the int8 filter [O][C/g][kH][kW] and int32 bias (or
    None) of the weight resource ``res``, f32 factors M (O or 1), the ReLU6 limit codes when
    ``activation == "relu6"``; ``geometry`` = (group, kernel (kh, kw), strides, dilations,
    window) as for the float export; ``in_shape`` the input's (N, C, H, W); with a fused add
    (``fusion``), the factors ``add_factor`` A (O or 1) of its operand."""

    res: object
    weight_q: np.ndarray
    bias: np.ndarray | None
    m: np.ndarray
    r6: np.ndarray | None
    activation: str | None
    geometry: tuple
    in_shape: tuple[int, ...]
    add_factor: np.ndarray | None = None
    fusion: int = int8_math.FUSION_NONE

    def __post_init__(self) -> None:
        self.m = np.asarray(self.m, np.float32).reshape(-1)
        if self.add_factor is not None:
            self.add_factor = np.asarray(self.add_factor, np.float32).reshape(-1)
        if self.r6 is not None:
            self.r6 = np.asarray(self.r6, np.float32).reshape(-1)
            if self.r6.size > 1 and (self.r6 == self.r6[0]).all():
                self.r6 = self.r6[:1]   # one limit (a per-tensor scale stored per channel)
        # the value rounded is in [-0, 127]: after a ReLU (clamped to 127 first, which
        # changes no code) or a ReLU6 with limits in [0, 127], unless an add follows
        self.nonnegative = self.fusion != int8_math.FUSION_ACT_ADD and (
            self.activation == "relu" or (self.activation == "relu6" and bool(
                ((self.r6 >= 0) & (self.r6 <= int8_math.QMAX)).all())))

    out_dtype = np.int8

    def key(self) -> tuple:
        return (id(self.res), self.in_shape[1:], self.geometry, self.activation, self.fusion,
                self.nonnegative, None if self.r6 is None else self.r6.size)

    def constants(self) -> list[np.ndarray | None]:
        """The arrays the session holds as constants (it is rebuilt when they change)."""
        return [self.weight_q, self.bias]

    def bound(self) -> int:
        return self.sums_bound()

    def value_bound(self, in_bounds: list[float | None]) -> float:
        """Largest |value| of the output: codes."""
        return MAX_CODE

    def sums_bound(self) -> int:
        """Largest possible |acc + bq|."""
        max_w = int(np.abs(self.weight_q.astype(np.int32)).max(initial=0))
        bias = 0 if self.bias is None else int(np.abs(self.bias.astype(np.int64)).max(initial=0))
        return self.weight_q[0].size * MAX_CODE * max_w + bias

    def factor_feeds(self, sums_bound: int, tag: str) -> dict[str, np.ndarray] | None:
        """The factor inputs of this convolution's nodes, or None where its onnxruntime form
        is not provably exact: a requantized value that could reach 2^31 (x86's overflow rule
        is left to ``int8_math``), a fused add whose double sum could round, a damaged
        proto's zero dilation or stride (which the numpy kernel still runs as TNN would)."""
        if min(self.geometry[2]) < 1 or min(self.geometry[3]) < 1 or \
                not np.isfinite(self.m).all():
            return None
        feeds = {f"{tag}m": self.m.reshape(1, -1, 1, 1)}
        largest_add = 0.0
        if self.fusion != int8_math.FUSION_NONE:
            if not np.isfinite(self.add_factor).all():
                return None
            limit = saturation_limit(self.add_factor)
            if not fma_exact_in_double(self.m, self.add_factor, limit):
                return None
            largest_add = MAX_CODE * float(np.abs(self.add_factor).max(initial=0))
            feeds.update({f"{tag}af": self.add_factor.astype(np.float64).reshape(1, -1, 1, 1),
                          f"{tag}neg_limit": np.array(-limit, np.float32),
                          f"{tag}limit": np.array(limit, np.float32)})
        if sums_bound * float(np.abs(self.m).max(initial=0)) + largest_add >= INT32_LIMIT - 2:
            return None
        if self.activation == "relu6":
            feeds[f"{tag}r6"] = self.r6.reshape(1, -1, 1, 1) if self.r6.size > 1 \
                else self.r6.reshape(())
        return feeds

    def write(self, g: OnnxGraph, xs: list[str], out: str, tag: str
              ) -> tuple[str, list, list]:
        """The convolution's nodes from the input codes (and the add operand's), as floats,
        to the int8 output codes ``out``. Returns the output codes as floats, the factor
        inputs the nodes read (name, dtype, dims) and the in-graph checks (none: the factors
        are checked before the run, ``factor_feeds``)."""
        x, add = xs[0], (xs[1] if len(xs) > 1 else None)
        from ..layers._spatial import onnx_window
        group, kernel, strides, dilations, window = self.geometry
        _, c, h, w = self.in_shape
        weight_q, bias = self.weight_q, self.bias
        cg = weight_q.shape[1]
        max_w = max(int(np.abs(weight_q.astype(np.int32)).max(initial=0)), 1)
        chunk = max(1, int8_math.F32_EXACT_INT // (MAX_CODE * max_w) // (kernel[0] * kernel[1]))
        bias_bound = 0 if bias is None else int(np.abs(bias.astype(np.int64)).max(initial=0))
        single = chunk >= cg
        # with one chunk and |sum| + |bias| < 2^24 the Conv adds the bias exactly in f32
        f32_bias = single and bias is not None and \
            cg * kernel[0] * kernel[1] * MAX_CODE * max_w + bias_bound < int8_math.F32_EXACT_INT
        xf, pads = onnx_window(g, x, (h, w), *window)
        wf = weight_q.astype(np.float32)
        parts = []
        for c0 in range(0, cg, chunk):   # exact f32 sums per chunk of input channels
            c1 = min(c0 + chunk, cg)
            xs = xf
            if not single:
                channels = (np.arange(group)[:, None] * cg + np.arange(c0, c1)).reshape(-1)
                xs = g.node("Gather", [xf, g.ints(channels)], axis=1)
            inputs = [xs, g.const(np.ascontiguousarray(wf[:, c0:c1]))]
            if f32_bias:
                inputs.append(g.const(bias.astype(np.float32)))
            part = g.node("Conv", inputs, group=group, kernel_shape=list(kernel), pads=pads,
                          strides=list(strides), dilations=list(dilations))
            parts.append(part if single else g.node("Cast", [part], to=11))
        acc = parts[0] if single else g.node("Sum", parts)
        if bias is not None and not f32_bias:   # (float)(acc + bq): int32 sum, one conversion
            acc = g.node("Add", [g.node("Cast", [acc], to=6),
                                 g.const(bias.astype(np.int32).reshape(1, -1, 1, 1))])
        if not (single and (f32_bias or bias is None)):
            acc = g.node("Cast", [acc], to=1)
        v = g.node("Mul", [acc, f"{tag}m"])
        if self.fusion == int8_math.FUSION_ADD_ACT:
            v = _fused_add(g, v, add, tag)
        if self.nonnegative and self.activation == "relu":
            codes = _round_nonnegative(g, g.node("Clip", [v, g.const(np.float32(0)), g.const(
                np.float32(int8_math.QMAX))]), out)
        elif self.nonnegative and self.r6.size == 1:   # one limit: a single Clip
            codes = _round_nonnegative(g, g.node("Clip", [v, g.const(np.float32(0)),
                                                          f"{tag}r6"]), out)
        elif self.nonnegative:
            codes = _round_nonnegative(g, g.node("Min", [g.node("Relu", [v]), f"{tag}r6"]), out)
        else:
            if self.activation in ("relu", "relu6"):
                v = g.node("Relu", [v])
            if self.activation == "relu6":
                v = g.node("Min", [v, f"{tag}r6"])
            if self.fusion == int8_math.FUSION_ACT_ADD:
                v = _fused_add(g, v, add, tag)
            codes = _round(g, v, out)
        factors = (1, None, 1, 1)
        inputs = [(f"{tag}m", np.float32, factors)]
        if self.activation == "relu6":
            inputs.append((f"{tag}r6", np.float32, factors if self.r6.size > 1 else ()))
        if self.fusion != int8_math.FUSION_NONE:
            inputs += [(f"{tag}af", np.float64, factors), (f"{tag}neg_limit", np.float32, ()),
                       (f"{tag}limit", np.float32, ())]
        return codes, inputs, []


@dataclass
class Int8InnerProduct(Int8Conv):
    """TNN's x86 int8 InnerProduct (spec int8 §12.4): the same sums and epilogue as a 1x1
    convolution of its input flattened to (N, K, 1, 1); the output reshaped to (N,
    ``out_dims``)."""

    out_dims: tuple[int, ...] = ()

    def key(self) -> tuple:
        return ("inner product", *super().key(), self.out_dims)

    def write(self, g: OnnxGraph, xs: list[str], out: str, tag: str
              ) -> tuple[str, list, list]:
        flat = g.node("Reshape", [xs[0], g.ints((0, -1, 1, 1))])
        codes, inputs, checks = super().write(g, [flat], f"{tag}codes", tag)
        dims = g.ints((0, *self.out_dims))
        g.node("Reshape", [f"{tag}codes", dims], out)
        return g.node("Reshape", [codes, dims]), inputs, checks


def saturation_limit(add_factor: np.ndarray) -> float:
    """C, the power of two from which a fused add's f32 sum ``v + a_q·A`` saturates whatever
    a_q is: ``C - 128·max|A| >= 130``."""
    largest = float(np.abs(np.asarray(add_factor, np.float64)).max(initial=0))
    return 2.0 ** math.ceil(math.log2(MAX_CODE * largest + SATURATED))


def fma_exact_in_double(m: np.ndarray, add_factor: np.ndarray, limit: float) -> bool:
    """Whether ``clamp(v, -C, C) + a_q·A`` is exact in double for every channel.

    v = f32((float)(acc + bq)·M) is 0 or, its integer factor being >= 1, a multiple of
    ``spacing(M)``; the ReLU6 limit and C are integers; a_q·A is a multiple of
    ``spacing(A)``. The sum is then a multiple of ``g = min(spacing(M), spacing(A), 1)`` no
    larger than ``C + 128·|A|``, which a double holds exactly below 2^53·g."""
    m = np.abs(np.asarray(m, np.float32).reshape(-1))
    a = np.abs(np.asarray(add_factor, np.float32).reshape(-1))
    m, a = np.broadcast_arrays(m, a)
    one = np.float32(1)
    grain = np.minimum(np.where(m > 0, np.spacing(m), one), np.where(a > 0, np.spacing(a), one))
    grain = np.minimum(grain, one).astype(np.float64)
    return bool(np.all((limit + MAX_CODE * a.astype(np.float64)) / grain < DOUBLE_EXACT))


@dataclass
class Dequantize:
    """TNN's x86 int8 -> fp32 Reformat (spec int8 §13): ``f32(q · s)``; ``scale`` shaped to
    broadcast over the blob (``int8_math.channel_view``)."""

    scale: np.ndarray
    out_dtype = np.float32
    res = None

    def key(self) -> tuple:
        return ("dequantize", self.scale.shape)

    def constants(self) -> list:
        return []

    def bound(self) -> None:
        return None

    def factor_feeds(self, bound: None, tag: str) -> dict[str, np.ndarray]:
        return {f"{tag}s": self.scale.astype(np.float32)}

    def value_bound(self, in_bounds: list[float | None]) -> float | None:
        """Largest |f32(q·s)| (one rounding: within a factor 1 + 2^-24 of |q·s|), or None."""
        return _scaled_bound(in_bounds[0], self.scale)

    def write(self, g: OnnxGraph, xs: list[str], out: str, tag: str
              ) -> tuple[str, list, list]:
        return g.node("Mul", [xs[0], f"{tag}s"], out), [(f"{tag}s", np.float32,
                                                         self.scale.shape)], []


@dataclass
class Quantize(Dequantize):
    """TNN's x86 fp32 -> int8 Reformat (spec int8 §13): ``x86_round(x · f32(1/s))``;
    ``scale`` holds the reciprocals. NaN and |t| >= 2^31 (code -128 from ``cvttps2dq``) are
    flagged, and the chain then runs in numpy."""

    out_dtype = np.int8
    # False where the input is provably finite and |t| below 2^31 (``settle_checks``)
    checked: bool = True

    def key(self) -> tuple:
        return ("quantize", self.scale.shape, self.checked)

    def value_bound(self, in_bounds: list[float | None]) -> float:
        return MAX_CODE

    def write(self, g: OnnxGraph, xs: list[str], out: str, tag: str
              ) -> tuple[str, list, list]:
        t = _half_away(g, g.node("Mul", [xs[0], f"{tag}s"]))
        if not self.checked:
            return _codes(g, t, out), [(f"{tag}s", np.float32, self.scale.shape)], []
        # NaN and |t| >= 2^31 (-128 on x86) are left to int8_math: the run is then redone
        in_range = g.node("Cast", [g.node("Less", [g.node("Abs", [t]), g.const(
            np.float32(INT32_LIMIT))])], to=1)
        check = g.node("ReduceMin", [in_range], keepdims=0)
        return _codes(g, t, out), [(f"{tag}s", np.float32, self.scale.shape)], [check]


@dataclass
class Fp32Layer:
    """An fp32 layer whose ONNX export computes its numpy kernel's f32 operations one for one
    (``LayerType.exact_onnx``), on inputs of these batch-of-one shapes."""

    kind: type
    params: object
    res: object
    in_shapes: list[tuple[int, ...]]
    out_dtype = np.float32

    def key(self) -> tuple:
        return ("fp32", self.kind.__name__, repr(self.params), id(self.res),
                tuple(s[1:] for s in self.in_shapes))

    def constants(self) -> list:
        """The resource's arrays (the export holds them as constants)."""
        return [v.data for v in vars(self.res).values() if isinstance(
            getattr(v, "data", None), np.ndarray)] if self.res is not None else []

    def bound(self) -> None:
        return None

    def factor_feeds(self, bound: None, tag: str) -> dict[str, np.ndarray]:
        return {}

    def value_bound(self, in_bounds: list[float | None]) -> float | None:
        return self.kind.value_bound(self.params, self.res, in_bounds)

    def write(self, g: OnnxGraph, xs: list[str], out: str, tag: str
              ) -> tuple[str, list, list]:
        from ..layers.base import Value
        values = [Value(x, (1, *shape[1:]), np.dtype(np.float32))
                  for x, shape in zip(xs, self.in_shapes)]
        self.kind.to_onnx(self.params, self.res, g, values, [out])
        return out, [], []


def _scaled_bound(bound: float | None, scale: np.ndarray) -> float | None:
    """A bound of |f32(x·s)| for |x| <= ``bound`` (None: unknown, or a scale not finite)."""
    largest = float(np.abs(np.asarray(scale, np.float64)).max(initial=0))
    if bound is None or not math.isfinite(largest):
        return None
    return bound * largest * (1 + 2.0 ** -22)


def settle_checks(ops: list, wiring: list[tuple[list[str], str]],
                  in_bounds: dict[str, float | None]) -> None:
    """Drop the in-graph check of each ``Quantize`` whose input is provably finite with
    ``|x · f32(1/s)| + 0.5`` below 2^31: the bounds of the chain's inputs (``in_bounds``: 128
    for int8 codes, None for float data) carried through each op's ``value_bound``. A
    PP-LCNet block's Reformat after its HardSwish then costs a Mul, a Clip, an Add and the
    casts, not four more passes for a check that cannot fire."""
    bounds = dict(in_bounds)
    for op, (xs, out) in zip(ops, wiring):
        ins = [bounds.get(x) for x in xs]
        if isinstance(op, Quantize):
            t = _scaled_bound(ins[0], op.scale)
            op.checked = t is None or t + 1 >= INT32_LIMIT
        bounds[out] = op.value_bound(ins)


def run_chain(ops: list, wiring: list[tuple[list[str], str]], blobs: dict[str, np.ndarray],
              wanted: set[str] | None = None, memo: ChainMemo | None = None
              ) -> dict[str, np.ndarray] | None:
    """Run layers, in order, as one onnxruntime session: ``ops`` are ``Int8Conv``,
    ``Quantize``, ``Dequantize`` or ``Fp32Layer``; ``wiring[i]`` names the input blobs and
    the output blob of ``ops[i]``; ``blobs`` holds every input (int8 codes or float32) no
    earlier op makes. Returns the outputs named in ``wanted`` (default: all), or None where
    one op's onnxruntime form is not provably exact (``Int8Conv.factor_feeds``) or a
    Reformat met NaN or a value beyond int32, or where onnxruntime fails (a damaged model's
    geometry, an output too large): then the layers run in numpy. ``memo``, a ``ChainMemo``
    the caller keeps with ``ops`` and ``wiring``, spares recomputing on every run what depends
    only on them."""
    if not ENABLED:
        return None
    memo = memo or ChainMemo.of(ops, wiring)
    if any(blobs[b].dtype not in (np.int8, np.float32) for b in memo.outside):
        return None
    key = memo.key + tuple((blobs[b].dtype.char, blobs[b].shape[1:]) for b in memo.outside)
    anchor = next((op.res for op in ops if op.res is not None), None)
    with _lock:
        per_res = _sessions.get(id(anchor))
        if per_res is None:
            per_res = _sessions[id(anchor)] = {}
            if anchor is not None:
                weakref.finalize(anchor, _sessions.pop, id(anchor), None)
        entry = per_res.get(key)
    if entry is not None and not memo.unchanged(entry[1]):
        entry = None
    bounds = tuple(op.bound() for op in ops) if entry is None else entry[2]
    if memo.bounds != bounds:
        factor_feeds = {}
        for i, (op, bound) in enumerate(zip(ops, bounds)):
            factors = op.factor_feeds(bound, f"{i}.")
            if factors is None:
                return None
            factor_feeds.update(factors)
        memo.bounds, memo.factor_feeds = bounds, factor_feeds
    feeds = dict(memo.factor_feeds)
    try:
        if entry is None:
            session, checked = _chain_session(ops, wiring, memo.outside, blobs)
            entry = (session, Constants(memo.layout, memo.current().copy()), bounds, checked)
            with _lock:
                per_res[key] = entry
        for k, name in enumerate(memo.outside):
            feeds[f"in{k}"] = np.ascontiguousarray(blobs[name])
        outs = [(f"out{i}", out) for i, (_, out) in enumerate(wiring)
                if wanted is None or out in wanted]
        values = entry[0].run([name for name, _ in outs] + (["ok"] if entry[3] else []), feeds)
    except Exception:   # noqa: BLE001 - onnxruntime's own types: a damaged model's geometry
        return None     # or an output too large; the numpy kernels report it as TNN would run
    if entry[3] and values.pop() != 1:
        return None   # NaN or |t| >= 2^31 before a rounding: int8_math's rules apply
    return {out: value for (_, out), value in zip(outs, values)}


@dataclass
class Constants:
    """The arrays a chain's session holds as constants (``op.constants()``): their dtypes and
    shapes, and their bytes as one buffer."""

    layout: tuple
    data: np.ndarray


@dataclass
class ChainMemo:
    """What ``run_chain`` keeps between runs of one plan (``ops`` and ``wiring`` fixed;
    ``ChainMemo.of``): the session key's fixed part, the blobs read from outside, byte views
    of the constants (the ops' weight arrays themselves, so that a change made in place shows)
    and a buffer for them, and the factor inputs of the last bounds. Threads running one plan
    at once copy the same bytes into the buffer."""

    key: tuple
    outside: list[str]
    layout: tuple
    views: list[np.ndarray]
    scratch: np.ndarray
    bounds: tuple | None = None
    factor_feeds: dict = field(default_factory=dict)

    @classmethod
    def of(cls, ops: list, wiring: list[tuple[list[str], str]]) -> "ChainMemo":
        made = {out for _, out in wiring}
        arrays = [c for op in ops for c in op.constants()]
        # a non-contiguous array's bytes are gathered on each check (a copy made now would
        # not follow later changes)
        views = [c.reshape(-1).view(np.uint8) if c.flags.c_contiguous else c
                 for c in arrays if c is not None]
        return cls(key=tuple(op.key() for op in ops) + tuple((tuple(xs), out)
                                                               for xs, out in wiring),
                   outside=list(dict.fromkeys(b for xs, _ in wiring for b in xs
                                              if b not in made)),
                   layout=tuple(None if c is None else (c.dtype.str, c.shape) for c in arrays),
                   views=views, scratch=np.empty(sum(v.nbytes for v in views), np.uint8))

    def current(self) -> np.ndarray:
        """The constants' bytes as they are now, in the kept buffer (copy it to keep it)."""
        if self.views:
            np.concatenate([v if v.dtype == np.uint8 and v.ndim == 1 else
                            np.ascontiguousarray(v).reshape(-1).view(np.uint8)
                            for v in self.views], out=self.scratch)
        return self.scratch

    def unchanged(self, constants: Constants) -> bool:
        """Whether the constants still hold the bytes of ``constants`` (the copy taken when the
        session was built): the check on every run (weights may be changed in place) is one
        copy into the kept buffer and one comparison, eight bytes at a time."""
        if self.layout != constants.layout or self.scratch.size != constants.data.size:
            return False
        now, data, n = self.current(), constants.data, self.scratch.size - self.scratch.size % 8
        return bool((now[:n].view(np.uint64) == data[:n].view(np.uint64)).all()
                    and (now[n:] == data[n:]).all())


def _chain_session(ops: list, wiring: list[tuple[list[str], str]], outside: list[str],
                   blobs: dict[str, np.ndarray]):
    """The ops as one graph's session: inputs ``in<k>`` (the blobs ``outside``), outputs
    ``out<i>`` (int8 codes or float32) and, where an op can meet values it leaves to numpy,
    ``ok`` (1 when none did); int8 codes pass between the ops as floats. Also returns
    whether ``ok`` is there."""
    g = OnnxGraph()
    g.prefix = "chain"
    checks: list[str] = []
    values = {name: f"in{k}" if blobs[name].dtype == np.float32 else
              g.node("Cast", [f"in{k}"], to=1) for k, name in enumerate(outside)}
    inputs = [(f"in{k}", blobs[name].dtype, ("N", *blobs[name].shape[1:]))
              for k, name in enumerate(outside)]
    for i, (op, (xs, out)) in enumerate(zip(ops, wiring)):
        values[out], factors, op_checks = op.write(g, [values[x] for x in xs], f"out{i}",
                                                   f"{i}.")
        inputs += factors
        checks += op_checks
    outputs = [(f"out{i}", op.out_dtype, None) for i, op in enumerate(ops)]
    if checks:
        g.node("Min", checks, "ok")
        outputs.append(("ok", np.float32, ()))
    return inference_session(g, inputs, outputs, _options()), bool(checks)


def conv_int8_x86(conv: Int8Conv, x_q: np.ndarray,
                  add: np.ndarray | None = None) -> np.ndarray | None:
    """One TNN x86 int8 convolution (``run_chain``): int8 codes (N, C, H, W) and the fused
    add's operand codes -> the int8 output codes, or None where not provably exact."""
    out = run_chain([conv], [(["x"] if add is None else ["x", "a"], "y")],
                    {"x": x_q, "a": add})
    return None if out is None else out["y"]
