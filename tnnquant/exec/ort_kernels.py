"""Single layers run in onnxruntime: the int8 simulator's convolutions.

TNN's x86 int8 convolution (spec int8 §12.3, §13) is integer sums, then
``x86_round(f32((float)(acc + bq) · M[o]))`` with the fused ReLU/ReLU6 in between. In one
onnxruntime session per layer geometry (weights and factors are inputs, so a session serves
any weights and scales of that shape):

* the sums are a float Conv of the integer codes: exact while every partial sum stays below
  2^24 in any order, which holds when the terms' absolute values sum below 2^24. With codes in
  [-128, 127] and the layer's largest |weight| w, input channels go in chunks of at most
  ``2^24 // (128 · w)`` terms; chunk sums are added in double;
* ``(float)(acc + bq)``: an int32 addition converted once (C's round to nearest), or the
  Conv's own f32 bias when ``|sum| + |bq|`` provably stays below 2^24 (then exact);
* the factor, the activation and ``x86_round`` are the f32 operations ``int8_math`` states.

``requantize_conv`` in int8_math remains the reference; tests/layers/test_convolution_int8.py
holds both to TNN's integer formula.
"""
from __future__ import annotations

import threading
import weakref

import numpy as np

from . import int8_math
from ..parallel import usable_cpus
from .onnx_model import OnnxGraph

MAX_CODE = 128                 # |activation code| <= 128 (spec int8 §12.1)
INT32_LIMIT = 2.0 ** 31        # x86_round: |t| >= 2^31 (and NaN) convert to INT32_MIN

# one session per live weight resource and input geometry: the weights are constants (so
# onnxruntime packs them once; a session is rebuilt if they change), the factors M and the
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


def _x86_round(g: OnnxGraph, v: str, out: str) -> None:
    """``int8_math.x86_round`` for |v| < 2^31 - 1 (the caller checks): ±0.5 added in f32,
    clamp, truncate."""
    t = g.node("Add", [v, g.node("Mul", [g.node("Sign", [v]), g.const(np.float32(0.5))])])
    t = g.node("Clip", [t, g.const(np.float32(int8_math.QMIN)),
                        g.const(np.float32(int8_math.QMAX))])
    g.node("Cast", [t], out, to=3)   # to int8: truncation of in-range values


def _conv_model(weight_q: np.ndarray, bias: np.ndarray | None, activation: str | None,
                shape: tuple[int, ...], geometry) -> bytes:
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
    if activation in ("relu", "relu6"):
        v = g.node("Max", [v, g.const(np.float32(0))])
    if activation == "relu6":
        v = g.node("Min", [v, g.node("Reshape", ["r6", g.ints([1, -1, 1, 1])])])
    _x86_round(g, v, "y")
    inputs = [("x", np.int8, ("N", c, h, w)), ("m", np.float32, (None,))]
    if activation == "relu6":
        inputs.append(("r6", np.float32, (None,)))
    return g.model(inputs, [("y", np.int8, ("N", None, None, None))])


def conv_int8_x86(res: object, x_q: np.ndarray, weight_q: np.ndarray,
                  bias: np.ndarray | None, m: np.ndarray, r6: np.ndarray | None,
                  activation: str | None, geometry) -> np.ndarray | None:
    """TNN's x86 int8 convolution without a fused add: int8 codes (N, C, H, W), the int8
    filter [O][C/g][kH][kW] and int32 bias (or None) of the weight resource ``res``, f32
    factors M (O or 1), the ReLU6 limit codes when ``activation == "relu6"``; ``geometry`` =
    (group, kernel (kh, kw), strides, dilations, window) as for the float export. Returns the
    int8 output codes, or None where a requantized value could reach 2^31 (x86's overflow
    rule is left to ``int8_math``) or where ONNX cannot state the geometry (a damaged proto's
    zero dilation or stride, which the numpy kernel still runs as TNN would)."""
    if min(geometry[2]) < 1 or min(geometry[3]) < 1:
        return None
    k = weight_q[0].size
    max_w = int(np.abs(weight_q.astype(np.int32)).max(initial=0))
    bias_bound = 0 if bias is None else int(np.abs(bias.astype(np.int64)).max(initial=0))
    m = np.asarray(m, np.float32).reshape(-1)
    largest = (k * MAX_CODE * max_w + bias_bound) * float(np.abs(m).max(initial=0))
    if not np.isfinite(m).all() or largest >= INT32_LIMIT - 2:
        return None
    key = (x_q.shape[1:], geometry, activation)
    with _lock:
        per_res = _sessions.get(id(res))
        if per_res is None:
            per_res = _sessions[id(res)] = {}
            weakref.finalize(res, _sessions.pop, id(res), None)
        entry = per_res.get(key)
    if entry is None or not (np.array_equal(entry[1], weight_q) and
                             (bias is None or np.array_equal(entry[2], bias))):
        import onnxruntime as ort
        session = ort.InferenceSession(
            _conv_model(weight_q, bias, activation, x_q.shape, geometry), _options(),
            providers=["CPUExecutionProvider"])
        entry = (session, weight_q.copy(), None if bias is None else bias.copy())
        with _lock:
            per_res[key] = entry
    session = entry[0]
    feeds = {"x": np.ascontiguousarray(x_q, np.int8), "m": m}
    if activation == "relu6":
        feeds["r6"] = np.asarray(r6, np.float32).reshape(-1)
    return session.run(["y"], feeds)[0]
