"""Build small TNN graphs in memory (for tests, examples and synthetic benchmarks)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .exec.executor import Executor
from .formats.rawbuffer import DataType, RawBuffer
from .ir.graph import BlobScale, Graph, InputSpec, Layer
from .layers import Params, resolve_type
from .layers.base import Int8Context
from .layers._resources import ConvResource
from .layers.inner_product import InnerProductResource


class GraphBuilder:
    """``b = GraphBuilder(); x = b.input("data", (1, 3, 32, 32)); y = b.conv(x, 8, 3, pad=1)``."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.inputs: list[InputSpec] = []
        self.layers: list[Layer] = []
        self.resources: dict[str, Any] = {}
        self.constants: dict[str, RawBuffer] = {}
        self.channels: dict[str, int] = {}

    def _name(self, prefix: str) -> str:
        return f"{prefix}{len(self.layers)}"

    def input(self, name: str, dims: tuple[int, ...]) -> str:
        self.inputs.append(InputSpec(name, tuple(dims), DataType.FLOAT))
        if len(dims) > 1:
            self.channels[name] = dims[1]
        return name

    def layer(self, type_str: str, inputs: list[str] | str, params: Params | str = "",
              resource: Any = None, n_out: int = 1, name: str | None = None,
              channels: int | None = None) -> Any:
        """Add any layer; ``params`` may be the proto words as a string. Returns the output
        blob name (or the list of names when ``n_out > 1``)."""
        kind, stored, quantized, dynamic = resolve_type(type_str)
        if isinstance(params, str):
            params, _ = kind.Params.parse(params.split())
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        name = name or self._name(type_str.lower())
        outputs = [name if n_out == 1 else f"{name}_out{i}" for i in range(n_out)]
        self.layers.append(Layer(stored, name, inputs, outputs, params, quantized=quantized,
                                 dynamic_range=dynamic))
        if resource is not None:
            self.resources[name] = resource
        for o in outputs:
            c = channels if channels is not None else self.channels.get(inputs[0]) if inputs else None
            if c is not None:
                self.channels[o] = c
        return outputs[0] if n_out == 1 else outputs

    def conv(self, x: str, out_channels: int, kernel: int, stride: int = 1, pad: int = 0,
             group: int = 1, bias: bool = True, activation: int = 0, dilation: int = 1,
             pad_type: int = -1, name: str | None = None) -> str:
        cin = self.channels[x]
        k = kernel
        fan_in = cin // group * k * k
        w = self.rng.normal(0, (2.0 / fan_in) ** 0.5, (out_channels, cin // group, k, k))
        b = self.rng.normal(0, 0.1, out_channels) if bias else None
        name = name or self._name("conv")
        res = ConvResource(name, int(bias), RawBuffer.of(w.astype(np.float32), dims=w.shape),
                           None if b is None else RawBuffer.of(b.astype(np.float32),
                                                               dims=(out_channels,)))
        params = (f"{group} {cin // group} {out_channels} {k} {k} {stride} {stride} {pad} {pad} "
                  f"{int(bias)} {pad_type} {dilation} {dilation} {activation}")
        return self.layer("Convolution", x, params, res, name=name, channels=out_channels)

    def inner_product(self, x: str, num_output: int, k: int, bias: bool = True,
                      name: str | None = None) -> str:
        w = self.rng.normal(0, (1.0 / k) ** 0.5, (num_output, k)).astype(np.float32)
        b = self.rng.normal(0, 0.1, num_output).astype(np.float32)
        name = name or self._name("fc")
        res = InnerProductResource(name, RawBuffer.of(w, dims=w.shape),
                                   RawBuffer.of(b if bias else np.zeros(0, np.float32),
                                                dims=(num_output,) if bias else ()))
        return self.layer("InnerProduct", x, f"{num_output} {int(bias)} 0 1", res, name=name,
                          channels=num_output)

    def build(self, outputs: list[str] | str) -> Graph:
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        graph = Graph(inputs=list(self.inputs), outputs=outputs, layers=list(self.layers),
                      resources=dict(self.resources), constants=dict(self.constants))
        graph.blob_names = sorted(graph.referenced_blobs())
        return graph


# the fp32 kernels ``run_layer`` uses by default; the kernel tests run once with each
# ("numpy": the layer's numpy kernel, "onnxruntime": its ONNX export, tests/layers/conftest.py)
RUN_LAYER_KERNELS = "numpy"


def run_layer(type_str: str, params: Params | str, *inputs: np.ndarray, resource: Any = None,
              n_out: int = 1, fp32: str | None = None, exported: bool | None = None) -> Any:
    """Run one layer through the executor: the one-line kernel test. ``fp32``: "numpy",
    "naive" (the layer's NAIVE-order kernel), "onnxruntime" (its ONNX export), default
    ``RUN_LAYER_KERNELS``.

    With "onnxruntime", a layer type with an export must run in onnxruntime, else the test
    fails saying why the export refused; ``exported=False`` declares a case it refuses on
    purpose (parameters or shapes it leaves to the numpy kernel), which must then not run
    there either. A run that raises (a kernel error under test) is not checked."""
    from .exec.ort_backend import exports

    fp32 = fp32 or RUN_LAYER_KERNELS
    b = GraphBuilder()
    names = [b.input(f"in{i}", x.shape) for i, x in enumerate(inputs)]
    out = b.layer(type_str, names, params, resource, n_out=n_out, name="layer")
    outs = [out] if n_out == 1 else out
    executor = Executor(b.build(outs), fp32="fast" if fp32 == "onnxruntime" else fp32)
    built = fp32 == "onnxruntime" and executor.backend == "onnxruntime"
    result = executor.run({n: x for n, x in zip(names, inputs)})
    if built and executor.backend != "onnxruntime":
        raise AssertionError(f"{type_str}: onnxruntime failed on the exported layer")
    if fp32 == "onnxruntime":
        expected = exports(resolve_type(type_str)[0]) if exported is None else exported
        if expected and not built:
            raise AssertionError(f"{type_str}: ran on the numpy kernel, not its ONNX export "
                                 f"({executor.numpy_reason}); pass exported=False where that "
                                 f"is intended")
        if exported is False and built:
            raise AssertionError(f"{type_str}: ran in onnxruntime although the test says "
                                 f"exported=False")
    return result[outs[0]] if n_out == 1 else [result[o] for o in outs]


def run_int8_layer(type_str: str, params: Params | str, *inputs: np.ndarray,
                   scales: list[Any], out_scales: list[Any], resource: Any = None,
                   device: str = "x86") -> Any:
    """Run one int8 kernel on int8 codes: the one-line int8 kernel test. ``scales`` and
    ``out_scales`` give one BlobScale (or a scale vector, zero points 0; None for an fp32
    blob) per input and output; returns the output codes (a tuple for several outputs)."""
    kind = resolve_type(type_str)[0]
    if isinstance(params, str):
        params, _ = kind.Params.parse(params.split())

    def blob_scale(s: Any) -> BlobScale | None:
        return s if s is None or isinstance(s, BlobScale) else BlobScale(np.atleast_1d(s))

    q = Int8Context(tuple(map(blob_scale, scales)), tuple(map(blob_scale, out_scales)), device)
    return kind.forward_int8(params, resource, q, *inputs)


def assert_kernel_close(y: np.ndarray, ref: np.ndarray, tol: float = 1e-6) -> None:
    """A kernel output: float32, the reference's shape, values within ``tol`` (abs and rel)."""
    assert y.dtype == np.float32
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)
