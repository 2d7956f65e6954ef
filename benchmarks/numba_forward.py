"""The design alternative to the onnxruntime backend, measured: compiled fused kernels (numba)
for the convolutions (~90% of the float forward: direct depthwise with fused bias and
activation, im2col + numpy/BLAS matmul + a fused epilogue for the rest), every other layer its
numpy kernel, against the onnxruntime backend on the same fused graph and inputs.

    pip install numba && OPENBLAS_NUM_THREADS=1 python benchmarks/numba_forward.py [--cache]

Not a dependency of tnnquant: importing numba alone takes ~0.25-0.8 s and ~150 MB of RSS
(LLVM), and the first call compiles for seconds (``--cache`` keeps the machine code in
__pycache__ for the next run). Run it with NUMBA_NUM_THREADS=1 as well to see the kernels
without thread contention. Prints ms per image at batch 1 and 8, the first call (compile or
cache load) and the peak RSS."""
import resource
import sys
import time
from pathlib import Path

import numpy as np

_start = time.perf_counter()
from numba import njit, prange  # noqa: E402 - timed

IMPORT_SECONDS = time.perf_counter() - _start

import tnnquant.layers.convolution as C  # noqa: E402
from tnnquant.exec.executor import Executor  # noqa: E402
from tnnquant.formats.io import load_model  # noqa: E402
from tnnquant.passes.fuse_activation import fuse_conv_activation  # noqa: E402

CACHE = "--cache" in sys.argv


@njit(cache=CACHE)
def activate(v, act):
    """TNN's fused conv activations: 1 ReLU, 2 ReLU6, 256 Swish."""
    if act == 1:
        return max(v, np.float32(0))
    if act == 2:
        return min(max(v, np.float32(0)), np.float32(6))
    if act == 256:
        return v * (np.float32(1) / (np.float32(1) + np.exp(-v)))
    return v

@njit(parallel=True, fastmath=False, cache=CACHE)
def depthwise(x, w, b, out, sh, sw, pt, pl, dh, dw, act):
    n, c, h, wd = x.shape
    _, _, oh, ow = out.shape
    kh, kw = w.shape[1], w.shape[2]
    for nc in prange(n * c):
        bn, ch = nc // c, nc % c
        for oy in range(oh):
            for ox in range(ow):
                acc = np.float32(0)
                for i in range(kh):
                    iy = oy * sh - pt + i * dh
                    if iy < 0 or iy >= h:
                        continue
                    for j in range(kw):
                        ix = ox * sw - pl + j * dw
                        if ix < 0 or ix >= wd:
                            continue
                        acc += x[bn, ch, iy, ix] * w[ch, i, j]
                out[bn, ch, oy, ox] = activate(acc + b[ch], act)

@njit(parallel=True, cache=CACHE)
def im2col(x, cols, sh, sw, pt, pl, dh, dw, kh, kw, oh, ow):
    c, h, wd = x.shape
    for ci in prange(c):
        for i in range(kh):
            for j in range(kw):
                r = (ci * kh + i) * kw + j
                for oy in range(oh):
                    iy = oy * sh - pt + i * dh
                    for ox in range(ow):
                        ix = ox * sw - pl + j * dw
                        if 0 <= iy < h and 0 <= ix < wd:
                            cols[r, oy * ow + ox] = x[ci, iy, ix]
                        else:
                            cols[r, oy * ow + ox] = 0

@njit(parallel=True, cache=CACHE)
def epilogue(y, b, act):
    o, p = y.shape
    for k in prange(o):
        for q in range(p):
            y[k, q] = activate(y[k, q] + b[k], act)

def conv_numba(x, p, res):
    n, c, h, w = x.shape
    group, weight = C.conv_filter(p, res, c)
    bias = C.conv_bias(res, p.output_channel) if p.bias else np.zeros(p.output_channel, np.float32)
    geo = C.conv_pads(p, h, w)
    dh, dw = C.tap_dilation(p)
    out = np.empty((n, p.output_channel, geo.out_h, geo.out_w), np.float32)
    x = np.ascontiguousarray(x, np.float32)
    if group == c == p.output_channel and group > 1:
        depthwise(x, np.ascontiguousarray(weight[:, 0]), bias, out, p.stride_h, p.stride_w,
                  geo.pad_top, geo.pad_left, dh, dw, p.activation_type)
        return out
    og, cg = p.output_channel // group, c // group
    wg = weight.reshape(group, og, cg * p.kernel_h * p.kernel_w)
    pix = geo.out_h * geo.out_w
    for b_ in range(n):
        for g_ in range(group):
            xs = x[b_, g_ * cg:(g_ + 1) * cg]
            pointwise = p.kernel_h == p.kernel_w == 1 and geo.pad_top == geo.pad_left == 0
            if pointwise and p.stride_h == p.stride_w == 1:
                cols = xs.reshape(cg, pix)
            else:
                cols = np.empty((cg * p.kernel_h * p.kernel_w, pix), np.float32)
                im2col(np.ascontiguousarray(xs), cols, p.stride_h, p.stride_w, geo.pad_top,
                       geo.pad_left,
                       dh, dw, p.kernel_h, p.kernel_w, geo.out_h, geo.out_w)
            y = wg[g_] @ cols
            epilogue(y, bias[g_ * og:(g_ + 1) * og], p.activation_type)
            out[b_, g_ * og:(g_ + 1) * og] = y.reshape(og, geo.out_h, geo.out_w)
    return out

C.Convolution.forward = classmethod(lambda cls, p, res, *xs: conv_numba(xs[0], p, res))

def main():
    rows = []
    for name in ("mobilenetv2", "yolov8n"):
        base = Path("/work/shared/models") / name
        g = fuse_conv_activation(load_model(base / f"{name}.tnnproto", base / f"{name}.tnnmodel"))
        ex = Executor(g, fp32="numpy")
        ref = Executor(g, fp32="fast")
        xs = [np.load(p_) for p_ in sorted((base / "inputs").glob("*.npy"))]
        inp = g.inputs[0].name
        t = time.perf_counter(); a = ex.run({inp: xs[0]}); first = time.perf_counter() - t
        b = ref.run({inp: xs[0]})
        err = max(float(np.abs(a[k] - b[k]).max() / np.abs(b[k]).max()) for k in a)
        for batch in (1, 8):
            x = np.concatenate([xs[i % 3] for i in range(batch)])
            res = {}
            for tag, e in (("numba", ex), ("ort", ref)):
                e.run({inp: x})
                ts = []
                for _ in range(max(3, 16 // batch)):
                    t = time.perf_counter(); e.run({inp: x}); ts.append(time.perf_counter() - t)
                res[tag] = np.median(ts) / batch * 1e3
            rows.append(f"{name:12s} b{batch} numba {res['numba']:7.2f} ms/img  onnxruntime "
                        f"backend {res['ort']:7.2f} ms/img  ratio {res['numba'] / res['ort']:.2f}"
                        f"  first call (compile) {first:.2f} s  max rel diff {err:.1e}")
    print(f"import numba {IMPORT_SECONDS:.2f} s; cache={CACHE}")
    print("\n".join(rows))
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024:.0f} MB")

main()
