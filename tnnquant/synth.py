"""Random weights for a graph read from a .tnnproto alone (benchmarks, shape tests).

Layers are visited in execution order and run on synthetic data, so every weight gets the
shape the layer's actual input needs (e.g. a Convolution filter's input channels come from the
blob, not from the proto's informational ``input_channel``). Filters are then rescaled so the
layer's output has unit standard deviation on that data, which keeps activations finite
through any depth.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .errors import TnnQuantError, UnsupportedError
from .formats.rawbuffer import RawBuffer
from .ir.graph import Graph, Layer
from .layers._binary import BinaryLayer
from .layers._resources import BatchNormResource, ConvResource, ElementResource
from .layers.base import LayerType
from .layers.batch_norm import BatchNormCxx
from .layers.bias_add import BiasAdd
from .layers.convolution import Convolution
from .layers.deconvolution import Deconvolution
from .layers.inner_product import InnerProduct, InnerProductResource
from .layers.inst_batch_norm import InstBatchNormCxx
from .layers.matmul import MatMul, MatMulResource
from .layers.prelu import PReLU, PReLUResource
from .layers.scale import Scale, ScaleResource

Rng = np.random.Generator


def _buffer(values: np.ndarray) -> RawBuffer:
    values = np.asarray(values, dtype=np.float32)
    return RawBuffer.of(values, dims=values.shape)


def _he_normal(rng: Rng, shape: tuple[int, ...], fan_in: int) -> RawBuffer:
    return _buffer(rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), shape))


def _channels(x: np.ndarray) -> int:
    return x.shape[1] if x.ndim > 1 else 1


def _conv(layer: Layer, x: np.ndarray, rng: Rng) -> ConvResource:
    p = layer.params
    group = max(p.group, 1)
    shape = (p.output_channel, _channels(x) // group, p.kernel_h, p.kernel_w)
    bias = _buffer(rng.normal(0.0, 0.1, p.output_channel)) if p.bias else None
    return ConvResource(layer.name, p.bias, _he_normal(rng, shape, int(np.prod(shape[1:]))), bias)


def _deconv(layer: Layer, x: np.ndarray, rng: Rng) -> ConvResource:
    p = layer.params
    group = max(p.group, 1)
    # [group][I/group][O/group][kH][kW] (spec model-format §2.5)
    shape = (_channels(x), p.output_channel // group, p.kernel_h, p.kernel_w)
    bias = _buffer(rng.normal(0.0, 0.1, p.output_channel)) if p.bias else None
    return ConvResource(layer.name, p.bias, _he_normal(rng, shape, int(np.prod(shape[1:]))), bias)


def _inner_product(layer: Layer, x: np.ndarray, rng: Rng) -> InnerProductResource:
    p = layer.params
    k = int(np.prod(x.shape[1:]))
    bias = rng.normal(0.0, 0.1, p.num_output) if p.has_bias else np.zeros(0)
    return InnerProductResource(layer.name, _he_normal(rng, (p.num_output, k), k), _buffer(bias))


def _batch_norm(layer: Layer, x: np.ndarray, rng: Rng) -> BatchNormResource:
    c = _channels(x)
    return BatchNormResource(_buffer(rng.uniform(0.5, 1.5, c)), _buffer(rng.normal(0, 0.1, c)))


def _scale(layer: Layer, x: np.ndarray, rng: Rng) -> ScaleResource:
    c = _channels(x)
    bias = _buffer(rng.normal(0, 0.1, c)) if layer.params.bias_term else None
    return ScaleResource(layer.name, layer.params.bias_term, _buffer(rng.uniform(0.5, 1.5, c)),
                         bias)


def _prelu(layer: Layer, x: np.ndarray, rng: Rng) -> PReLUResource:
    n = 1 if layer.params.channel_shared == 1 else _channels(x)
    return PReLUResource(layer.name, _buffer(rng.uniform(0.0, 0.3, n)))


def _per_channel_constant(layer: Layer, x: np.ndarray, rng: Rng) -> ElementResource:
    """A [1, C, 1, ...] operand: near 1 for Mul/Div (a folded BatchNorm scale), near 0 else."""
    shape = (1, _channels(x)) + (1,) * max(x.ndim - 2, 0)
    if layer.type in ("Mul", "Div"):
        return ElementResource(_buffer(rng.uniform(0.5, 1.5, shape)))
    return ElementResource(_buffer(rng.normal(0.0, 0.1, shape)))


def _bias_add(layer: Layer, x: np.ndarray, rng: Rng) -> ElementResource:
    return ElementResource(_buffer(rng.normal(0.0, 0.1, _channels(x))))


def _matmul(layer: Layer, x: np.ndarray, rng: Rng) -> MatMulResource:
    """A square weight on the side named by weight_position (the proto gives no other size)."""
    k = x.shape[-1] if layer.params.weight_position == 1 else x.shape[-2]
    return MatMulResource(_he_normal(rng, (k, k), k))


Synthesizer = Callable[[Layer, np.ndarray, Rng], Any]
SYNTHESIZERS: dict[type[LayerType], Synthesizer] = {
    Convolution: _conv, Deconvolution: _deconv, InnerProduct: _inner_product,
    BatchNormCxx: _batch_norm, InstBatchNormCxx: _batch_norm, Scale: _scale, PReLU: _prelu,
    BiasAdd: _bias_add, MatMul: _matmul,
}
# weights rescaled so that the layer's output has unit standard deviation
NORMALIZED = (Convolution, Deconvolution, InnerProduct, MatMul)


def _synthesizer(kind: type[LayerType]) -> Synthesizer | None:
    if issubclass(kind, BinaryLayer):
        return _per_channel_constant
    return SYNTHESIZERS.get(kind)


def _run(layer: Layer, res: Any, xs: list[np.ndarray], graph: Graph) -> list[np.ndarray]:
    try:
        out = layer.kind.forward(layer.params, res, *xs)
    except TnnQuantError as err:
        raise err.located(path=graph.proto_path, line=layer.line, layer=layer.name,
                          layer_type=layer.proto_type) from err
    except (ValueError, IndexError) as err:
        raise UnsupportedError(f"cannot run: {err}", path=graph.proto_path, line=layer.line,
                               layer=layer.name, layer_type=layer.proto_type) from err
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _normalize(res: Any, y: np.ndarray) -> bool:
    """Scale the weights (and bias) of ``res`` by 1 / std(y); False if y is constant."""
    std = float(np.std(y))
    if not np.isfinite(std) or std == 0:
        return False
    for buf in vars(res).values():
        if isinstance(buf, RawBuffer) and buf.size:
            buf.data = (buf.data / np.float32(std)).astype(np.float32)
    return True


def _new_resource(layer: Layer, xs: list[np.ndarray], graph: Graph, rng: Rng) -> Any:
    synthesize = _synthesizer(layer.kind)
    if synthesize is None or not xs:
        raise UnsupportedError("cannot synthesize weights for this layer type",
                               path=graph.proto_path, line=layer.line, layer=layer.name,
                               layer_type=layer.proto_type)
    res = synthesize(layer, xs[0], rng)
    if issubclass(layer.kind, NORMALIZED):
        _normalize(res, _run(layer, res, xs, graph)[0])
    return res


def synthesize_weights(graph: Graph, seed: int = 0) -> Graph:
    """A copy of ``graph`` where every layer that needs a resource and has none gets random
    weights of the right shapes (inputs: standard normal data of the proto's dims)."""
    rng = np.random.default_rng(seed)
    out = graph.copy()
    blobs: dict[str, np.ndarray] = {
        spec.name: rng.standard_normal(spec.dims).astype(np.float32) for spec in out.inputs}
    blobs.update((name, buf.array()) for name, buf in out.constants.items())
    order = out.topo_order()
    last_use = {b: i for i, layer in enumerate(order) for b in layer.inputs}
    for i, layer in enumerate(order):
        xs = [blobs[b] for b in layer.inputs]
        if layer.name not in out.resources and layer.kind.requires_resource(layer):
            out.resources[layer.name] = _new_resource(layer, xs, out, rng)
        blobs.update(zip(layer.outputs, _run(layer, out.resources.get(layer.name), xs, out)))
        for b in layer.inputs:
            if last_use[b] == i and b not in out.constants:
                blobs.pop(b, None)
    return out
