"""The int8 simulator's onnxruntime kernels (``exec.ort_kernels``) against its numpy kernels
(int8_math) on the real models: every blob of two shared quantized models (MinMax, KL)
identical, the fused-add convolutions (MobileNetV2's residual 1x1 convs) included."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import MODEL_NAMES, need_shared
from int8_refs import x86_round

from tnnquant.exec import ort_kernels
from tnnquant.exec.int8_math import channel_view, dequantize, quantize, reciprocal
from tnnquant.exec.executor import Executor
from tnnquant.formats.io import load_model
from tnnquant.formats.rawbuffer import DataType, RawBuffer
from tnnquant.ir.graph import BlobScale
from tnnquant.layers.base import Int8Context


def every_blob(graph, feeds) -> dict[str, np.ndarray]:
    blobs = {}
    Executor(graph, mode="int8").run(feeds, hooks=[lambda n, v, _: blobs.setdefault(n, v)])
    return blobs


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_onnxruntime_and_numpy_int8_kernels_agree(model, monkeypatch):
    root = need_shared("models", model)
    inputs = sorted((root / "inputs").glob("*.npy"))[:2]
    feeds_x = np.concatenate([np.load(p) for p in inputs])
    ran = []   # (ops, ran in onnxruntime) of each session run of the onnxruntime runs
    run_chain = ort_kernels.run_chain

    def spy(ops, *args):
        out = run_chain(ops, *args)
        if ort_kernels.ENABLED:
            ran.append((ops, out is not None))
        return out

    monkeypatch.setattr(ort_kernels, "run_chain", spy)
    for combo in ("b0w0", "b2w1"):   # TNN's MinMax and KL scales
        proto = root / "quant" / f"{combo}.quantized.tnnproto"
        graph = load_model(proto, proto.with_suffix(".tnnmodel"))
        feeds = {graph.inputs[0].name: feeds_x}
        fast = every_blob(graph, feeds)
        monkeypatch.setattr(ort_kernels, "ENABLED", False)
        slow = every_blob(graph, feeds)
        monkeypatch.setattr(ort_kernels, "ENABLED", True)
        assert fast.keys() == slow.keys()
        for name, value in slow.items():
            assert fast[name].dtype == value.dtype, name
            np.testing.assert_array_equal(fast[name], value, err_msg=f"{proto.name}: {name}")
    assert ran and all(ok for _, ok in ran)
    kinds = {type(op).__name__ for ops, _ in ran for op in ops}
    assert "Int8Conv" in kinds
    if model == "mobilenetv2":   # the 52 convolutions (10 with an add) and a Reformat; the
        # classifier's Reformat and InnerProduct
        assert sorted({len(ops) for ops, _ in ran}) == [2, 53]
        assert sum(getattr(op, "fusion", 0) > 0 for op in ran[0][0]) == 10
        assert "Int8InnerProduct" in kinds
    if model == "mtcnn_onet":    # one chain from the first Reformat to the Softmax: max
        # pooling, layout layers and the inner products join the convolutions
        assert {len(ops) for ops, _ in ran} == {30}
        fp32 = {op.kind.__name__ for ops, _ in ran for op in ops
                if isinstance(op, ort_kernels.Fp32Layer)}
        assert fp32 == {"PReLU", "Pooling", "Permute", "Flatten"}
    if model == "pplcnet":       # convolutions, Reformats both ways and HardSwish together
        assert {"Fp32Layer", "Dequantize", "Quantize"} <= kinds


ODD_VALUES = [np.nan, np.inf, -np.inf, 2.0**31, -2.0**31, 3e9]
CORNERS = [-0.0, 0.0, 0.49999997, -0.49999997, 0.5, -0.5, 1.5, -1.5, 127.49999, 127.5,
           -128.5, -128.49998, 1e-45, -1e-38, 6e4, 2.0**31 - 1024, -2.0**31 + 1024]


@pytest.mark.parametrize("scale", [[0.5], [1e-3, 2.0, 0.25], [1e-30]])
def test_reformats_match_the_spec(scale):
    """Quantize (x86_round(x · f32(1/s))) and Dequantize (f32(q·s)) in onnxruntime against
    int8_refs' scalar rounding and the numpy kernels; NaN, infinities and |t| >= 2^31 make
    the chain decline (the numpy kernels then give TNN's -128)."""
    rng = np.random.default_rng(3)
    scale = np.array(scale, np.float32)
    view = channel_view(reciprocal(scale), 4)
    values = np.array(CORNERS + list(rng.normal(0, 100, 47)), np.float32)
    x = np.resize(values, (2, len(scale), 4, 16)).astype(np.float32)
    with np.errstate(over="ignore"):
        x /= np.float32(view)   # the corners land on t = x · (1/s) (to f32 rounding)
        t = x * view
    assert (np.abs(t + np.copysign(np.float32(0.5), t)) < 2.0**31).all()
    got = ort_kernels.run_chain([ort_kernels.Quantize(np.asarray(view, np.float32))],
                                [(["x"], "y")], {"x": x})["y"]
    np.testing.assert_array_equal(got, np.vectorize(x86_round, otypes=[np.int8])(t))
    np.testing.assert_array_equal(got, quantize(x, scale))
    for odd in ODD_VALUES:
        bad = x.copy()
        bad[1, 0, 2, 5] = odd
        assert ort_kernels.run_chain([ort_kernels.Quantize(np.asarray(view, np.float32))],
                                     [(["x"], "y")], {"x": bad}) is None
    codes = rng.integers(-128, 128, x.shape).astype(np.int8)
    deq = ort_kernels.run_chain([ort_kernels.Dequantize(channel_view(scale, 4))],
                                [(["q"], "y")], {"q": codes})["y"]
    np.testing.assert_array_equal(deq, dequantize(codes, scale))


def small_net():
    """conv -> HardSwish (fp32, between Reformats) -> conv + residual add, quantized by
    hand, and a batch of inputs."""
    from test_executor_int8 import quantize_by_hand

    from tnnquant.testing import GraphBuilder
    b = GraphBuilder(seed=7)
    x = b.input("data", (1, 3, 12, 12))
    c1 = b.conv(x, 8, 3, pad=1, activation=2, name="c1")
    h = b.layer("HardSwish", c1, "0.16666667 0.5", name="hs")
    c2 = b.conv(h, 8, 1, name="c2")
    s = b.layer("Add", [c2, c1], "-1", name="add")
    r = b.layer("ReLU", s, "", name="relu")
    p = b.layer("Pooling", r, "1 0 0 1 1 0 0 -1 -1 -1 0", name="gap")
    graph = b.build(b.inner_product(p, 5, 8, name="fc"))
    rng = np.random.default_rng(0)
    qgraph = quantize_by_hand(graph, rng.normal(0, 1, (8, 3, 12, 12)).astype(np.float32))
    return qgraph, {"data": rng.normal(0, 1.5, (3, 3, 12, 12)).astype(np.float32)}


def test_chains_and_single_layers_agree_on_a_small_net(monkeypatch):
    """One onnxruntime chain, the same layers one by one, and the numpy kernels give the same
    blobs."""
    qgraph, feeds = small_net()
    chained = Executor(qgraph, mode="int8")
    assert max(end - start for start, end in chained.chains.items()) >= 5
    single = Executor(qgraph, mode="int8")
    single.chains = {}
    runs = [every_blob_of(chained, feeds), every_blob_of(single, feeds)]
    monkeypatch.setattr(ort_kernels, "ENABLED", False)
    runs.append(every_blob_of(Executor(qgraph, mode="int8"), feeds))
    for other in runs[1:]:
        assert other.keys() == runs[0].keys()
        for name, value in runs[0].items():
            assert value.dtype == other[name].dtype
            np.testing.assert_array_equal(value, other[name], err_msg=name)


def every_blob_of(executor, feeds) -> dict[str, np.ndarray]:
    blobs = {}
    executor.run(feeds, hooks=[lambda n, v, _: blobs.setdefault(n, v)])
    return blobs


def test_a_chain_sees_changed_weights_and_scales(monkeypatch):
    """The executor keeps each chain's plan between runs: scales changed in place, a bias
    replaced (as bias correction does) and weights changed in place all reach the next run."""
    from tnnquant.formats.rawbuffer import DataType, RawBuffer
    qgraph, feeds = small_net()
    ex = Executor(qgraph, mode="int8")
    res = ex.graph.resources["c2"]
    changes = [lambda: ex.contexts["c2"].outputs[0].scale.__imul__(np.float32(1.5)),
               lambda: setattr(res, "bias", RawBuffer.of(res.bias.data + 500, DataType.INT32)),
               lambda: res.filter.data.__setitem__(slice(0, 20), 64)]
    before = every_blob_of(ex, feeds)
    for change in changes:
        change()
        got = every_blob_of(ex, feeds)
        monkeypatch.setattr(ort_kernels, "ENABLED", False)
        want = every_blob_of(ex, feeds)
        monkeypatch.setattr(ort_kernels, "ENABLED", True)
        assert not np.array_equal(got["relu"], before["relu"])
        for name, value in want.items():
            np.testing.assert_array_equal(got[name], value, err_msg=name)
        before = got


def test_a_chain_declines_what_it_leaves_to_numpy(monkeypatch):
    """A Reformat output scale of 1e-30 sends the HardSwish values beyond 2^31 before
    rounding (x86: code -128): the chain declines and the layers run one by one."""
    qgraph, feeds = small_net()
    ex = Executor(qgraph, mode="int8")
    reformat = next(lay.name for lay in ex.graph.layers
                    if lay.type == "Reformat" and lay.inputs == ["hs"])
    ex.contexts[reformat].outputs[0].scale[:] = np.float32(1e-30)
    ran = []
    run_chain = ort_kernels.run_chain
    monkeypatch.setattr(ort_kernels, "run_chain",
                        lambda *args: ran.append(run_chain(*args)) or ran[-1])
    got = every_blob_of(ex, feeds)
    assert ran and ran[0] is None
    assert (got[ex.graph.layer(reformat).outputs[0]] == -128).any()
    monkeypatch.setattr(ort_kernels, "ENABLED", False)
    want = every_blob_of(ex, feeds)
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


@pytest.mark.parametrize("in_shape, per_channel, bias", [
    ((2, 1300), True, True),        # K above 1032 int8 products: the sums in two chunks
    ((3, 5, 3, 3), False, False),   # a 4-D input flattened, one requantization factor
    ((1, 40, 1, 1), True, False)])
def test_inner_product_chain_matches_the_numpy_kernel(in_shape, per_channel, bias):
    """TNN's x86 int8 InnerProduct as an onnxruntime op (a 1x1 convolution of the flattened
    input) gives the numpy kernel's codes, and its output shape."""
    from tnnquant.layers.inner_product import (InnerProduct, InnerProductParams,
                                               InnerProductResource, inner_product_int8)
    rng = np.random.default_rng(11)
    k, n_out = int(np.prod(in_shape[1:])), 6
    p = InnerProductParams(num_output=n_out, has_bias=int(bias), transpose=0, axis=1)
    weight = rng.integers(-127, 128, (n_out, k)).astype(np.int8)
    weight[0, :] = 127   # the largest sums the chunks must keep exact
    res = InnerProductResource(
        "fc", RawBuffer.of(weight.reshape(-1)),
        RawBuffer.of(rng.integers(-3000, 3000, n_out).astype(np.int32), DataType.INT32)
        if bias else RawBuffer.of(np.zeros(0, np.float32)),
        RawBuffer.of(np.zeros(n_out, np.int8)),
        RawBuffer.of(rng.uniform(1e-4, 1e-3, n_out if per_channel else 1).astype(np.float32)))
    q = Int8Context((BlobScale([0.05]),), (BlobScale([0.02]),))
    codes = rng.integers(-128, 128, in_shape).astype(np.int8)
    codes.reshape(len(codes), -1)[0, :] = 127
    op, out_shape = InnerProduct.int8_onnxruntime(p, res, q, in_shape)
    got = ort_kernels.run_chain([op], [(["x"], "y")], {"x": codes})["y"]
    want = inner_product_int8(codes, p, res, q)
    assert got.shape == want.shape == tuple(out_shape) == (in_shape[0], n_out)
    assert got.dtype == np.int8 and (want == 127).any() and (want > -128).any()
    np.testing.assert_array_equal(got, want)


def test_max_pooling_and_layout_chain_matches_the_numpy_kernels():
    """Dequantize, fp32 max pooling (padded, and global), Permute, Flatten, Quantize as one
    session give the numpy kernels' values; an fp32 layer fed int8 codes is not chained."""
    from tnnquant.layers.flatten import Flatten, FlattenParams
    from tnnquant.layers.permute import Permute, PermuteParams
    from tnnquant.layers.pooling import Pooling, PoolingParams
    rng = np.random.default_rng(5)
    codes = rng.integers(-128, 128, (2, 4, 7, 9)).astype(np.int8)
    scale = np.array([0.1, 0.2, 0.05, 1.5], np.float32)
    pool = PoolingParams(pool_type=0, kernel_h=3, kernel_w=3, stride_h=2, stride_w=2, pad_h=1,
                         pad_w=1, pad_type=-1)
    layers = [(Pooling, pool), (Permute, PermuteParams(orders=(0, 2, 3, 1))),
              (Flatten, FlattenParams(axis=1))]
    x = dequantize(codes, scale)
    ops = [ort_kernels.Dequantize(channel_view(scale, 4))]
    values = [x]
    for kind, params in layers:
        assert kind.exact_onnx(params)
        ops.append(ort_kernels.Fp32Layer(kind, params, None, [values[-1].shape]))
        values.append(kind.forward(params, None, values[-1]))
    wiring = [(["q"], "v0")] + [([f"v{i}"], f"v{i + 1}") for i in range(len(layers))]
    got = ort_kernels.run_chain(ops, wiring, {"q": codes})
    for i, want in enumerate(values):
        assert got[f"v{i}"].shape == want.shape
        np.testing.assert_array_equal(got[f"v{i}"], want)
    assert Pooling.exact_onnx(PoolingParams(pool_type=0, is_adaptive_pool=1, output_h=1,
                                            output_w=1))
    assert not Pooling.exact_onnx(PoolingParams(pool_type=1, kernel_h=2, kernel_w=2))
    assert not Pooling.exact_onnx(PoolingParams(pool_type=0, is_adaptive_pool=1, output_h=2,
                                                output_w=2))


def test_an_fp32_layer_on_int8_codes_is_not_chained():
    """A Flatten reading int8 codes (no Reformat before it) keeps its numpy kernel, which
    returns codes, not floats."""
    from tnnquant.testing import GraphBuilder
    b = GraphBuilder(seed=1)
    x = b.input("data", (1, 3, 4, 4))
    graph = b.build(b.layer("Flatten", b.layer("Flatten", x, "1", name="f1"), "1", name="f2"))
    ex = Executor(graph, mode="int8")
    layers = ex.order
    assert ex._plan_chain(layers, {"data": np.zeros((2, 3, 4, 4), np.float32)}) is not None
    assert ex._plan_chain(layers, {"data": np.zeros((2, 3, 4, 4), np.int8)}) is None


def test_checks_that_cannot_fire_are_dropped():
    """A Reformat to int8 after Dequantize and HardSwish of int8 codes has a finite input far
    below 2^31 after scaling: its NaN / overflow check is dropped and the codes stay the numpy
    kernels'. Float inputs from outside the chain, or a scale that could reach 2^31, keep it."""
    from tnnquant.layers.hard_swish import HardSwish, HardSwishParams
    from tnnquant.layers.prelu import PReLU, PReLUResource
    rng = np.random.default_rng(2)
    codes = rng.integers(-128, 128, (2, 3, 5, 5)).astype(np.int8)
    scale = np.array([0.05, 0.2, 1.0], np.float32)
    out_scale = np.array([0.01], np.float32)
    hswish = HardSwishParams(alpha=np.float32(1 / 6), beta=0.5)

    def chain(in_scale: np.ndarray) -> tuple[list, list]:
        x = dequantize(codes, in_scale)
        ops = [ort_kernels.Dequantize(channel_view(in_scale, 4)),
               ort_kernels.Fp32Layer(HardSwish, hswish, None, [x.shape]),
               ort_kernels.Quantize(np.asarray(channel_view(reciprocal(out_scale), 4)))]
        return ops, [(["q"], "x"), (["x"], "h"), (["h"], "y")]

    ops, wiring = chain(scale)
    ort_kernels.settle_checks(ops, wiring, {"q": 128.0})
    assert not ops[2].checked
    got = ort_kernels.run_chain(ops, wiring, {"q": codes})
    h = HardSwish.forward(hswish, None, dequantize(codes, scale))
    np.testing.assert_array_equal(got["h"], h)
    np.testing.assert_array_equal(got["y"], quantize(h, out_scale))
    assert (got["y"] == 127).any()   # saturated codes: the clamp stayed
    ops, wiring = chain(scale)
    ort_kernels.settle_checks(ops, wiring, {"q": None})
    assert ops[2].checked
    ops, wiring = chain(np.array([1e30, 1.0, 1.0], np.float32))   # |t| up to ~1e34
    ort_kernels.settle_checks(ops, wiring, {"q": 128.0})
    assert ops[2].checked
    assert ort_kernels.run_chain(ops, wiring, {"q": codes}) is None   # numpy's -128 rules
    slopes = PReLUResource("p", RawBuffer.of(np.array([0.5, -3.0], np.float32)))
    assert PReLU.value_bound(None, slopes, [10.0]) >= 30.0   # |x · slope| up to 30
    assert PReLU.value_bound(None, slopes, [None]) is None


def test_value_bounds_hold():
    """Each chained fp32 layer's ``value_bound`` is at least the largest |output| its kernel
    gives on inputs within the bound (extremes included)."""
    from tnnquant.layers.flatten import Flatten, FlattenParams
    from tnnquant.layers.hard_sigmoid import HardSigmoid, HardSigmoidParams
    from tnnquant.layers.hard_swish import HardSwish, HardSwishParams
    from tnnquant.layers.permute import Permute, PermuteParams
    from tnnquant.layers.pooling import Pooling, PoolingParams
    from tnnquant.layers.prelu import PReLU, PReLUParams, PReLUResource
    rng = np.random.default_rng(4)
    bound = 37.5
    x = rng.uniform(-bound, bound, (2, 3, 6, 6)).astype(np.float32)
    x[0, 0, 0, :3] = [bound, -bound, -1.5]
    cases = [(HardSwish, HardSwishParams(alpha=np.float32(1 / 6), beta=0.5), None),
             (HardSwish, HardSwishParams(alpha=0.2, beta=0.5), None),
             (HardSigmoid, HardSigmoidParams(alpha=0.2, beta=0.5), None),
             (PReLU, PReLUParams(channel_shared=0), PReLUResource(
                 "p", RawBuffer.of(np.array([0.25, -2.5, 7.0], np.float32)))),
             (Pooling, PoolingParams(pool_type=0, kernel_h=2, kernel_w=2, stride_h=2,
                                     stride_w=2), None),
             (Permute, PermuteParams(orders=(0, 3, 1, 2)), None),
             (Flatten, FlattenParams(axis=1), None)]
    for kind, params, res in cases:
        y = kind.forward(params, res, x)
        assert np.abs(y).max() <= kind.value_bound(params, res, [bound]), kind.__name__
        assert kind.value_bound(params, res, [None]) is None, kind.__name__
