"""GPTQ-style learned rounding against brute force on tiny cases and the layer windows against
a direct convolution."""
from __future__ import annotations

import itertools

import numpy as np

from tnnquant.layers.convolution import conv2d
from tnnquant.passes import learned_rounding
from tnnquant.passes.learned_rounding import (gptq_round, gptq_round_depthwise, patches_at,
                                              window_shape)
from tnnquant.testing import GraphBuilder


def output_error(w, codes, scale, h):
    d = w - codes * scale[:, None]
    return np.einsum("ok,kl,ol->o", d, h, d)


def test_gptq_never_worse_than_nearest_and_close_to_the_best_rounding():
    rng = np.random.default_rng(0)
    k = 6
    x = rng.normal(size=(k, k)) @ rng.normal(size=(k, 200))     # correlated inputs
    h = x @ x.T
    w = rng.normal(size=(4, k))
    scale = np.abs(w).max(1) / 3          # a coarse grid: rounding choices matter
    codes = gptq_round(w, scale, h)
    nearest = np.clip(np.sign(w / scale[:, None]) * np.floor(np.abs(w / scale[:, None]) + 0.5),
                      -127, 127)
    got = output_error(w, codes, scale, h)
    assert (got <= output_error(w, nearest, scale, h) * (1 + 1e-9)).all()
    for o in range(len(w)):                # brute force over every floor/ceil choice
        lo = np.floor(w[o] / scale[o])
        best = min(output_error(w[o:o + 1], (lo + np.array(bits))[None], scale[o:o + 1], h)[0]
                   for bits in itertools.product((0, 1), repeat=k))
        assert got[o] <= 1.5 * best + 1e-9


def test_gptq_with_independent_inputs_is_nearest_rounding():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 5))
    scale = np.abs(w).max(1) / 127
    h = np.diag(rng.uniform(1, 2, 5))
    nearest = np.sign(w / scale[:, None]) * np.floor(np.abs(w / scale[:, None]) + 0.5)
    np.testing.assert_array_equal(gptq_round(w, scale, h), nearest)


def test_depthwise_rows_equal_independent_dense_problems():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(3, 9))
    scale = np.abs(w).max(1) / 5
    hs = []
    for _ in range(3):
        x = rng.normal(size=(9, 50))
        hs.append(x @ x.T)
    got = gptq_round_depthwise(w, scale, np.stack(hs))
    for c in range(3):
        np.testing.assert_array_equal(got[c], gptq_round(w[c:c + 1], scale[c:c + 1], hs[c])[0])


def test_windows_times_filter_is_the_convolution():
    b = GraphBuilder(3)
    x = b.input("data", (1, 3, 9, 8))
    c = b.conv(x, 4, 3, stride=2, pad=1, name="conv")
    g = b.build(c)
    layer = g.layers[0]
    data = np.random.default_rng(4).normal(size=(2, 3, 9, 8)).astype(np.float32)
    p = layer.params.replace(activation_type=0)
    res = g.resources["conv"]
    cols = patches_at(data, layer, None)                      # (C, taps, N·M)
    w = res.filter.data.reshape(4, 3, 9)
    y = np.einsum("oct,ctm->om", w, cols) + res.bias.data[:, None]
    ref = conv2d(data, p, res)
    n, o, oh, ow = ref.shape
    np.testing.assert_allclose(y.reshape(o, n, oh, ow).transpose(1, 0, 2, 3), ref,
                               rtol=1e-5, atol=1e-5)


def test_windows_at_sampled_positions_are_those_of_every_position():
    b = GraphBuilder(5)
    x = b.input("data", (1, 3, 9, 8))
    conv = b.conv(x, 4, 3, stride=2, pad=1, name="conv")
    fc = b.inner_product(conv, 5, 4 * 5 * 4, name="fc")
    g = b.build(fc)
    rng = np.random.default_rng(6)
    for layer, shape in ((g.layers[0], (3, 3, 9, 8)), (g.layers[1], (3, 4, 5, 4))):
        data = rng.normal(size=shape).astype(np.float32)
        full = patches_at(data, layer, None)                         # (C, T, N·M)
        c, t, m = window_shape(data, layer)
        assert full.shape == (c, t, len(data) * m) and full.dtype == np.float32
        at = np.sort(rng.choice(full.shape[2], min(7, full.shape[2] - 1), replace=False))
        got = patches_at(data, layer, at)
        assert got.flags.c_contiguous
        np.testing.assert_array_equal(got, full[:, :, at])
        into = np.full((c, t, len(at)), np.nan)                     # a float64 buffer
        assert patches_at(data, layer, at, into) is into
        np.testing.assert_array_equal(into, full[:, :, at])


def test_second_moments_do_not_depend_on_how_a_batch_is_run(monkeypatch):
    """A batch run whole, or sample by sample with H summed over small chunks of windows (on
    one thread or two), gives H equal to float64 rounding, equal to Σ x xᵀ over every window
    of every sample."""
    b = GraphBuilder(7)
    x = b.input("data", (1, 3, 12, 10))
    conv = b.conv(x, 6, 3, stride=1, pad=1, name="conv")           # 120 windows per sample
    dw = b.conv(conv, 6, 3, stride=1, pad=1, group=6, name="dw")   # 64 per sample
    fc = b.inner_product(dw, 4, 6 * 6 * 5, name="fc")
    g = b.build(fc)
    for layer in g.layers:
        layer.quantized = True
    data = {"conv": np.random.default_rng(8).normal(size=(5, 3, 12, 10)).astype(np.float32),
            "dw": np.random.default_rng(9).normal(size=(5, 6, 8, 8)).astype(np.float32),
            "fc": np.random.default_rng(10).normal(size=(5, 6, 6, 5)).astype(np.float32)}
    inputs = {layer.name: layer.inputs[0] for layer in g.layers}

    def second_moments(pieces: list[slice]) -> dict:
        hessians = learned_rounding._Hessians(g)
        for piece in pieces:
            for name in ("conv", "dw", "fc"):
                hessians.hook(inputs[name], data[name][piece], None)
        assert hessians.windows == {"conv": 600, "dw": 320, "fc": 5}
        return hessians.h

    whole = second_moments([slice(0, 5)])
    # chunks of 27 windows (conv: fewer than a sample's 120), 54 (dw), whole samples (fc)
    monkeypatch.setattr(learned_rounding, "WINDOW_BYTES", 8 * 27 * 10)
    pieces = second_moments([slice(0, 2), slice(2, 3), slice(3, 5)])
    # the chunks two at a time on two threads: the same sums in the same order
    monkeypatch.setattr(learned_rounding, "PARALLEL_MIN_ELEMS", 0)
    threaded = second_moments([slice(0, 2), slice(2, 3), slice(3, 5)])
    for name in ("conv", "dw", "fc"):
        np.testing.assert_array_equal(threaded[name], pieces[name])
    cols = patches_at(data["conv"], g.layers[0], None).astype(np.float64)
    flat = cols.reshape(27, -1)
    every = patches_at(data["dw"], g.layers[1], None).astype(np.float64)
    fc = data["fc"].reshape(5, -1).astype(np.float64)
    want = {"conv": flat @ flat.T, "dw": np.einsum("ctm,csm->cts", every, every),
            "fc": fc.T @ fc}
    for name in ("conv", "dw", "fc"):
        np.testing.assert_allclose(whole[name], want[name], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(pieces[name], want[name], rtol=1e-12, atol=1e-12)
