"""GPTQ-style learned rounding against brute force on tiny cases and the layer windows against
a direct convolution."""
from __future__ import annotations

import itertools

import numpy as np

from tnnquant.layers.convolution import conv2d
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
