"""NAIVE-order fp32 kernels (``forward_naive``, ``Executor(graph, fp32="naive")``): each equals a
plain loop written from spec int8 §14 bit for bit, on values spanning 40 binary orders of
magnitude (where any other summation order changes the result), and the fast kernel to float
rounding on ordinary data."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tnnquant.calib import collect
from tnnquant.config import QuantConfig
from tnnquant.errors import ConfigError
from tnnquant.exec import naive_math
from tnnquant.exec.executor import Executor, has_kernel
from tnnquant.formats.rawbuffer import RawBuffer
from tnnquant.layers import LAYERS
from tnnquant.layers._resources import ConvResource
from tnnquant.layers.convolution import ConvParams, conv_pads
from tnnquant.layers.inner_product import InnerProductResource
from tnnquant.layers.pooling import PoolingParams, in_bounds_count, pool_pads
from tnnquant.testing import GraphBuilder, run_layer

F32 = np.float32
LIBM = naive_math.libm()


def c_expf(v) -> F32:
    """The C library's expf where there is one (else the port, itself tested against it)."""
    if LIBM is not None:
        return F32(LIBM.expf(float(v)))
    return naive_math.expf(np.array([v], F32))[0]


def bits(x) -> np.ndarray:
    return np.ascontiguousarray(x, F32).view(np.uint32)


def assert_bits(got, want):
    got, want = np.asarray(got, F32), np.asarray(want, F32)
    assert got.shape == want.shape
    same = (bits(got) == bits(want)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), f"{(~same).sum()} of {got.size} differ, first at {np.argwhere(~same)[0]}"


def adversarial(rng, shape) -> np.ndarray:
    mag = np.exp2(rng.integers(-20, 20, shape)).astype(F32)
    return (rng.standard_normal(shape).astype(F32) * mag).astype(F32)


def assert_close_to_fast(naive, fast):
    """Same values to float rounding (the kernels differ only in summation order)."""
    scale = float(np.abs(fast).max()) or 1.0
    np.testing.assert_allclose(naive, fast, rtol=1e-6, atol=1e-6 * scale)


# --- Convolution ---------------------------------------------------------------------------------

def conv_case(group, cin, cout, k, stride, pad, pad_type, dh=1, dw=1, act=0, bias=True):
    return ConvParams(group, cin // group, cout, k, k, stride, stride, pad, pad, int(bias),
                      pad_type, dh, dw, act)


def conv_resource(rng, p: ConvParams, data) -> ConvResource:
    w = data(rng, (p.output_channel, p.input_channel, p.kernel_h, p.kernel_w))
    b = data(rng, (p.output_channel,)) if p.bias else None
    return ConvResource("layer", p.bias, RawBuffer.of(w, dims=w.shape),
                        None if b is None else RawBuffer.of(b, dims=b.shape))


def activate_ref(r: F32, act: int) -> F32:
    if act == 1:
        return r if r > 0 else F32(0)
    if act == 2:
        return min(max(r, F32(0)), F32(6))
    if act == 256:
        return F32(F32(F32(1) / F32(F32(1) + c_expf(-r))) * r)
    return r


def conv_loop(x: np.ndarray, p: ConvParams, res: ConvResource) -> np.ndarray:
    """TNN's NAIVE fp32 convolution as spec int8 §14 writes it: for kh, kw (out-of-bounds
    positions skipped), for each input channel of the group, ``r = f32(r + f32(x·w))``; then
    ``+ bias`` and the activation; the vertical dilation steps both axes."""
    n, c, h, w = x.shape
    geo = conv_pads(p, h, w)
    cg, og = c // p.group, p.output_channel // p.group
    wt = res.filter.data.reshape(p.output_channel, cg, p.kernel_h, p.kernel_w)
    out = np.empty((n, p.output_channel, geo.out_h, geo.out_w), F32)
    d = p.dilation_h
    for b in range(n):
        for o in range(p.output_channel):
            g = o // og
            for oy in range(geo.out_h):
                for ox in range(geo.out_w):
                    r = F32(0)
                    for kh in range(p.kernel_h):
                        iy = oy * p.stride_h - geo.pad_top + kh * d
                        for kw in range(p.kernel_w):
                            ix = ox * p.stride_w - geo.pad_left + kw * d
                            if not (0 <= iy < h and 0 <= ix < w):
                                continue
                            for ic in range(cg):
                                r = F32(r + F32(x[b, g * cg + ic, iy, ix] * wt[o, ic, kh, kw]))
                    if p.bias:
                        r = F32(r + res.bias.data[o])
                    out[b, o, oy, ox] = activate_ref(r, p.activation_type)
    return out


CONV_CASES = {
    "dense 3x3 pad 1": (conv_case(1, 4, 5, 3, 1, 1, -1), (2, 4, 6, 6)),
    "dense 3x3 stride 2 SAME": (conv_case(1, 3, 4, 3, 2, 0, 0, act=1), (2, 3, 7, 6)),
    "VALID, window starting inside": (conv_case(1, 2, 3, 3, 3, 0, 1), (1, 2, 8, 8)),
    "grouped ReLU6": (conv_case(2, 4, 6, 3, 1, 1, -1, act=2), (2, 4, 5, 5)),
    "depthwise ReLU6": (conv_case(6, 6, 6, 3, 2, 1, -1, act=2), (2, 6, 7, 7)),
    "dilation_h 2, dilation_w 1": (conv_case(1, 3, 2, 3, 1, 2, -1, dh=2, dw=1), (1, 3, 7, 7)),
    "1x1 stride 2 ReLU": (conv_case(1, 8, 5, 1, 2, 0, -1, act=1), (2, 8, 5, 6)),
    "x*sigmoid(x)": (conv_case(1, 4, 4, 3, 1, 1, -1, act=256), (2, 4, 5, 5)),
    "no bias 5x5": (conv_case(1, 3, 2, 5, 1, 2, -1, bias=False), (1, 3, 6, 6)),
}


@pytest.mark.parametrize("name", list(CONV_CASES))
def test_convolution_equals_loop(name):
    p, shape = CONV_CASES[name]
    rng = np.random.default_rng(len(name))
    x = adversarial(rng, shape)
    res = conv_resource(rng, p, adversarial)
    got = run_layer("Convolution", p, x, resource=res, fp32="naive")
    assert_bits(got, conv_loop(x, p, res))


@pytest.mark.parametrize("name", list(CONV_CASES))
def test_convolution_close_to_fast(name):
    p, shape = CONV_CASES[name]
    rng = np.random.default_rng(len(name) + 1)
    normal = lambda r, s: r.standard_normal(s).astype(F32)  # noqa: E731
    x = normal(rng, shape)
    res = conv_resource(rng, p, normal)
    assert_close_to_fast(run_layer("Convolution", p, x, resource=res, fp32="naive"),
                         run_layer("Convolution", p, x, resource=res))


def test_convolution_naive_is_not_blas_order():
    """On data where the summation order shows, the NAIVE kernel is not the exactly rounded
    convolution (what blocked FMA sums approach). Not compared with the fast kernel itself: a
    BLAS that sums in k order (the reference BLAS) would give the NAIVE result there."""
    p, shape = conv_case(1, 16, 8, 3, 1, 1, -1), (2, 16, 9, 9)
    rng = np.random.default_rng(9)
    x, res = adversarial(rng, shape), conv_resource(rng, p, adversarial)
    w = res.filter.data.reshape(8, 16, 3, 3).astype(np.float64)
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    exact = np.einsum("nchwij,ocij->nohw", windows, w) + res.bias.data[None, :, None, None]
    naive = run_layer("Convolution", p, x, resource=res, fp32="naive")
    assert not np.array_equal(naive, exact.astype(F32))


def test_convolution_relu_as_tnn_writes_it():
    """ReLU is ``r > 0 ? r : 0``: NaN becomes 0 (numpy's maximum would keep it)."""
    p = conv_case(1, 1, 1, 1, 1, 0, -1, act=1, bias=False)
    res = ConvResource("layer", 0, RawBuffer.of(np.ones((1, 1, 1, 1), F32), dims=(1, 1, 1, 1)))
    x = np.array([np.nan, -1.0, -0.0, 2.0], F32).reshape(1, 1, 2, 2)
    assert_bits(run_layer("Convolution", p, x, resource=res, fp32="naive"),
                np.array([0, 0, 0, 2], F32).reshape(1, 1, 2, 2))


@pytest.mark.parametrize("name", list(CONV_CASES) + ["pointwise"])
def test_convolution_image_by_image(monkeypatch, name):
    """Large images go one by one, straight into the output (an unpadded 1x1 convolution
    reads its input in place): the same bits."""
    from tnnquant.layers import convolution
    monkeypatch.setattr(convolution, "NAIVE_DIRECT_PIXELS", 1)
    p, shape = CONV_CASES.get(name) or (conv_case(2, 6, 4, 1, 1, 0, -1, act=1), (3, 6, 4, 5))
    rng = np.random.default_rng(len(name) + 2)
    x = adversarial(rng, shape)
    res = conv_resource(rng, p, adversarial)
    assert_bits(run_layer("Convolution", p, x, resource=res, fp32="naive"), conv_loop(x, p, res))


def test_convolution_many_image_blocks(monkeypatch):
    """Column blocks of one image and of a few groups give the same bits."""
    from tnnquant.layers import convolution
    p, shape = conv_case(6, 6, 12, 3, 1, 1, -1, act=2), (3, 6, 6, 6)
    rng = np.random.default_rng(11)
    x, res = adversarial(rng, shape), conv_resource(rng, p, adversarial)
    whole = run_layer("Convolution", p, x, resource=res, fp32="naive")
    monkeypatch.setattr(convolution, "NAIVE_COLUMN_BYTES", 600)
    assert_bits(run_layer("Convolution", p, x, resource=res, fp32="naive"), whole)
    assert_bits(whole, conv_loop(x, p, res))


# --- InnerProduct --------------------------------------------------------------------------------

def ip_resource(rng, num_output, k, bias, data) -> InnerProductResource:
    w = data(rng, (num_output, k))
    b = data(rng, (num_output,)) if bias else np.zeros(0, F32)
    return InnerProductResource("layer", RawBuffer.of(w, dims=w.shape),
                                RawBuffer.of(b, dims=b.shape))


def ip_loop(x: np.ndarray, res: InnerProductResource, num_output: int) -> np.ndarray:
    xf = x.reshape(x.shape[0], -1)
    w = res.weight.data.reshape(num_output, -1)
    out = np.empty((x.shape[0], num_output), F32)
    for b in range(x.shape[0]):
        for o in range(num_output):
            r = F32(0)
            for k in range(xf.shape[1]):
                r = F32(r + F32(w[o, k] * xf[b, k]))
            if res.bias.size:
                r = F32(r + res.bias.data[o])
            out[b, o] = r
    return out


@pytest.mark.parametrize("shape,num_output,bias", [((3, 2, 4, 5), 7, True), ((1, 30), 5, False),
                                                   ((2, 300, 1, 1), 3, True)])
def test_inner_product_equals_loop(shape, num_output, bias):
    rng = np.random.default_rng(num_output)
    k = int(np.prod(shape[1:]))
    x, res = adversarial(rng, shape), ip_resource(rng, num_output, k, bias, adversarial)
    params = f"{num_output} {int(bias)} 0 1"
    got = run_layer("InnerProduct", params, x, resource=res, fp32="naive")
    assert_bits(got.reshape(shape[0], num_output), ip_loop(x, res, num_output))
    xn = rng.standard_normal(shape).astype(F32)
    resn = ip_resource(rng, num_output, k, bias, lambda r, s: r.standard_normal(s).astype(F32))
    assert_close_to_fast(run_layer("InnerProduct", params, xn, resource=resn, fp32="naive"),
                         run_layer("InnerProduct", params, xn, resource=resn))


# --- Pooling -------------------------------------------------------------------------------------

def pool_loop(x: np.ndarray, p: PoolingParams) -> np.ndarray:
    """Average over the window clipped to the input: r = f32(r + x) row by row from 0, then
    r / count (spec int8 §14)."""
    n, c, h, w = x.shape
    geo = pool_pads(p, x.shape)
    count_h = in_bounds_count(h, geo.out_h, geo.kernel_h, p.stride_h, geo.pad_top)
    count_w = in_bounds_count(w, geo.out_w, geo.kernel_w, p.stride_w, geo.pad_left)
    out = np.empty((n, c, geo.out_h, geo.out_w), F32)
    for b in range(n):
        for ch in range(c):
            for oy in range(geo.out_h):
                for ox in range(geo.out_w):
                    y0, x0 = oy * p.stride_h - geo.pad_top, ox * p.stride_w - geo.pad_left
                    r = F32(0)
                    for iy in range(max(y0, 0), min(y0 + geo.kernel_h, h)):
                        for ix in range(max(x0, 0), min(x0 + geo.kernel_w, w)):
                            r = F32(r + x[b, ch, iy, ix])
                    with np.errstate(divide="ignore", invalid="ignore"):
                        out[b, ch, oy, ox] = F32(r / F32(count_h[oy] * count_w[ox]))
    return out


POOL_CASES = {
    "3x3 stride 2 pad 1 ceil": ("1 3 3 2 2 1 1 -1 -1 -1 1 0 0 0", (2, 3, 8, 7)),
    "2x2 SAME": ("1 2 2 2 2 0 0 -1 -1 0 0 0 0 0", (2, 8, 9, 9)),
    "3x3 stride 1 VALID": ("1 3 3 1 1 0 0 -1 -1 1 0 0 0 0", (1, 3, 6, 5)),
    "global": ("1 0 0 1 1 0 0 -1 -1 -1 0 0 0 0", (3, 4, 7, 7)),
    "global 1x1 batch 1": ("1 0 0 1 1 0 0 -1 -1 -1 0 0 0 0", (1, 1, 9, 9)),
}


def test_global_average_pooling_is_sequential():
    """1 followed by 80 halves of an ulp: in order, every addition rounds back to 1."""
    x = np.full((1, 1, 9, 9), 2.0 ** -24, F32)
    x[0, 0, 0, 0] = 1
    p = "1 0 0 1 1 0 0 -1 -1 -1 0 0 0 0"
    assert run_layer("Pooling", p, x, fp32="naive")[0, 0, 0, 0] == F32(F32(1) / F32(81))
    assert run_layer("Pooling", p, x)[0, 0, 0, 0] > F32(F32(1) / F32(81))


@pytest.mark.parametrize("name", list(POOL_CASES))
def test_average_pooling_equals_loop(name):
    words, shape = POOL_CASES[name]
    p, _ = PoolingParams.parse(words.split())
    rng = np.random.default_rng(len(name))
    x = adversarial(rng, shape)
    assert_bits(run_layer("Pooling", p, x, fp32="naive"), pool_loop(x, p))
    xn = rng.standard_normal(shape).astype(F32)
    assert_close_to_fast(run_layer("Pooling", p, xn, fp32="naive"), run_layer("Pooling", p, xn))


@pytest.mark.parametrize("words", ["0 3 3 2 2 1 1 -1 -1 -1 0 0 0 0",      # max: exact anyway
                                   "1 0 0 1 1 0 0 -1 -1 -1 0 1 2 3"])     # adaptive: not known
def test_pooling_without_naive_order_runs_fast_kernel(words):
    x = adversarial(np.random.default_rng(0), (2, 3, 7, 8))
    assert_bits(run_layer("Pooling", words, x, fp32="naive"), run_layer("Pooling", words, x))


# --- element-wise and Softmax --------------------------------------------------------------------

def test_sigmoid_equals_loop():
    x = np.concatenate([(np.random.default_rng(1).standard_normal(300) * 8).astype(F32),
                        np.array([-100, -88, 0, -0.0, 89, 100], F32)])
    want = [F32(F32(1) / F32(F32(1) + c_expf(-v))) for v in x]
    got = run_layer("Sigmoid", "", x.reshape(1, -1, 1, 1), fp32="naive").reshape(-1)
    assert_bits(got, want)
    assert_close_to_fast(got, run_layer("Sigmoid", "", x.reshape(1, -1, 1, 1)).reshape(-1))


def test_swish_equals_double_formula():
    """Standalone Swish: ``f32(x / (1.0 + exp(-x)))`` in double with C's exp."""
    x = np.concatenate([(np.random.default_rng(2).standard_normal(3000) * 8).astype(F32),
                        np.array([-700, -88, 0, -0.0, 1e-30, 89, 700], F32)])
    want = [F32(float(v) / (1.0 + math.exp(-float(v)))) for v in x]
    got = run_layer("Swish", "", x.reshape(1, -1, 1, 1), fp32="naive").reshape(-1)
    assert_bits(got, want)
    assert_close_to_fast(got, run_layer("Swish", "", x.reshape(1, -1, 1, 1)).reshape(-1))


def softmax_loop(x: np.ndarray, axis: int) -> np.ndarray:
    moved = np.moveaxis(x, axis, -1)
    out = np.empty_like(moved)
    for idx in np.ndindex(moved.shape[:-1]):
        row = moved[idx]
        mx = max(row)
        e = [c_expf(F32(v - mx)) for v in row]
        s = F32(0)
        for v in e:
            s = F32(s + v)
        out[idx] = [F32(v / s) for v in e]
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("axis,shape", [(1, (2, 17, 3, 4)), (-1, (3, 2, 40)), (0, (9, 1)),
                                        (1, (1, 16, 1, 1))])
@pytest.mark.parametrize("type_str", ["Softmax", "SoftmaxCaffe"])
def test_softmax_equals_loop(type_str, axis, shape):
    x = (np.random.default_rng(3).standard_normal(shape) * 6).astype(F32)
    got = run_layer(type_str, str(axis), x, fp32="naive")
    assert_bits(got, softmax_loop(x, axis))
    assert_close_to_fast(got, run_layer(type_str, str(axis), x))


# --- executor and configuration ------------------------------------------------------------------

def test_layers_with_naive_kernels():
    """The layer types whose fast kernel is not TNN's NAIVE order; every other layer keeps
    ``forward`` (bit-exact already, or NAIVE order unknown: see LayerType.forward_naive)."""
    own = {kind.names[0] for _, kind in LAYERS.items() if has_kernel(kind, "forward_naive")}
    assert own == {"Convolution", "InnerProduct", "Pooling", "Sigmoid", "Swish", "Softmax"}


def small_net():
    b = GraphBuilder(seed=4)
    x = b.input("data", (1, 3, 12, 12))
    y = b.conv(x, 8, 3, pad=1, activation=2)
    y = b.conv(y, 8, 3, stride=2, pad=1, group=8)
    y = b.layer("Swish", y)
    y = b.layer("Pooling", y, "1 0 0 1 1 0 0 -1 -1 -1 0 0 0 0")
    y = b.inner_product(y, 5, 8)
    y = b.layer("SoftmaxCaffe", y, "1")
    return b.build(y)


def test_executor_runs_naive_kernels():
    graph = small_net()
    x = (np.random.default_rng(5).standard_normal((3, 3, 12, 12)) * 3).astype(F32)
    seen: dict[str, np.ndarray] = {}
    out = Executor(graph, fp32="naive").run({"data": x},
                                            hooks=[lambda n, a, l: seen.__setitem__(n, a)])
    v = x
    for layer in graph.layers:   # the chain of forward_naive calls, by hand
        v = layer.kind.forward_naive(layer.params, graph.resources.get(layer.name), v)
        assert_bits(seen[layer.outputs[0]], v)
    assert_bits(out[graph.outputs[0]], v)
    fast = Executor(graph).run({"data": x})[graph.outputs[0]]
    assert_close_to_fast(v, fast)


def test_executor_rejects_unknown_kernels():
    with pytest.raises(ConfigError,
                       match="unknown fp32 kernels 'exact' \\(known: fast, numpy, naive\\)"):
        Executor(small_net(), fp32="exact")


def test_quant_config_fp32():
    assert QuantConfig().fp32 == "fast"
    assert QuantConfig.from_tnn(2, 1, 0, fp32="naive").fp32 == "naive"
    with pytest.raises(ConfigError, match="unknown fp32 kernels"):
        QuantConfig(fp32="bitexact")


def test_collector_builds_naive_executor(monkeypatch):
    made = []

    class Spy(Executor):
        def __init__(self, graph, *args, **kwargs):
            made.append(kwargs.get("fp32"))
            super().__init__(graph, *args, **kwargs)

    monkeypatch.setattr(collect, "Executor", Spy)
    graph = small_net()
    x = np.random.default_rng(6).standard_normal((2, 3, 12, 12)).astype(F32)
    for fp32 in ("naive", "fast"):
        list(collect.StatsCollector(graph, "minmax", False, fp32).run(lambda: iter([{"data": x}])))
    assert made == ["naive", "fast"]
