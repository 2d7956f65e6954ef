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

The file keeps zero point 0 for the blob (TNN's NAIVE kernels would apply a stored one a
second time, §12.3); the folded zero point goes to the blob scale's bias buffer, which TNN's
runtime never reads (§6.6), so that tnnquant's own tools dequantize the blob as ``s·(q + 128)``.

``shift_blob_scales`` picks the blobs and halves their scales before the readers' weights are
folded with them (the scale search already scores its candidates shifted: ``shifted``);
``fold_zero_points`` moves the zero point into the biases once the int8 weights are final;
``unshift`` undoes it for a blob one of whose layers goes back to float (mixed precision).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..exec import int8_math
from ..formats.rawbuffer import DataType, RawBuffer
from ..ir.graph import BlobScale, Graph, Layer
from ..layers._spatial import PAD_EXPLICIT, PAD_VALID
from ..layers.convolution import ACT_RELU, ACT_RELU6, Convolution
from ..layers.inner_product import InnerProduct
from ..weights.bias import INT32_MAX, INT32_MIN
from .context import PassContext

ZERO_POINT = -128       # the code of 0: the lowest code the kernels saturate to (spec int8 §13)
QMAX = 127              # a symmetric blob scale maps the blob's top to code 127 (§6.1)
SHIFTED_STEPS = 255     # codes -128…127
RELU6_TOP = 6.0
# a producer row whose weight scale is 0 writes code 0 whatever its bias (spec int8 §12.3:
# M = 0), which now reads as 128 steps; it gets the weight scale (output step) / this instead,
# so that its bias can write -128 (its accumulator is 0: its weights are all zero, or it is a
# depthwise row whose input channel has scale 0 and so codes 0)
DEAD_ROW_STEPS = 1 << 16


def _has_bias(layer: Layer, res) -> bool:
    if layer.kind is Convolution:
        return bool(layer.params.bias) and res.bias is not None
    return bool(layer.params.has_bias) and res.bias is not None and res.bias.size > 0


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
    return p.kernel_h == 1 and p.kernel_w == 1 and p.dilation_h == 1   # SAME: 1x1 never pads


def shiftable_blobs(graph: Graph) -> dict[str, Layer]:
    """Blob -> producer, for the blobs whose codes can be shifted (module docstring): output of
    a quantized convolution with fused ReLU / ReLU6, read only by quantized convolutions
    without padding and inner products, every one of them with a bias to fold into."""
    consumers = graph.consumers()
    outputs = set(graph.outputs)
    out = {}
    for layer in graph.layers:
        if not (layer.quantized and layer.kind is Convolution and len(layer.outputs) == 1
                and layer.params.activation_type in (ACT_RELU, ACT_RELU6)):
            continue
        blob = layer.outputs[0]
        readers = consumers.get(blob, [])
        if (blob in outputs or blob not in graph.blob_scales or not readers
                or not all(r.quantized and _reads_no_padding(r) and r.inputs == [blob]
                           for r in readers)
                or not all(_has_bias(r, graph.resources[r.name]) for r in [layer, *readers])):
            continue
        out[blob] = layer
    return out


def shifted(blob_scale: BlobScale, producer: Layer) -> BlobScale:
    """``blob_scale`` (symmetric: codes 0…127 for the blob's values) for codes -128…127 with
    the folded zero point recorded."""
    top = blob_scale.scale.astype(np.float64) * QMAX
    if producer.params.activation_type == ACT_RELU6:
        top = np.minimum(top, RELU6_TOP)
    scale = (top / SHIFTED_STEPS).astype(np.float32)
    return BlobScale(scale, None, np.full(scale.size, ZERO_POINT, np.int32))


def folded(blob_scale: BlobScale | None) -> int:
    """The zero point folded around a blob (0 if none)."""
    return int(blob_scale.bias[0]) if blob_scale is not None and blob_scale.bias.size else 0


def shift_blob_scales(graph: Graph, ctx: PassContext) -> Graph:
    """Return a copy whose shiftable blobs hold shifted scales (kept as they are where the
    scale search chose shifted ones) and whose producers no longer fuse their activation."""
    graph = graph.copy()
    blobs = shiftable_blobs(graph)
    for blob, producer in blobs.items():
        if not folded(graph.blob_scales[blob]):
            graph.blob_scales[blob] = shifted(graph.blob_scales[blob], producer)
        _set_activation(graph, producer, 0)
    if blobs:
        ctx.notes.append(f"zero points folded into biases: {len(blobs)} post-ReLU blob(s) "
                         f"use codes -128..127")
    return graph


def _set_activation(graph: Graph, layer: Layer, activation: int) -> None:
    i = next(i for i, lay in enumerate(graph.layers) if lay.name == layer.name)
    graph.layers[i] = layer.replace(
        params=dataclasses.replace(layer.params, activation_type=activation))


def _int32(bq: np.ndarray) -> RawBuffer:
    return RawBuffer.of(np.clip(bq, INT32_MIN, INT32_MAX).astype(np.int32), DataType.INT32)


def _row_sums(layer: Layer, res) -> np.ndarray:
    """Σ q_w over each output row of an int8 convolution / inner product (int64)."""
    weight = res.filter if layer.kind is Convolution else res.weight
    return weight.data.astype(np.int64).reshape(len(res.bias.data), -1).sum(axis=1)


def _per_row(values: np.ndarray, rows: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(values, np.float64), (rows,))


def _output_term(res, s_out: np.ndarray) -> tuple[object, np.ndarray]:
    """(the resource with dead rows revived, the int32 bias term that writes the zero point)."""
    rows = len(res.bias.data)
    s_out = _per_row(s_out, rows)
    s = res.scale.data.astype(np.float32)
    if s.size == rows:
        s = np.where((s == 0) & (s_out > 0), (s_out / DEAD_ROW_STEPS).astype(np.float32), s)
        res = dataclasses.replace(res, scale=RawBuffer.of(s, DataType.FLOAT))
    s = _per_row(s, rows)
    step = np.zeros(rows)
    np.divide(ZERO_POINT * s_out, s, out=step, where=s != 0)
    return res, int8_math.rhaz(step)


def fold_zero_points(graph: Graph, ctx: PassContext) -> Graph:
    """Return a copy whose int32 biases hold the zero points recorded on their blobs."""
    graph = graph.copy()
    for layer in graph.layers:
        if not (layer.quantized and layer.kind in (Convolution, InnerProduct)):
            continue
        z_in = folded(graph.blob_scales.get(layer.inputs[0]))
        out_scale = graph.blob_scales.get(layer.outputs[0])
        if not (z_in or folded(out_scale)):
            continue
        res = graph.resources[layer.name]
        bq = res.bias.data.astype(np.float64) - z_in * _row_sums(layer, res)
        if folded(out_scale):
            res, term = _output_term(res, out_scale.scale)
            bq += term
        graph.resources[layer.name] = dataclasses.replace(res, bias=_int32(bq))
    return graph


def unfold(layer: Layer, graph: Graph, fake):
    """``fake`` (``fake_quant.float_resource`` of ``layer``) with the folded zero points taken
    out of its float bias: what the int8 layer computes on its input dequantized as
    ``s·(q - z)``, for its output dequantized the same way."""
    z_in = folded(graph.blob_scales.get(layer.inputs[0]))
    out_scale = graph.blob_scales.get(layer.outputs[0])
    z_out = folded(out_scale)
    if not (z_in or z_out) or fake.bias is None:
        return fake
    res = graph.resources[layer.name]
    rows = len(res.bias.data)
    s = _per_row(res.scale.data, rows)
    bias = fake.bias.data.astype(np.float64) + s * z_in * _row_sums(layer, res)
    if z_out:
        bias -= _per_row(out_scale.scale, rows) * z_out
    return dataclasses.replace(fake, bias=RawBuffer.of(bias.astype(np.float32), DataType.FLOAT))


def unshift(graph: Graph, blob: str, float_graph: Graph) -> None:
    """Undo the shift of ``blob`` in ``graph`` (in place, after ``fold_zero_points``), for a
    blob whose producer or a reader goes back to float: symmetric scale ``s·255/127``, the
    producer's activation and bias back (if still int8), and each int8 reader's weight scale
    multiplied by the same factor with its bias re-expressed in it (its codes unchanged)."""
    blob_scale = graph.blob_scales[blob]
    factor = SHIFTED_STEPS / QMAX
    for layer in list(graph.layers):
        if layer.outputs == [blob]:
            _set_activation(graph, layer, float_graph.layer(layer.name).params.activation_type)
        if not (layer.quantized and layer.kind in (Convolution, InnerProduct)):
            continue
        res = graph.resources[layer.name]
        if layer.outputs == [blob]:
            _, term = _output_term(res, blob_scale.scale)
            graph.resources[layer.name] = dataclasses.replace(
                res, bias=_int32(res.bias.data.astype(np.float64) - term))
        elif layer.inputs == [blob]:
            bq = res.bias.data.astype(np.float64) + ZERO_POINT * _row_sums(layer, res)
            scale = (res.scale.data.astype(np.float64) * factor).astype(np.float32)
            graph.resources[layer.name] = dataclasses.replace(
                res, scale=RawBuffer.of(scale, DataType.FLOAT),
                bias=_int32(int8_math.rhaz(bq / factor)))
    graph.blob_scales[blob] = BlobScale((blob_scale.scale.astype(np.float64) * factor)
                                        .astype(np.float32))
