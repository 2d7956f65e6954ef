"""tnnquant's default (fast, BLAS) quantizer against TNN's own quantization_cmd outputs stored
in ../shared/models/<model>/quant/, calibrated on the same tensors (calib/*.npy).

The fast mode's float activations differ from TNN's NAIVE kernels by float rounding, and by a
different amount under every BLAS kernel set (OPENBLAS_CORETYPE, thread count). So this file
asserts only what holds for ANY correctly rounded float forward, and byte-identity only where
the computation is deterministic (the exact mode, tests/test_golden_exact.py, reproduces TNN's
files byte for byte):

* the proto text: byte-identical (layers, parameters, ModelPacker layout do not depend on
  float values);
* MinMax blob scales: relative error <= MINMAX_RTOL (derivation at the constant);
* KL blob scales: every channel has TNN's threshold, or differs from it because the two
  histograms differ by rounding, which is proven per channel (``explain_kl_difference``):
  (a) our threshold is TNN's algorithm (the plain reference loop of
  tests/calib/kl_reference.py) run on our histogram, (b) TNN's threshold is TNN's algorithm
  run on TNN's histogram (recomputed with the exact-mode NAIVE kernels), and (c) the two
  histograms differ only by counts moved to an adjacent bin, as a rounding of a value that
  sits at a bin edge moves it. A KL curve is flat near its minimum and ties are common: one
  count moved between two nearly empty tail bins shifts a candidate's KL by ~1e-3 relative,
  enough to flip a choice between candidates hundreds of bins apart. Such flips are rare
  (about 0.1% of channels under any kernel set; ``test_kl_thresholds_mostly_identical``);
* int8 weights and int32 biases: each is the correct rounding of the float value under the
  scales stored next to it (ours and TNN's), and our weight scales differ from TNN's only as
  far as the input blob scales they were folded with do (``check_weights``). A KL threshold
  that flipped on a per-tensor blob thus moves every bias that depends on it, by exactly the
  ratio of the scales; nothing here allows more.

ADMM weights (-w 1) iterate to a fixed point that depends chaotically on the folded input
scale, so for b2w1 the weights are not compared (the exact mode reproduces them).
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from conftest import MODELS, need_shared
from calib.kl_reference import kl_curve_reference
from tnnquant.calib.collect import StatsCollector
from tnnquant.calib.inputs import iter_batches, list_samples
from tnnquant.calib.methods.kl import KL_FIRST, kl_divergences, kl_thresholds
from tnnquant.config import QuantConfig
from tnnquant.formats.io import load_model
from tnnquant.formats.tnnproto import format_proto
from tnnquant.quantize import quantize

COMBOS = {"b0w0": (0, 0, 0), "b2w0t1": (2, 0, 1), "b2w1": (2, 1, 0)}
CASES = [(m, c) for m in ("mtcnn_onet", "mobilenetv2", "pplcnet", "yolov8n")
         for c in ("b0w0", "b2w0t1")] + [("mtcnn_onet", "b2w1"), ("mobilenetv2", "b2w1")]

U = 2.0 ** -24   # unit roundoff of float32
# MinMax scale = f32(2047.5 / f32(2048 / max) / 127): its relative error is the blob maximum's
# plus 3 roundings. A blob's maximum is a large, non-cancelling activation; its float32 error
# between two correct summation orders grows like sqrt(K)·u per layer (K <= 4608 products
# here) and adds up over <= 70 layers: ~70·68·u = 3e-4 in the worst alignment, ~1e-5 seen
# (max 8e-6 over every OPENBLAS_CORETYPE tried). 1e-4 is 12x the observed error, and 20x
# smaller than the smallest change a wrong statistic makes (one histogram bin: 1/2048).
MINMAX_RTOL = 1e-4
# a KL scale (T + 0.5) / interval / 127 moves by >= 1/2047.5 relative when T moves by one bin,
# and by <= MINMAX_RTOL when only the interval (the maximum) differs: half a bin separates them
SAME_THRESHOLD_RTOL = 0.5 / 2047.5
SUMMARY: dict[tuple[str, str], tuple[int, int]] = {}   # case -> (KL channels, differing)


@pytest.fixture(scope="module")
def loaded():
    cache = {}

    def get(model):
        if model not in cache:
            base = need_shared("models", model)
            cache[model] = load_model(base / f"{model}.tnnproto", base / f"{model}.tnnmodel")
        return cache[model]
    return get


def golden_model(model: str, combo: str):
    base = MODELS / model / "quant"
    return load_model(base / f"{combo}.quantized.tnnproto", base / f"{combo}.quantized.tnnmodel")


class RecordingCollector(StatsCollector):
    """quantize()'s statistics collector, keeping the statistics it hands out."""

    stats: dict = {}

    def run(self, batches, progress=None):
        for group in super().run(batches, progress):
            RecordingCollector.stats.update(group)
            yield group


def quantize_recording(graph, calib, config: QuantConfig):
    """quantize(), and the blob statistics its scales were computed from."""
    RecordingCollector.stats = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importlib.import_module("tnnquant.quantize"), "StatsCollector",
                      RecordingCollector)
        result = quantize(graph, calib, config)
    return result, RecordingCollector.stats


@pytest.mark.parametrize("model,combo", CASES)
def test_matches_tnn_quantization_cmd(loaded, model, combo):
    base = MODELS / model
    graph = loaded(model)
    config = QuantConfig.from_tnn(*COMBOS[combo])
    ours, our_stats = quantize_recording(graph, base / "calib", config)
    golden = golden_model(model, combo)

    # same layers, types and parameters: the whole proto, byte for byte
    assert format_proto(ours.graph) == (base / "quant" / f"{combo}.quantized.tnnproto").read_bytes()

    assert set(golden.blob_scales) <= set(ours.graph.blob_scales)
    source = merge_sources(ours)
    kl_channels, differing = 0, []
    for blob, theirs in golden.blob_scales.items():
        if source[blob] != blob:
            # ReLU / max-pool scale merging (spec int8 §9): TNN copied the same source's scale
            assert np.array_equal(theirs.scale, golden.blob_scales[source[blob]].scale), blob
            continue
        mine = ours.graph.blob_scales[blob].scale.astype(np.float64)
        ref = theirs.scale.astype(np.float64)
        assert mine.shape == ref.shape, blob
        if ours.plans[blob].method == "minmax":
            np.testing.assert_allclose(mine, ref, rtol=MINMAX_RTOL, err_msg=blob)
            continue
        kl_channels += ref.size
        rel = relative_difference(mine, ref)
        differing += [(blob, int(c)) for c in np.flatnonzero(rel > SAME_THRESHOLD_RTOL)]
    SUMMARY[model, combo] = (kl_channels, len(differing))
    if differing:
        naive = collect(ours.float_graph, base / "calib", config, "naive")   # TNN's, bit for bit
        explain_kl_differences(ours, golden, our_stats, naive, differing)
    check_weights(ours, golden, graph, source, admm=config.weight_method == "admm")


def merge_sources(result) -> dict[str, str]:
    """Blob -> the blob whose own statistics gave its scale: itself, or for a blob whose scale
    was merged (ReLU / max-pool input, spec int8 §9) the merge source, found by identity."""
    own = {id(s): name for name, s in result.float_graph.blob_scales.items()}
    return {name: own.get(id(s), name) for name, s in result.graph.blob_scales.items()}


def relative_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a/b - 1|, 0 where both are 0 (dead channels get scale 0)."""
    b = np.asarray(b, np.float64)
    out = np.where(a == b, 0.0, np.inf)
    np.divide(np.abs(a - b), np.abs(b), out=out, where=b != 0)
    return out


# --- KL: why a channel's threshold differs -------------------------------------------------------

def collect(fused, calib, config: QuantConfig, fp32: str) -> dict:
    """Blob statistics of the fused float graph, as quantize() gathers them (with ``fp32``
    kernels: "naive" gives TNN's statistics bit for bit, see tests/test_golden_exact.py)."""
    samples = list_samples(calib, fused.inputs)
    collector = StatsCollector(fused, config.blob_method, config.per_tensor_blobs, fp32)
    stats = {}
    for group in collector.run(lambda: iter_batches(samples, fused.inputs, config.preprocess,
                                                    config.batch_size)):
        stats.update(group)
    return stats


def threshold_of(scale: float, interval: float) -> int:
    """T from ``scale = f32((T + 0.5) / interval / 127)`` (spec int8 §6.2 step 4): the f32
    rounding of the scale moves T by <= 2048·u, so T must come out an integer to 1e-3."""
    t = float(scale) * float(interval) * 127.0 - 0.5
    assert abs(t - round(t)) < 1e-3, f"scale {scale} is no KL threshold of interval {interval}"
    return int(round(t))


def explain_kl_differences(ours, golden, fast: dict, naive: dict, differing) -> None:
    for blob, c in differing:
        where = f"{blob}[{c}]"
        h_ours, h_tnn = fast[blob].histogram, naive[blob].histogram
        assert h_ours.valid[c] and h_tnn.valid[c], where
        t_ours = threshold_of(ours.graph.blob_scales[blob].scale[c], h_ours.interval[c])
        t_tnn = threshold_of(golden.blob_scales[blob].scale[c], h_tnn.interval[c])
        bins_ours = h_ours.bins()[c]
        # (a) ours is TNN's loop on our histogram
        assert kl_thresholds(bins_ours[None])[0] == t_ours, where
        assert_first_minimum(bins_ours, t_ours, where)
        # (b) TNN's is TNN's loop on TNN's histogram
        assert kl_thresholds(h_tnn.bins()[c][None], exact=True)[0] == t_tnn, where
        # (c) and the histograms differ by rounding only
        assert_adjacent_moves(h_ours.counts[c], h_tnn.counts[c], where)


def assert_first_minimum(bins: np.ndarray, t: int, where: str) -> None:
    """``t`` is the first minimum of TNN's f32 KL curve on ``bins`` (tests/calib/kl_reference.py,
    a plain loop independent of the vectorized search), or ties with it within the rounding
    of the two f32 values: TNN's f32 sum decides such ties by its own rounding noise, which is
    measured here as the f32 value's distance from the same KL evaluated in float64."""
    curve = kl_curve_reference(bins).astype(np.float64)
    t_ref = int(np.nanargmin(curve)) + KL_FIRST   # nanargmin: the first minimum, NaN never wins
    if t == t_ref:
        return
    noise = np.abs(curve - kl_divergences(bins[None])[0])
    a, b = t - KL_FIRST, t_ref - KL_FIRST
    assert curve[a] - curve[b] <= noise[a] + noise[b], (
        f"{where}: KL threshold {t} is not the minimum {t_ref} of TNN's KL on our histogram "
        f"({curve[a]:.9g} vs {curve[b]:.9g})")


def assert_adjacent_moves(ours: np.ndarray, tnn: np.ndarray, where: str) -> None:
    """The histograms differ only as rounding makes them: each count that changed bin moved to
    an adjacent one (or across the lower edge of bin 0, where values that are exactly 0 in one
    run are skipped). The net number of counts crossing the lower edge of bin k upwards is
    ``flow[k] = (TNN's counts in bins >= k) - (ours in bins >= k)``; counts that move one bin
    can supply it only from the bin just below the edge in our histogram and must land in the
    bin just above it in TNN's (downwards: the reverse). A binning error that moves counts by
    several bins, or shifts whole bins, breaks this."""
    ours, tnn = ours.astype(np.int64), tnn.astype(np.int64)
    flow = np.cumsum(tnn[::-1])[::-1] - np.cumsum(ours[::-1])[::-1]
    below_ours = np.concatenate([[np.inf], ours[:-1]])   # bin k-1; nothing below bin 0 is
    below_tnn = np.concatenate([[np.inf], tnn[:-1]])     # counted, so the zero edge is free
    up_ok = np.minimum(below_ours, tnn)
    down_ok = np.minimum(ours, below_tnn)
    bad = np.flatnonzero(np.where(flow > 0, flow > up_ok, -flow > down_ok))
    assert not bad.size, (f"{where}: counts crossed the edge of bin {bad[0]} beyond an adjacent "
                          f"move ({flow[bad[0]]} net, {ours.sum()} counts)")


def test_kl_thresholds_mostly_identical(loaded):
    """The README's figure: over every KL channel of the stored cases, >= 99% have exactly
    TNN's threshold (measured: 99.9% under every OPENBLAS_CORETYPE tried). Per case the count is
    too small for a rate (1 flip of 5 channels is 20%); each flip is explained above."""
    for case in CASES:
        if case not in SUMMARY:
            test_matches_tnn_quantization_cmd(loaded, *case)
    channels = sum(n for n, _ in SUMMARY.values())
    differing = sum(d for _, d in SUMMARY.values())
    assert channels
    assert differing <= 0.01 * channels, f"{differing} of {channels} KL channels differ"


# --- weights and biases ----------------------------------------------------------------------

def int8_tensors(res):
    w = getattr(res, "filter", None) or getattr(res, "weight", None)
    return w, getattr(res, "bias", None)


def unrounded_weights(layer, float_res, in_scale: np.ndarray, stored_scale: np.ndarray
                      ) -> np.ndarray:
    """The value ``w · s_in / S`` each int8 weight rounds (spec int8 §8), float64, in the
    weights' layout: S is the stored scale, which holds the input scale (depthwise: multiplied
    in afterwards, so S[o] = S_w[o]·s_in[o] and w/S_w is the same value)."""
    w = int8_tensors(float_res)[0].data.astype(np.float64)
    p = layer.params
    out_ch = p.output_channel if hasattr(p, "output_channel") else p.num_output
    w = w.reshape(out_ch, -1)
    if in_scale.size == 1:
        s = np.full(w.shape[1], in_scale[0])
    elif hasattr(p, "group"):   # conv: global input channel of (o, i) is g·Ig + i
        taps = p.kernel_h * p.kernel_w
        per_group = w.shape[1] // taps
        g = np.arange(out_ch) // (out_ch // max(p.group, 1))
        s = np.repeat(in_scale[g[:, None] * per_group + np.arange(per_group)], taps, axis=1)
    else:
        raise AssertionError("InnerProduct inputs are per-tensor")
    stored = np.broadcast_to(stored_scale.astype(np.float64).reshape(-1, 1), w.shape)
    x = np.full(w.shape, np.nan)   # S = 0 (a dead input channel of a depthwise conv): unused
    np.divide(w * s, stored, out=x, where=stored != 0)
    return x


def assert_within(error: np.ndarray, bound: np.ndarray, what: str) -> None:
    """error <= bound wherever the error is defined (NaN: no value to compare)."""
    excess = np.where(np.isnan(error), -np.inf, error - bound)
    k = int(np.argmax(excess))
    assert excess.flat[k] <= 0, (f"{what}: element {k}: error {error.flat[k]:.6g} > "
                                 f"{np.broadcast_to(bound, error.shape).flat[k]:.6g}")


def check_weights(ours, golden, float_graph, source, admm: bool) -> None:
    """Every int8 weight and int32 bias, ours and TNN's, is the rounding of the float value under
    the scales stored beside it; our weight scales differ from TNN's only within the range of
    the ratios of the input blob scales they were folded with."""
    for name, theirs in golden.resources.items():
        w_tnn, b_tnn = int8_tensors(theirs)
        if w_tnn is None or w_tnn.data.dtype != np.int8:
            continue
        layer = ours.graph.layer(name)
        mine = ours.graph.resources[name]
        w_ours, b_ours = int8_tensors(mine)
        s_ours = mine.scale.data.astype(np.float64)
        s_tnn = theirs.scale.data.astype(np.float64)
        # weights were folded before ReLU/max-pool merging (TNN's order): the pre-merge scale
        in_ours = ours.float_graph.blob_scales[layer.inputs[0]].scale.astype(np.float64)
        if not admm:
            x = unrounded_weights(layer, float_graph.resources[name], in_ours, s_ours)
            q = w_ours.data.astype(np.float64).reshape(x.shape)
            # q = rhaz(f32(f32(w·s)/S)): two f32 roundings of x, then rounding to an integer
            assert_within(np.abs(q - x), 0.5 + 2 * U * np.abs(x), f"{name}: our int8 weights")
            # TNN's weights are the same values rounded, up to the input scales' agreement:
            # x = w·s/S changes by <= 2·MINMAX_RTOL relative (s and S = max|w·s|/127 each move
            # by <= MINMAX_RTOL; a flipped per-tensor KL scale cancels, S is proportional to s)
            q_tnn = w_tnn.data.astype(np.float64).reshape(x.shape)
            assert_within(np.abs(q_tnn - x), 0.5 + (2 * MINMAX_RTOL + 2 * U) * np.abs(x),
                          f"{name}: TNN's int8 weights")
            in_name = layer.inputs[0]
            if source.get(in_name, in_name) == in_name and in_name in golden.blob_scales:
                # (the pre-merge scale of a merged blob is not stored by TNN: not compared)
                in_tnn = golden.blob_scales[in_name].scale.astype(np.float64)
                both = (in_ours != 0) & (in_tnn != 0)   # dead channels (scale 0) fold nothing
                ratio = in_ours[both] / in_tnn[both]
                live = (s_ours != 0) & (s_tnn != 0)
                if ratio.size:
                    scale_ratio = s_ours[live] / s_tnn[live]
                    assert scale_ratio.min() >= ratio.min() * (1 - 4 * U), name
                    assert scale_ratio.max() <= ratio.max() * (1 + 4 * U), name
        if b_tnn is not None and b_tnn.data.dtype == np.int32:
            b = float_graph.resources[name].bias.data.astype(np.float64)
            for who, bq, s in (("our", b_ours.data, s_ours), ("TNN's", b_tnn.data, s_tnn)):
                s = np.broadcast_to(s, b.shape)
                exact = np.zeros(b.shape)
                np.divide(b, s, out=exact, where=s != 0)
                # bq = trunc(f32(b / S)), 0 where S = 0: within 1 of b/S, plus one f32 rounding
                assert_within(np.abs(bq - exact), 1 + U * np.abs(exact),
                              f"{name}: {who} int32 biases")


IMAGE_MODELS = {  # mean, scale from ../shared/models/README.md
    "mobilenetv2": ((123.675, 116.28, 103.53), (0.0171247538, 0.0175070028, 0.0174291939)),
    "pplcnet": ((123.675, 116.28, 103.53), (0.0171247538, 0.0175070028, 0.0174291939)),
    "yolov8n": ((0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255)),
}


@pytest.mark.parametrize("model", sorted(IMAGE_MODELS))
def test_image_calibration_close_to_tnn(loaded, model):
    """Calibrating on the photos of ../shared/data/calib/ with -n/-s. Our Pillow decoding and
    resizing are what made the golden calib/*.npy tensors, so scales match TNN's b0w0 golden to
    MINMAX_RTOL; TNN itself decodes and resizes with stb, so against its img_b0w0 golden the
    per-channel scales differ like the README's Pillow-vs-stb figures (median 0.6-0.9%, p90
    2.4-3.5%)."""
    from tnnquant.calib.inputs import Preprocess
    photos = need_shared("data", "calib")
    mean, scale = IMAGE_MODELS[model]
    ours = quantize(loaded(model), photos,
                    QuantConfig.tnn(preprocess=Preprocess(mean=mean, scale=scale)))
    same_pixels = golden_model(model, "b0w0")
    stb_pixels = golden_model(model, "img_b0w0")
    rel_same, rel_stb = [], []
    for blob, theirs in same_pixels.blob_scales.items():
        mine = ours.graph.blob_scales[blob].scale.astype(np.float64)
        rel_same.append(relative_difference(mine, theirs.scale))
        rel_stb.append(relative_difference(mine, stb_pixels.blob_scales[blob].scale))
    rel_same, rel_stb = np.concatenate(rel_same), np.concatenate(rel_stb)
    assert rel_same.max() <= MINMAX_RTOL
    assert np.median(rel_stb) <= 0.015 and np.percentile(rel_stb, 90) <= 0.05


def test_image_calibration_of_nhwc_model_is_a_clear_error(loaded):
    """mtcnn_onet declares its input 1x48x48x3 (NHWC): TNN sees 48 channels, so no image can be
    fed (TNN skips every photo and aborts); tnnquant says why."""
    from tnnquant.errors import InputError
    photos = need_shared("data", "calib")
    with pytest.raises(InputError, match="48"):
        quantize(loaded("mtcnn_onet"), photos, QuantConfig.tnn())
