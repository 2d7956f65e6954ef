"""The fallback check: the recipe's data-fitted steps are kept unless the recipe without them
does better at the network output.

MSE clipping, the scale search and learned rounding each minimize a local error on the
calibration samples: a histogram's quantization MSE, the error at the output of the layers
reading a blob, one layer's output error. The network output need not follow. Where it depends
on values those local errors weigh little (a text detector on pages: white background in most
windows, text in few), the locally better choices add up to a worse output: on PP-OCRv4 text
detection the default recipe's mean output cosine was 0.974 on its own 14 calibration pages,
TNN's MinMax recipe's 0.985.

So the recipe is checked as a whole against the same recipe without those steps
(``WITHOUT_FITTED``: MinMax blob scales, no scale search, nearest rounding; weight clipping,
rounded and corrected biases, Swish in float and fixed folding stay). The two are not compared
on equal terms, on purpose:

* the fitted recipe by its mean per-sample output cosine to fp32 on the calibration samples it
  was fitted on, an optimistic number;
* the fallback *held out*: 2-fold cross-validation, each fold's samples scored by the fallback
  built (MinMax scales, bias correction) on the other fold's samples only. In-sample, per-channel
  MinMax scales never clip a calibration value and look better than they are on new data
  (PP-LCNet: 0.99868 against the fitted recipe's 0.99726 on the calibration tensors, 0.9895
  against 0.9962 on held-out photos).

The fallback replaces the fitted recipe only when it wins anyway, i.e. when the fitted steps
hurt even the data they were fitted on. Cost: the cheap recipe twice on half the samples, two
simulated passes over the calibration set, and the cheap recipe on all samples when it wins.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..calib.observers import sample_folds
from ..ir.graph import BlobScale, Graph
from .context import Batches, PassContext
from .mixed_precision import float_outputs, output_cosines
from .scale_search import FOLDS

if TYPE_CHECKING:
    from ..config import QuantConfig

#: the data-fitted steps and the values that switch them off
WITHOUT_FITTED = dict(blob_method="minmax", scale_search=False, learned_rounding=False)


def fallback_config(config: "QuantConfig") -> "QuantConfig | None":
    """``config`` without its data-fitted steps (and without the check and mixed precision),
    or None when it has none of them or asks for asymmetric blobs (the fallback's MinMax
    scales are symmetric)."""
    if config.asymmetric or all(getattr(config, k) == v for k, v in WITHOUT_FITTED.items()):
        return None
    return dataclasses.replace(config, **WITHOUT_FITTED, fallback_check=False, target_cos=None)


def fold_batches(batches: Batches, fold: int, held_out: bool) -> Batches:
    """The samples of ``fold`` (sample i is in fold ``i % FOLDS``), or with ``held_out=False``
    the samples outside it, as re-iterable batches."""
    def gen():
        seen = 0
        for batch in batches():
            n = len(next(iter(batch.values())))
            pick = (sample_folds(seen, n, FOLDS) == fold) == held_out
            seen += n
            if pick.any():
                yield {name: value[pick] for name, value in batch.items()}
    return gen


Build = Callable[[dict[str, BlobScale], dict[str, np.ndarray], Batches], Graph]


def keep_better(fitted: Graph, ctx: PassContext, build: Build) -> Graph:
    """``fitted``, or the fallback ``build(scales, minima, batches)`` (the recipe without its
    fitted steps, from MinMax ``scales`` and the blobs' ``minima``, fitted on ``batches``)
    when its held-out output cosine beats ``fitted``'s in-sample one (module docstring); the
    decision goes to ``ctx.notes``."""
    if len(ctx.held_out_minmax_scales) != FOLDS:
        ctx.notes.append(f"fallback check: skipped (needs {FOLDS} calibration samples)")
        return fitted
    fitted_cos = float(output_cosines(fitted, float_outputs(ctx), ctx.runs()).mean())
    held_out = []
    for fold, (scales, minima) in enumerate(zip(ctx.held_out_minmax_scales,
                                                ctx.held_out_minima)):
        model = build(scales, minima, fold_batches(ctx.batches, fold, held_out=False))
        test = ctx.runs(fold_batches(ctx.batches, fold, held_out=True))
        held_out.append(output_cosines(model, float_outputs(ctx, test), test))
        del model   # before the next one is built: its weights anchor simulator sessions
        ctx.tick("fallback check", fold + 1)
    fallback_cos = float(np.concatenate(held_out).mean())
    dropped = ", ".join(name for name, on in (
        (f"{ctx.config.blob_method} clipping", ctx.config.blob_method != "minmax"),
        ("scale search", ctx.config.scale_search),
        ("learned rounding", ctx.config.learned_rounding)) if on)
    drop = fallback_cos > fitted_cos
    ctx.notes.append(f"fallback check: output cosine {fitted_cos:.5f} on the calibration set, "
                     f"{fallback_cos:.5f} held out without {dropped}: "
                     + (f"{dropped} dropped" if drop else "kept"))
    return build(ctx.minmax_scales, ctx.minima, ctx.batches) if drop else fitted
