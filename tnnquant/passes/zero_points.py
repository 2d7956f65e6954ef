"""Zero points folded into int32 biases: the eighth bit of post-ReLU blobs on TNN's kernels.

TNN's x86 and ARM int8 kernels ignore zero points (spec int8 §13), so a blob that is never
negative (a ReLU / ReLU6 output) uses codes 0…127 only: 7 bits. Its codes can be moved down by
128 with nothing but integer biases when every reader of the blob is a quantized convolution
that reads no padding, or an inner product:

* the producer, a quantized convolution with a fused ReLU / ReLU6, writes
  ``q = sat(round(y / s - 128))`` with half the scale (``s = 127·s_old / 255``): its int32
  bias gains ``-128·s / S`` (``S`` its weight scale, spec int8 §8.1) and its fused activation
  is dropped, since the saturation at -128 (§12.1, §13: codes span [-128, 127]) *is* the ReLU
  (``y <= 0`` gives -128, i.e. 0) and the one at 127 is the clip (for ReLU6 the scale puts
  code 127 at 6 or below);
* each reader accumulates ``Σ q_w·q = Σ q_w·(x / s) - 128·Σ q_w``: its int32 bias gains
  ``128·Σ q_w`` of its row, an exact integer (a padded tap would read code 0, i.e.
  ``x = 128·s``: readers with padding are excluded, and so is any blob a float layer, a
  Reformat or the caller would read).

A blob a *float* layer writes (a HardSwish, PReLU, pooling or Flatten output that only int8
layers read: TNN's runtime quantizes it with a Reformat, ``round(x / s)``, §11.2, §13) gets
its zero point from a float ``Add`` of ``z·s`` inserted after its producer (an existing layer
type with a constant operand, model-format §3.3.4): its codes then span ``[2·min, top]``
(``min`` its calibrated minimum over all channels) instead of ``[-top, top]``, with
``z = m - 128`` for the smallest ``m`` whose ``m`` steps below zero reach ``-2·min``
(``m = 0``, ``z = -128`` for a blob that is never negative; twice the minimum of the whole
blob for every channel, because a few samples' minima underestimate new data's, as their
maxima do, and a channel never negative on them may well be on new data).
The readers fold ``-Σ q_w·z`` as above; ``z`` may differ per channel.

The file keeps zero point 0 for the blob (TNN's NAIVE kernels would apply a stored one a
second time, §12.3); the folded zero point goes to the blob scale's bias buffer, which TNN's
runtime never reads (§6.6), so that tnnquant's own tools dequantize the blob as ``s·(q - z)``.

``shift_blob_scales`` picks the blobs and halves their scales before the readers' weights are
folded with them (the scale search already scores its candidates shifted: ``shifted``);
``fold_zero_points`` moves the zero point into the biases once the int8 weights are final
(or, where a producer row's weight scale is too small for its int32 bias to write the zero
point, puts the blob back to symmetric codes); ``unshift`` undoes it for a blob one of whose
layers goes back to float (mixed precision).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..exec import int8_math
from ..formats.rawbuffer import DataType, RawBuffer
from ..ir.graph import BlobScale, Graph, Layer
from ..layers._binary import BinaryParams
from ..layers._resources import ElementResource
from ..layers._spatial import PAD_EXPLICIT, PAD_VALID
from ..layers.add import Add
from ..layers.convolution import ACT_RELU, ACT_RELU6, Convolution
from ..layers.inner_product import InnerProduct
from .bias import _has_bias, _with_bias
from .context import PassContext
from .fake_quant import zero_point_sums

ZERO_POINT = -128       # the code of 0: the lowest code the kernels saturate to (spec int8 §13)
QMAX = 127              # a symmetric blob scale maps the blob's top to code 127 (§6.1)
SHIFTED_STEPS = 255     # codes -128…127
RELU6_TOP = 6.0
# a shifted producer's weight scale is at least (output step) / this (_shifted_producer): its
# bias term, -128 * this at most, then sits far inside int32
SCALE_FLOOR_STEPS = 1 << 16
# a shifted producer's int32 bias stays within this: the accumulator keeps the other half of
# int32 (|Σ q_w·q| <= 128·127·K stays below 2^30 up to K = 66,000 inputs per output)
BIAS_LIMIT = float(1 << 30)
# a float layer's blob keeps this many times its calibrated minimum below zero: minima of a
# few samples underestimate those of new data, as maxima do (the scale search's margin x2)
BELOW_MARGIN = 2.0
OFFSET_SUFFIX = "_zero_point"   # the Add after a float producer, and its output


def _reads_no_padding(layer: Layer) -> bool:
    if layer.kind is InnerProduct:
        return True
    if layer.kind is not Convolution:
        return False
    p = layer.params
    if p.pad_type == PAD_VALID:
        return True
    if p.pad_type == PAD_EXPLICIT:
        return p.pad_h == 0 and p.pad_w == 0
    return p.kernel_h == 1 and p.kernel_w == 1   # SAME: a 1x1 kernel never pads


@dataclass(frozen=True)
class ShiftSite:
    """Where a shifted blob's zero point comes from: its producer, a quantized convolution
    with fused ReLU / ReLU6 (``minimum`` None: the blob is never negative), or a float layer
    (``minimum``: the blob's calibrated minimum over all its channels, which every channel
    gets below zero, doubled: a channel never negative on a few samples may be on new data;
    the zero point comes from an Add)."""

    producer: Layer
    minimum: float | None = None
    # per-channel zero points need NCHW readers (convolutions) for the Add's [1, C, 1, 1]
    per_channel: bool = True


def shiftable_blobs(graph: Graph, relu: bool = True,
                    minima: dict[str, np.ndarray] | None = None) -> dict[str, ShiftSite]:
    """Blob -> ShiftSite, for the blobs whose codes can be shifted (module docstring): read
    only by quantized convolutions without padding and inner products, every one of them with
    a bias to fold into, and not a network output; with ``relu``, the output of a quantized
    convolution with fused ReLU / ReLU6 (with a bias too); with ``minima`` (blob -> calibrated
    minimum per slot), the output of a float layer."""
    consumers = graph.consumers()
    outputs = set(graph.outputs)
    out = {}
    for layer in graph.layers:
        if len(layer.outputs) != 1:
            continue
        blob = layer.outputs[0]
        readers = consumers.get(blob, [])
        if (blob in outputs or blob not in graph.blob_scales or not readers
                or not all(r.quantized and _reads_no_padding(r) and r.inputs == [blob]
                           and _has_bias(r, graph.resources[r.name]) for r in readers)):
            continue
        if (relu and layer.quantized and layer.kind is Convolution
                and layer.params.activation_type in (ACT_RELU, ACT_RELU6)
                and _has_bias(layer, graph.resources[layer.name])):
            out[blob] = ShiftSite(layer)
        elif minima is not None and not layer.quantized and blob in minima:
            out[blob] = ShiftSite(layer, float(np.min(minima[blob])),
                                  all(r.kind is Convolution for r in readers))
    return out


def shifted(blob_scale: BlobScale, site: ShiftSite) -> BlobScale:
    """``blob_scale`` (symmetric: ``top = 127·s``) for codes -128…127 spanning the blob's range,
    with the folded zero point recorded (unchanged where ``site`` allows no per-channel zero
    point and the scale is per channel)."""
    if blob_scale.per_channel and not site.per_channel:
        return blob_scale
    top = blob_scale.scale.astype(np.float64) * QMAX
    if site.minimum is None:
        if site.producer.params.activation_type == ACT_RELU6:
            top = np.minimum(top, RELU6_TOP)
        below = np.zeros_like(top)
    else:
        below = np.clip(-BELOW_MARGIN * site.minimum, 0, top)
    # the fewest m steps below zero that reach below: m·top/(255-m) >= below
    steps_below = np.zeros_like(top)
    np.divide(SHIFTED_STEPS * below, top + below, out=steps_below, where=top + below > 0)
    steps_below = np.ceil(steps_below - 1e-9)   # an exact integer ratio needs no extra step
    scale = (top / (SHIFTED_STEPS - steps_below)).astype(np.float32)
    zero_point = (steps_below + ZERO_POINT).astype(np.int32)
    return BlobScale(scale, None, np.broadcast_to(zero_point, scale.shape))


def folded(blob_scale: BlobScale | None) -> np.ndarray | None:
    """The zero point folded around a blob, or None."""
    return None if blob_scale is None else blob_scale.folded_zero_point


def sites(graph: Graph, ctx: PassContext) -> dict[str, ShiftSite]:
    """``shiftable_blobs`` as the recipe's options select them."""
    config = ctx.config
    return shiftable_blobs(graph, config.fold_zero_points,
                           ctx.minima if config.offset_float_blobs else None)


def shift_blob_scales(graph: Graph, ctx: PassContext) -> Graph:
    """Return a copy whose shiftable blobs hold shifted scales (kept as they are where the
    scale search chose shifted ones) and whose convolution producers no longer fuse their
    activation."""
    graph = graph.copy()
    for blob, site in sites(graph, ctx).items():
        if folded(graph.blob_scales[blob]) is None:
            graph.blob_scales[blob] = shifted(graph.blob_scales[blob], site)
        if site.minimum is None:
            _set_activation(graph, site.producer, 0)
    return graph


def _set_activation(graph: Graph, layer: Layer, activation: int) -> None:
    i = next(i for i, lay in enumerate(graph.layers) if lay.name == layer.name)
    graph.layers[i] = layer.replace(
        params=dataclasses.replace(layer.params, activation_type=activation))


def _per_row(values: np.ndarray, rows: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(values, np.float64), (rows,))


def _shifted_producer(layer: Layer, res, s_out: np.ndarray, float_bias: np.ndarray
                      ) -> tuple[object, np.ndarray, np.ndarray]:
    """(the producer's resource, its int32 bias before and the term that writes the zero
    point, ``-128·s / S``).

    The term needs a weight scale ``S`` of at least ``s / 65536`` to stay far inside int32.
    A row below that (weight scale 0: all-zero weights or a silent depthwise input channel,
    which write code 0 whatever their bias, spec int8 §12.3; weights ~1e-30 left by training)
    is re-rounded to that scale: its weights can move its output by at most ``128·K / 65536``
    steps before, and typically far less, so its codes mostly become 0, and its bias is
    ``round(b / S)`` from its float bias (which TNN's own arithmetic loses there, §8.3)."""
    rows = len(res.bias.data)
    s_out = _per_row(s_out, rows)
    scale = res.scale.data.astype(np.float32)
    bq = res.bias.data.astype(np.float64)
    if scale.size == rows:
        floor = (s_out / SCALE_FLOOR_STEPS).astype(np.float32)
        low = (s_out > 0) & (scale < floor)
        if low.any():
            weight = res.weights
            codes = weight.data.reshape(rows, -1).astype(np.float64)
            codes[low] = int8_math.rhaz(codes[low] * (scale[low] / floor[low])[:, None])
            scale = np.where(low, floor, scale)
            res = res.with_weights(
                RawBuffer.of(codes.reshape(weight.data.shape).astype(np.int8),
                             weight.data_type, weight.dims),
                scale=RawBuffer.of(scale, DataType.FLOAT))
            bq[low] = int8_math.rhaz(float_bias[low] / scale[low])
    return res, bq, _zero_point_term(s_out, scale, rows)


def _zero_point_term(s_out: np.ndarray, weight_scale: np.ndarray, rows: int) -> np.ndarray:
    """The int32 bias term ``round(-128·s / S)`` of each producer row (0 where S is 0)."""
    scale = _per_row(weight_scale, rows)
    term = np.zeros(rows)
    np.divide(ZERO_POINT * _per_row(s_out, rows), scale, out=term, where=scale != 0)
    return int8_math.rhaz(term)


def fold_zero_points(graph: Graph, ctx: PassContext) -> Graph:
    """Return a copy whose int32 biases hold the zero points recorded on their blobs, written
    by their convolution producers (a blob whose producer cannot write its zero point with an
    int32 bias goes back to symmetric codes) or by an Add after their float producers."""
    graph = graph.copy()
    producers = graph.producers()
    shifted_blobs = [b for b, s in graph.blob_scales.items() if folded(s) is not None]
    writers = {}   # producer name -> (its resource, its int32 bias writing the zero point)
    symmetric = []
    offsets = 0
    for blob in shifted_blobs:
        producer = producers[blob]
        if not producer.quantized:
            _insert_offset(graph, blob, producer)
            offsets += 1
            continue
        written = _zero_point_writer(producer, graph.resources[producer.name],
                                     graph.blob_scales[blob].scale, _float_bias(ctx, producer))
        if written is None:
            symmetric.append(blob)
            _restore_symmetric(graph, blob, ctx.float_graph)
        else:
            writers[producer.name] = written
    for layer in graph.layers:
        if not (layer.quantized and layer.kind in (Convolution, InnerProduct)):
            continue
        z_in = folded(graph.blob_scales.get(layer.inputs[0]))
        if z_in is None and layer.name not in writers:
            continue
        res, bq = writers.get(layer.name, (graph.resources[layer.name], None))
        if bq is None:
            bq = res.bias.data.astype(np.float64)
        if z_in is not None:
            bq = bq - zero_point_sums(layer, res, z_in)
        graph.resources[layer.name] = _with_bias(res, bq)
    relu = len(shifted_blobs) - offsets
    if relu:
        kept = (f"; {len(symmetric)} kept 0..127 (a producer row's weight scale too small "
                f"for the int32 bias to write the zero point)" if symmetric else "")
        ctx.notes.append(f"zero points folded into biases: "
                         f"{relu - len(symmetric)} post-ReLU blob(s) use codes "
                         f"-128..127{kept}")
    if offsets:
        ctx.notes.append(f"zero points of {offsets} blob(s) written by float layers: a float "
                         f"Add shifts each into codes -128..127 over its calibrated range")
    return graph


def _insert_offset(graph: Graph, blob: str, producer: Layer) -> None:
    """A float Add of ``z·s`` after ``producer`` (in place): its output, read by ``blob``'s
    readers in its place, takes ``blob``'s scale, and the Reformat TNN puts before the int8
    readers writes ``round(x / s + z)``. ``blob`` itself stays the float layer's output, so
    its values mean the same in the float and the int8 model."""
    blob_scale = graph.blob_scales.pop(blob)
    offset = (blob_scale.folded_zero_point.astype(np.float64) * blob_scale.scale).astype(
        np.float32)
    name = _unused(blob + OFFSET_SUFFIX,
                   graph.referenced_blobs() | {lay.name for lay in graph.layers})
    for layer in graph.layers:
        layer.inputs[:] = [name if b == blob else b for b in layer.inputs]
    i = next(i for i, lay in enumerate(graph.layers) if lay.name == producer.name)
    # per channel only before convolutions, whose input is NCHW (scalar: dims [1])
    dims = (1, offset.size, 1, 1) if offset.size > 1 else (1,)
    graph.layers.insert(i + 1, Layer("Add", name, [blob], [name], BinaryParams(1)))
    graph.resources[name] = ElementResource(RawBuffer.of(offset, DataType.FLOAT, dims))
    graph.blob_scales[name] = blob_scale


def is_offset_add(layer: Layer) -> bool:
    """Whether ``layer`` is an Add ``_insert_offset`` put after a float layer."""
    return (layer.kind is Add and not layer.quantized and len(layer.inputs) == 1
            and len(layer.outputs) == 1
            and layer.outputs[0].startswith(layer.inputs[0] + OFFSET_SUFFIX))


def _unused(name: str, taken: set[str]) -> str:
    candidate, k = name, 1
    while candidate in taken:
        candidate, k = f"{name}_{k}", k + 1
    return candidate


def _zero_point_writer(producer: Layer, res, s_out: np.ndarray, float_bias: np.ndarray
                       ) -> tuple[object, np.ndarray] | None:
    """(``producer``'s resource, its int32 bias writing the zero point), or None where a row's
    bias would leave ``BIAS_LIMIT`` (measured with the float bias: a bias TNN's rounding
    already clipped to int32 could cancel the term)."""
    res, bq, term = _shifted_producer(producer, res, s_out, float_bias)
    scale = _per_row(res.scale.data, len(term))
    needed = np.zeros(len(term))
    np.divide(float_bias, scale, out=needed, where=scale != 0)
    if not np.all(np.abs(needed + term) <= BIAS_LIMIT):
        return None
    return res, bq + term


def _float_bias(ctx: PassContext, layer: Layer) -> np.ndarray:
    return ctx.float_graph.resources[layer.name].bias.data.astype(np.float64)


def unshift(graph: Graph, blob: str, float_graph: Graph) -> None:
    """Undo the shift of ``blob`` in ``graph`` (in place, after ``fold_zero_points``), for a
    blob whose producer or a reader goes back to float: the folded zero point out of the int8
    layers' biases (and the Add that wrote it removed, its readers reading its input again),
    then ``_restore_symmetric``."""
    blob_scale = graph.blob_scales[blob]
    for layer in graph.layers:
        if not (layer.quantized and layer.kind in (Convolution, InnerProduct)):
            continue
        res = graph.resources[layer.name]
        if layer.outputs == [blob]:   # rows re-rounded to the scale floor keep it
            bq = res.bias.data.astype(np.float64) - _zero_point_term(
                blob_scale.scale, res.scale.data, len(res.bias.data))
        elif layer.inputs == [blob]:
            bq = res.bias.data.astype(np.float64) + zero_point_sums(
                layer, res, blob_scale.folded_zero_point)
        else:
            continue
        graph.resources[layer.name] = _with_bias(res, bq)
    add = graph.producers()[blob]
    if is_offset_add(add):
        graph.layers.remove(add)
        del graph.resources[add.name]
        source = add.inputs[0]
        for layer in graph.layers:
            layer.inputs[:] = [source if b == blob else b for b in layer.inputs]
        graph.blob_scales[source] = graph.blob_scales.pop(blob)
        blob = source
    _restore_symmetric(graph, blob, float_graph)


def _restore_symmetric(graph: Graph, blob: str, float_graph: Graph) -> None:
    """``blob`` back to symmetric codes (in place, its zero point not folded): scale
    ``s·255/127``, its producer's activation back, and each int8 reader's weight scale
    multiplied by the same factor with its bias re-expressed in it (its codes unchanged)."""
    blob_scale = graph.blob_scales[blob]
    factor = SHIFTED_STEPS / QMAX
    for layer in list(graph.layers):
        if layer.outputs == [blob] and layer.kind is Convolution:
            _set_activation(graph, layer, float_graph.layer(layer.name).params.activation_type)
        elif layer.inputs == [blob] and layer.quantized and layer.kind in (Convolution,
                                                                          InnerProduct):
            res = graph.resources[layer.name]
            scale = (res.scale.data.astype(np.float64) * factor).astype(np.float32)
            graph.resources[layer.name] = _with_bias(
                dataclasses.replace(res, scale=RawBuffer.of(scale, DataType.FLOAT)),
                int8_math.rhaz(res.bias.data.astype(np.float64) / factor))
    graph.blob_scales[blob] = BlobScale((blob_scale.scale.astype(np.float64) * factor)
                                        .astype(np.float32))
