"""The architectures shipped in the onnx wheel, converted and run: the light models (AlexNet,
DenseNet-121, Inception v1/v2, ResNet-50, ShuffleNet, SqueezeNet, VGG-19, ZFNet-512; opset 9,
written by Caffe2) blob by blob against onnxruntime with seeded random weights, and the
PyTorch-exported single layers (mostly opset 6) against the outputs PyTorch computed for them.
Every model either converts and agrees, or is refused with one line naming the node, its op
and the opset, for the reason listed in UNSUPPORTED."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx_models import layer_types
from onnx_zoo import (DATA, every_blob_against_onnxruntime, need_data, randomize_constant_weights,
                      set_input_dims, shipped_data_set)

import tnnquant
from tnnquant.convert import convert_onnx
from tnnquant.errors import TnnQuantError

# light model -> (input dims for the random-weight run, TNN layer types it must convert to).
# Models that end in a global pooling run at 64x64 (the same graph, 12x cheaper); the others
# reshape to a fixed feature count and run at 224x224. AlexNet, ZFNet and VGG-19 (60-140 M
# weights, several GB and a minute to check) are converted here and run by benchmarks/zoo.py.
LIGHT = {
    "squeezenet": ((1, 3, 64, 64), {"Convolution": 26, "ReLU": 26, "Pooling": 4, "Concat": 8,
                                    "SoftmaxCaffe": 1}),
    "shufflenet": ((1, 3, 224, 224), {"Convolution": 49, "ReLU": 33, "Pooling": 5,
                                      "ShuffleChannel": 16, "Concat": 3, "Add": 13,
                                      "Reshape": 1, "InnerProduct": 1, "SoftmaxCaffe": 1}),
    "inception_v1": ((1, 3, 224, 224), {"Convolution": 57, "ReLU": 57, "Pooling": 14, "LRN": 2,
                                        "Concat": 9, "Reshape": 1, "InnerProduct": 1,
                                        "SoftmaxCaffe": 1}),
    "inception_v2": ((1, 3, 224, 224), {"Convolution": 69, "Mul": 69, "Add": 69, "ReLU": 69,
                                        "Pooling": 13, "Concat": 10, "Reshape": 1,
                                        "InnerProduct": 1, "SoftmaxCaffe": 1}),
    "resnet50": ((1, 3, 224, 224), {"Convolution": 53, "ReLU": 49, "Pooling": 2, "Add": 16,
                                    "Reshape": 1, "InnerProduct": 1, "SoftmaxCaffe": 1}),
    "densenet121": ((1, 3, 64, 64), {"Convolution": 121, "Mul": 121, "Add": 121, "ReLU": 121,
                                     "Pooling": 5, "BatchNormCxx": 62, "Concat": 58}),
}
CONVERT_ONLY = {
    "bvlc_alexnet": {"Convolution": 5, "ReLU": 7, "LRN": 2, "Pooling": 3, "Reshape": 1,
                     "InnerProduct": 3, "SoftmaxCaffe": 1},
    "zfnet512": {"Convolution": 5, "ReLU": 7, "LRN": 2, "Pooling": 3, "Reshape": 1,
                 "InnerProduct": 3, "SoftmaxCaffe": 1},
    "vgg19": {"Convolution": 16, "ReLU": 18, "Pooling": 5, "Reshape": 1, "InnerProduct": 3,
              "SoftmaxCaffe": 1},
}


def light_path(name: str):
    return need_data("light", f"light_{name}.onnx")


def counts(graph) -> dict[str, int]:
    types = layer_types(graph)
    return {t: types.count(t) for t in dict.fromkeys(types)}


@pytest.mark.parametrize("name", list(LIGHT))
def test_light_model_every_blob_matches_onnxruntime(tmp_path, name):
    dims, expected_layers = LIGHT[name]
    model = randomize_constant_weights(onnx.load(str(light_path(name))), seed=0)
    input_name = next(v.name for v in model.graph.input
                      if v.name not in {t.name for t in model.graph.initializer})
    set_input_dims(model, input_name, dims)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    graph = convert_onnx(path)
    assert counts(graph) == expected_layers
    x = np.random.default_rng(1).standard_normal(dims).astype(np.float32)
    blobs = every_blob_against_onnxruntime(path, graph, {input_name: x})
    assert len(blobs) == sum(expected_layers.values())   # every layer's output was compared
    worst = min(blobs.items(), key=lambda kv: kv[1][0])
    assert worst[1][0] > 0.99999, worst
    assert max(err for _, err in blobs.values()) < 1e-4


@pytest.mark.parametrize("name", list(CONVERT_ONLY))
def test_large_light_model_converts(name):
    assert counts(convert_onnx(light_path(name))) == CONVERT_ONLY[name]


@pytest.mark.parametrize("name", ["squeezenet", "shufflenet", "inception_v1"])
def test_light_model_shipped_output(name):
    # the shipped output: the model's own constant weights on onnx's dummy input arange/n
    path = light_path(name)
    graph = convert_onnx(path)
    (spec,) = graph.inputs
    n = int(np.prod(spec.dims))
    x = (np.arange(n).reshape(spec.dims) / n).astype(np.float32)
    (out,) = tnnquant.api.run(graph, x).values()
    want = onnx.numpy_helper.to_array(onnx.load_tensor(str(path.with_name(
        f"light_{name}_output_0.pb"))))
    np.testing.assert_allclose(out, want, rtol=1e-3, atol=1e-7)


# model folder -> what the one-line refusal says (the node's op and the reason)
UNSUPPORTED = {
    **{f"pytorch-converted/test_{m}": "only 2-D kernels" for m in (
        "AvgPool3d", "AvgPool3d_stride", "AvgPool3d_stride1_pad0_gpu_input", "MaxPool1d",
        "MaxPool1d_stride", "MaxPool1d_stride_padding_dilation", "MaxPool3d",
        "MaxPool3d_stride", "MaxPool3d_stride_padding")},
    **{f"pytorch-converted/test_{m}": "only 2-D convolutions" for m in (
        "Conv1d", "Conv1d_dilated", "Conv1d_groups", "Conv1d_pad1", "Conv1d_pad1size1",
        "Conv1d_pad2", "Conv1d_pad2size1", "Conv1d_stride", "Conv3d", "Conv3d_dilated",
        "Conv3d_dilated_strided", "Conv3d_groups", "Conv3d_no_bias", "Conv3d_stride",
        "Conv3d_stride_padding")},
    "pytorch-operator/test_operator_maxpool": "only 2-D kernels",
    "pytorch-converted/test_MaxPool2d_stride_padding_dilation": "(MaxPool, opset 12): dilations",
    **{f"pytorch-converted/test_{m}": "(LogSoftmax, opset 6): unsupported ONNX op" for m in (
        "LogSoftmax", "log_softmax_dim3", "log_softmax_lastdim")},
    "pytorch-converted/test_SELU": "(Selu, opset 6): unsupported ONNX op",
    "pytorch-operator/test_operator_selu": "(Selu, opset 6): unsupported ONNX op",
    "pytorch-converted/test_Softplus": "(Softplus, opset 6): unsupported ONNX op",
    "pytorch-converted/test_PoissonNLLLLoss_no_reduce": "(Exp, opset 6): unsupported ONNX op",
    "pytorch-operator/test_operator_exp": "(Exp, opset 6): unsupported ONNX op",
    "pytorch-operator/test_operator_sqrt": "(Sqrt, opset 6): unsupported ONNX op",
    **{f"pytorch-{m}": "(Neg, opset 6): unsupported ONNX op" for m in (
        "converted/test_Softmin", "operator/test_operator_basic", "operator/test_operator_params",
        "operator/test_operator_symbolic_override_nested")},
    "pytorch-operator/test_operator_pow": "(Pow, opset 6): only a blob raised to one constant",
    "pytorch-operator/test_operator_convtranspose": "reaches past the deconvolution's canvas",
    **{f"pytorch-operator/test_operator_{m}": "has element type DOUBLE" for m in (
        "add_broadcast", "add_size1_broadcast", "add_size1_right_broadcast",
        "add_size1_singleton_broadcast", "addconstant")},
    **{f"simple/test_expand_shape_model{i}": "(Expand, opset 9): the shape (input 1) must be a "
                                             "constant" for i in range(1, 5)},
    "simple/test_gradient_of_add": "operator domain 'ai.onnx.preview.training'",
    "simple/test_gradient_of_add_and_mul": "operator domain 'ai.onnx.preview.training'",
    **{f"simple/test_sequence_model{i}": "unsupported ONNX op" for i in (1, 2, 3, 4, 5, 6, 8)},
    "simple/test_sequence_model7": "has element type DOUBLE",
    "simple/test_shrink": "(Shrink, opset 10): unsupported ONNX op",
    "simple/test_sign_model": "(Sign, opset 9): unsupported ONNX op",
    **{f"simple/test_strnorm_model_{m}": "has element type STRING" for m in (
        "monday_casesensintive_lower", "monday_casesensintive_nochangecase",
        "monday_casesensintive_upper", "monday_empty_output", "monday_insensintive_upper_twodim",
        "nostopwords_nochangecase")},
}
SMALL = sorted(str(p.parent.relative_to(DATA)) for kind in ("pytorch-converted",
               "pytorch-operator", "simple") for p in DATA.glob(f"{kind}/*/model.onnx"))


@pytest.mark.parametrize("folder", SMALL or ["(none shipped)"])
def test_small_model(folder):
    path = need_data(folder, "model.onnx")
    if folder in UNSUPPORTED:
        with pytest.raises(TnnQuantError) as info:
            convert_onnx(path)
        message = str(info.value)
        assert "\n" not in message and UNSUPPORTED[folder] in message, message
        return
    graph = convert_onnx(path)
    inputs, outputs = shipped_data_set(path.parent)
    feeds = {spec.name: x for spec, x in zip(graph.inputs, inputs)}
    got = tnnquant.api.run(graph, feeds)
    assert len(got) == len(outputs)
    for name, want in zip(graph.outputs, outputs):
        np.testing.assert_allclose(got[name], want, rtol=1e-3, atol=1e-5, err_msg=name)


def test_every_small_model_is_listed_or_converts():
    # a folder name in UNSUPPORTED that the wheel no longer ships is a stale entry
    if not SMALL:
        pytest.skip(f"onnx {onnx.__version__} ships no pytorch-converted/operator models")
    assert set(UNSUPPORTED) <= set(SMALL), sorted(set(UNSUPPORTED) - set(SMALL))
