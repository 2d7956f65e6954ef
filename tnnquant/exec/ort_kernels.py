"""Single layers run in onnxruntime: the int8 simulator's convolutions.

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

import numpy as np

from . import int8_math
from ..parallel import usable_cpus
from .onnx_model import OnnxGraph

MAX_CODE = 128                 # |activation code| <= 128 (spec int8 §12.1)
INT32_LIMIT = 2.0 ** 31        # x86_round: |t| >= 2^31 (and NaN) convert to INT32_MIN
DOUBLE_EXACT = 2.0 ** 52       # a double holds k·g exactly for |k| < 2^53 (one bit spare)
SATURATED = 130                # |sum| >= this rounds to a saturated code (|code| <= 128)
# False runs every int8 layer in numpy (int8_math), e.g. to test both paths
ENABLED = True

# one session per live weight resource and input geometry: the weights are constants (so
# onnxruntime packs them once; a session is rebuilt if they change), the factors M, A and the
# ReLU6 limits are inputs (new blob scales need no new session)
_sessions: dict[int, dict] = {}
_lock = threading.Lock()


def _options():
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = min(2, usable_cpus())
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_mem_pattern = False
    options.log_severity_level = 3
    return options


def _x86_round(g: OnnxGraph, v: str, out: str, nonnegative: bool) -> None:
    """``int8_math.x86_round`` for |v| < 2^31 - 1 (the caller checks): ±0.5 added in f32,
    clamp, truncate. A value known to be >= 0 gets +0.5 (as copysign gives for +0 too) and
    only the upper clamp."""
    if nonnegative:
        t = g.node("Min", [g.node("Add", [v, g.const(int8_math.HALF)]),
                           g.const(np.float32(int8_math.QMAX))])
    else:
        t = g.node("Add", [v, g.node("Mul", [g.node("Sign", [v]), g.const(int8_math.HALF)])])
        t = g.node("Clip", [t, g.const(np.float32(int8_math.QMIN)),
                            g.const(np.float32(int8_math.QMAX))])
    g.node("Cast", [t], out, to=3)   # to int8: truncation of in-range values


def _activation(g: OnnxGraph, v: str, activation: str | None) -> str:
    if activation in ("relu", "relu6"):
        v = g.node("Relu", [v])
    if activation == "relu6":
        v = g.node("Min", [v, g.node("Reshape", ["r6", g.ints([1, -1, 1, 1])])])
    return v


def _fused_add(g: OnnxGraph, v: str) -> str:
    """``fma(a_q, A, v)`` as the double sum of ``clamp(v, -C, C)`` and the exact ``a_q·A``
    (exact where ``fma_exact_in_double`` holds), rounded once to f32."""
    v = g.node("Clip", [v, "neg_limit", "limit"])
    term = g.node("Mul", [g.node("Cast", ["a"], to=11),
                          g.node("Reshape", ["af", g.ints([1, -1, 1, 1])])])
    return g.node("Cast", [g.node("Add", [g.node("Cast", [v], to=11), term])], to=1)


def _conv_model(weight_q: np.ndarray, bias: np.ndarray | None, activation: str | None,
                shape: tuple[int, ...], geometry, fusion: int, nonnegative: bool) -> bytes:
    from ..layers._spatial import onnx_window
    group, kernel, strides, dilations, window = geometry
    _, c, h, w = shape
    o, cg = weight_q.shape[:2]
    max_w = max(int(np.abs(weight_q.astype(np.int32)).max(initial=0)), 1)
    chunk = max(1, int8_math.F32_EXACT_INT // (MAX_CODE * max_w) // (kernel[0] * kernel[1]))
    bias_bound = 0 if bias is None else int(np.abs(bias.astype(np.int64)).max(initial=0))
    single = chunk >= cg
    # with one chunk and |sum| + |bias| < 2^24 the Conv adds the bias exactly in f32
    f32_bias = single and bias is not None and \
        cg * kernel[0] * kernel[1] * MAX_CODE * max_w + bias_bound < int8_math.F32_EXACT_INT
    g = OnnxGraph()
    g.prefix = "conv_int8"
    x, pads = onnx_window(g, g.node("Cast", ["x"], to=1), (h, w), *window)
    wf = weight_q.astype(np.float32)
    parts = []
    for c0 in range(0, cg, chunk):   # exact f32 sums per chunk of input channels
        c1 = min(c0 + chunk, cg)
        xs = x
        if not single:
            channels = (np.arange(group)[:, None] * cg + np.arange(c0, c1)).reshape(-1)
            xs = g.node("Gather", [x, g.ints(channels)], axis=1)
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
    v = g.node("Mul", [g.node("Cast", [acc], to=1) if not (single and (f32_bias or bias is None))
                       else acc, g.node("Reshape", ["m", g.ints([1, -1, 1, 1])])])
    if fusion == int8_math.FUSION_ADD_ACT:
        v = _fused_add(g, v)
    v = _activation(g, v, activation)
    if fusion == int8_math.FUSION_ACT_ADD:
        v = _fused_add(g, v)
    _x86_round(g, v, "y", nonnegative)
    inputs = [("x", np.int8, ("N", c, h, w)), ("m", np.float32, (None,))]
    if activation == "relu6":
        inputs.append(("r6", np.float32, (None,)))
    if fusion != int8_math.FUSION_NONE:
        inputs += [("a", np.int8, ("N", o, None, None)), ("af", np.float64, (None,)),
                   ("neg_limit", np.float32, ()), ("limit", np.float32, ())]
    return g.model(inputs, [("y", np.int8, ("N", None, None, None))])


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


def conv_int8_x86(res: object, x_q: np.ndarray, weight_q: np.ndarray,
                  bias: np.ndarray | None, m: np.ndarray, r6: np.ndarray | None,
                  activation: str | None, geometry, add: np.ndarray | None = None,
                  add_factor: np.ndarray | None = None,
                  fusion: int = int8_math.FUSION_NONE) -> np.ndarray | None:
    """TNN's x86 int8 convolution: int8 codes (N, C, H, W), the int8 filter [O][C/g][kH][kW]
    and int32 bias (or None) of the weight resource ``res``, f32 factors M (O or 1), the
    ReLU6 limit codes when ``activation == "relu6"``; ``geometry`` = (group, kernel (kh, kw),
    strides, dilations, window) as for the float export; with a fused add (``fusion``), its
    operand codes ``add`` (the output's shape) and factors ``add_factor`` A (O or 1). Returns
    the int8 output codes, or None where this path is not provably exact or cannot run: a
    requantized value that could reach 2^31 (x86's overflow rule is left to ``int8_math``), a
    fused add whose double sum could round, a damaged proto's zero dilation or stride (which
    the numpy kernel still runs as TNN would)."""
    if not ENABLED or min(geometry[2]) < 1 or min(geometry[3]) < 1:
        return None
    m = np.asarray(m, np.float32).reshape(-1)
    if not np.isfinite(m).all():
        return None
    feeds = {"x": np.ascontiguousarray(x_q, np.int8), "m": m}
    largest_add = 0.0
    if fusion != int8_math.FUSION_NONE:
        add_factor = np.asarray(add_factor, np.float32).reshape(-1)
        if not np.isfinite(add_factor).all():
            return None
        limit = saturation_limit(add_factor)
        if not fma_exact_in_double(m, add_factor, limit):
            return None
        largest_add = MAX_CODE * float(np.abs(add_factor).max(initial=0))
        feeds.update(a=np.ascontiguousarray(add, np.int8), af=add_factor.astype(np.float64),
                     neg_limit=np.array(-limit, np.float32),
                     limit=np.array(limit, np.float32))
    nonnegative = activation == "relu" or \
        (activation == "relu6" and bool((np.asarray(r6) >= 0).all()))
    nonnegative = nonnegative and fusion != int8_math.FUSION_ACT_ADD
    if activation == "relu6":
        feeds["r6"] = np.asarray(r6, np.float32).reshape(-1)
    key = (x_q.shape[1:], geometry, activation, fusion, nonnegative)
    with _lock:
        per_res = _sessions.get(id(res))
        if per_res is None:
            per_res = _sessions[id(res)] = {}
            weakref.finalize(res, _sessions.pop, id(res), None)
        entry = per_res.get(key)
    if entry is None or not (np.array_equal(entry[1], weight_q) and
                             (bias is None or np.array_equal(entry[2], bias))):
        entry = None
        max_w = int(np.abs(weight_q.astype(np.int32)).max(initial=0))
        bias_bound = 0 if bias is None else int(np.abs(bias.astype(np.int64)).max(initial=0))
        sums_bound = weight_q[0].size * MAX_CODE * max_w + bias_bound
    else:
        sums_bound = entry[3]
    largest = sums_bound * float(np.abs(m).max(initial=0)) + largest_add
    if largest >= INT32_LIMIT - 2:
        return None
    if entry is None:
        import onnxruntime as ort
        session = ort.InferenceSession(
            _conv_model(weight_q, bias, activation, x_q.shape, geometry, fusion, nonnegative),
            _options(), providers=["CPUExecutionProvider"])
        entry = (session, weight_q.copy(), None if bias is None else bias.copy(), sums_bound)
        with _lock:
            per_res[key] = entry
    return entry[0].run(["y"], feeds)[0]
