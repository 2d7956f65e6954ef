"""onnx2tnn's rarer fusions (HardSigmoid and two-input HardSwish from their arithmetic, GELU,
Mul-Add as BatchNorm, Conv + Add as bias, LayerNorm, GroupNorm, ShuffleChannel), each against
onnxruntime on the unfused graph, and the cases onnx2tnn's conditions leave alone."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_models import check, convert_error, layer_types, make_model, node

RNG = np.random.default_rng(4)
X = {"x": (2, 4, 5, 6)}


def w(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def scalars(**values):
    return {k: np.array(v, np.float32) for k, v in values.items()}


def add_clip(x="x", out="c"):
    return [node("Add", [x, "three"], f"{out}_a"), node("Clip", [f"{out}_a", "zero", "six"], out)]


CONSTS = scalars(three=3, zero=0, six=6)


def test_add_clip_div_is_hard_sigmoid(tmp_path):
    model = make_model([*add_clip(), node("Div", ["c", "six"])], X, consts=CONSTS)
    graph = check(model, tmp_path)
    assert layer_types(graph) == ["HardSigmoid"] and graph.layers[0].name == "div_y"


def test_one_element_1d_constants_left_alone(tmp_path):
    # onnx2tnn matches 0-d constants only: a [1]-shaped 3 keeps Add, ReLU6, Div (-> Mul)
    consts = {k: v.reshape(1) for k, v in CONSTS.items()}
    model = make_model([*add_clip(), node("Div", ["c", "six"])], X, consts=consts)
    assert layer_types(check(model, tmp_path)) == ["Add", "ReLU6", "Mul"]


def test_hard_swish_from_arithmetic(tmp_path):
    # x * (relu6(x + 3) / 6): HardSigmoid, then HardSigmoid - Mul -> one-input HardSwish
    model = make_model([*add_clip(), node("Div", ["c", "six"], "h"), node("Mul", ["x", "h"])],
                       X, consts=CONSTS)
    graph = check(model, tmp_path)
    assert layer_types(graph) == ["HardSwish"] and graph.layers[0].inputs == ["x"]


@pytest.mark.parametrize("same", [True, False])
def test_relu6_product_over_6(tmp_path, same):
    # x0 * relu6(x1 + 3) / 6
    gate = "x" if same else "g"
    model = make_model([node("GlobalAveragePool", ["x"], "g"), *add_clip(gate),
                        node("Mul", ["x", "c"], "m"), node("Div", ["m", "six"])], X,
                       consts=CONSTS)
    graph = check(model, tmp_path)
    assert layer_types(graph) == ["Pooling", "HardSwish"]
    assert graph.layers[1].inputs == (["x"] if same else ["x", "g"])


def test_squeeze_excite_gate_is_a_two_input_hard_swish(tmp_path):
    # PP-LCNet: x * hardsigmoid(se(x)) with the gate [N, C, 1, 1]
    model = make_model([node("GlobalAveragePool", ["x"], "g"),
                        node("Conv", ["g", "w", "b"], "s"),
                        node("HardSigmoid", ["s"], "h", alpha=1 / 6, beta=0.5),
                        node("Mul", ["x", "h"])], X, consts={"w": w(4, 4, 1, 1), "b": w(4)})
    graph = check(model, tmp_path)
    assert layer_types(graph) == ["Pooling", "Convolution", "HardSwish"]
    assert graph.layers[2].inputs == ["x", "s"] and graph.layers[2].name == "mul_y"


def test_hard_sigmoid_read_elsewhere_is_not_fused(tmp_path):
    model = make_model([node("HardSigmoid", ["x"], "h"), node("Mul", ["x", "h"], "m"),
                        node("Add", ["m", "h"])], X)
    assert layer_types(check(model, tmp_path)) == ["HardSigmoid", "Mul", "Add"]


def gelu_nodes():
    return [node("Div", ["x", "sqrt2"], "d"), node("Erf", ["d"], "e"),
            node("Add", ["e", "one"], "a"), node("Mul", ["x", "a"], "m"),
            node("Mul", ["m", "half"])]


def test_gelu(tmp_path):
    model = make_model(gelu_nodes(), X, consts=scalars(sqrt2=np.sqrt(2), one=1, half=0.5))
    graph = check(model, tmp_path, feeds={"x": 3 * w(*X["x"])})
    assert layer_types(graph) == ["GELU"] and graph.layers[0].name == "mul_y"


def test_gelu_opset20(tmp_path):
    graph = check(make_model([node("Gelu", ["x"])], X, opset=20), tmp_path)
    assert layer_types(graph) == ["GELU"]


def test_gelu_tanh_approximation_refused(tmp_path):
    model = make_model([node("Gelu", ["x"], approximate="tanh")], X, opset=20)
    assert "approximate='tanh'" in convert_error(model, tmp_path)


def test_gelu_with_other_constants_is_not_fused(tmp_path):
    # not a GELU: converted op by op, where Erf has no TNN layer in tnnquant
    model = make_model(gelu_nodes(), X, consts=scalars(sqrt2=1.5, one=1, half=0.5))
    assert "(Erf, opset 13): unsupported ONNX op" in convert_error(model, tmp_path)


@pytest.mark.parametrize("before, expected", [
    ("Conv", ["Convolution"]),              # Mul-Add -> BatchNorm -> folded into the conv
    ("Relu", ["ReLU", "BatchNormCxx"]),
])
def test_mul_add_is_batchnorm(tmp_path, before, expected):
    first = (node("Conv", ["x", "w"], "t") if before == "Conv" else node("Relu", ["x"], "t"))
    model = make_model([first, node("Mul", ["t", "s"], "m"), node("Add", ["m", "b"])], X,
                       consts={"w": w(4, 4, 1, 1), "s": w(1, 4, 1, 1), "b": w(1, 4, 1, 1)})
    assert layer_types(check(model, tmp_path)) == expected


def test_mul_add_with_channel_first_scale_left_alone(tmp_path):
    # a [C, 1, 1] scale (Caffe2's DenseNet): onnx2tnn keeps Mul and Add, so does tnnquant
    model = make_model([node("Relu", ["x"], "t"), node("Mul", ["t", "s"], "m"),
                        node("Add", ["m", "b"])], X, consts={"s": w(4, 1, 1), "b": w(4, 1, 1)})
    assert layer_types(check(model, tmp_path)) == ["ReLU", "Mul", "Add"]


@pytest.mark.parametrize("conv_bias, add_shape", [(False, (1, 4, 1, 1)), (True, (1, 4, 1, 1)),
                                                  (False, ()), (True, ())])
def test_conv_add_is_bias(tmp_path, conv_bias, add_shape):
    inputs = ["x", "w", "cb"] if conv_bias else ["x", "w"]
    model = make_model([node("Conv", inputs, "t"), node("Add", ["t", "b"])], X,
                       consts={"w": w(4, 4, 3, 3), "cb": w(4), "b": w(*add_shape)})
    graph = check(model, tmp_path)
    assert layer_types(graph) == ["Convolution"] and graph.layers[0].params.bias == 1
    bias = graph.resources[graph.layers[0].name].bias
    # a [1, C, 1, 1] constant becomes the bias with its dims, as onnx2tnn writes it
    assert bias.size == 4 and bias.dims == ((1, 4, 1, 1) if add_shape and not conv_bias else (4,))


def test_constant_first_add_is_not_a_bias(tmp_path):
    model = make_model([node("Conv", ["x", "w"], "t"), node("Add", ["b", "t"])], X,
                       consts={"w": w(4, 4, 3, 3), "b": w(1, 4, 1, 1)})
    assert layer_types(check(model, tmp_path)) == ["Convolution", "Add"]


def layer_norm_nodes(exponent="two", axes=(-1,)):
    axes = list(axes)
    return [node("ReduceMean", ["x"], "mean", axes=axes), node("Sub", ["x", "mean"], "d"),
            node("Pow", ["d", exponent], "sq"), node("ReduceMean", ["sq"], "var", axes=axes),
            node("Add", ["var", "eps"], "ve"), node("Sqrt", ["ve"], "std"),
            node("Div", ["d", "std"], "n"), node("Mul", ["n", "gamma"], "sc"),
            node("Add", ["sc", "beta"])]


def ln_consts(inner):
    return {"two": np.float32(2), "three": np.float32(3), "eps": np.float32(1e-5),
            "gamma": w(*inner), "beta": w(*inner)}


@pytest.mark.parametrize("axes", [(-1,), (2, 3)])
def test_layer_norm(tmp_path, axes):
    inner = X["x"][4 - len(axes):]
    model = make_model(layer_norm_nodes(axes=axes), X, consts=ln_consts(inner))
    graph = check(model, tmp_path, atol=1e-4)
    assert layer_types(graph) == ["LayerNorm"]
    assert graph.layers[0].params.reduce_dims_size == len(axes)
    assert graph.layers[0].inputs == ["x", "gamma", "beta"] and graph.layers[0].name == "add_y"


@pytest.mark.parametrize("exponent, axes", [("three", (-1,)), ("two", (1,))])
def test_layer_norm_lookalikes_stay_op_by_op(tmp_path, exponent, axes):
    inner = (X["x"][1], 1, 1) if axes == (1,) else X["x"][-1:]
    model = make_model(layer_norm_nodes(exponent, axes), X, consts=ln_consts(inner), opset=12)
    # Sqrt has no TNN layer in tnnquant: the unfused chain is refused, naming the Sqrt
    assert "(Sqrt, opset 12): unsupported ONNX op" in convert_error(model, tmp_path)


def test_group_norm_from_pytorch_export(tmp_path):
    groups, channels = 2, 4
    model = make_model([node("Reshape", ["x", "grouped"], "r"),
                        node("InstanceNormalization", ["r", "gs", "gb"], "i", epsilon=1e-3),
                        node("Reshape", ["i", "back"], "rb"), node("Mul", ["rb", "s"], "m"),
                        node("Add", ["m", "b"])], X,
                       consts={"grouped": np.array([2, groups, -1], np.int64),
                               "back": np.array(X["x"], np.int64), "gs": w(groups),
                               "gb": w(groups), "s": w(channels, 1, 1), "b": w(channels, 1, 1)})
    graph = check(model, tmp_path, atol=1e-4)
    assert layer_types(graph) == ["GroupNorm"] and graph.layers[0].params.group == groups
    assert graph.layers[0].params.eps == pytest.approx(1e-3)


@pytest.mark.parametrize("back", [(2, 6, 5, 6), (2, -1, 5, 6)])
def test_channel_shuffle(tmp_path, back):
    # ShuffleNet's x.view(N, G, C/G, H, W).transpose(1, 2).reshape(N, C, H, W)
    model = make_model([node("Reshape", ["x", "split"], "r"),
                        node("Transpose", ["r"], "t", perm=[0, 2, 1, 3, 4]),
                        node("Reshape", ["t", "back"])], {"x": (2, 6, 5, 6)},
                       consts={"split": np.array([2, 3, 2, 5, 6], np.int64),
                               "back": np.array(back, np.int64)})
    graph = check(model, tmp_path)
    assert layer_types(graph) == ["ShuffleChannel"] and graph.layers[0].params.group == 3


def test_other_transpose_is_not_a_shuffle(tmp_path):
    model = make_model([node("Reshape", ["x", "split"], "r"),
                        node("Transpose", ["r"], "t", perm=[0, 1, 2, 4, 3]),
                        node("Reshape", ["t", "back"])], {"x": (2, 6, 5, 5)},
                       consts={"split": np.array([2, 3, 2, 5, 5], np.int64),
                               "back": np.array([2, 6, 5, 5], np.int64)})
    assert layer_types(check(model, tmp_path)) == ["Reshape", "Permute", "Reshape"]


@pytest.mark.parametrize("before, expected", [("Conv", ["Convolution"]),
                                              ("Relu", ["ReLU", "BatchNormCxx"])])
def test_one_value_mul_add_is_batchnorm(tmp_path, before, expected):
    # PP-LCNetV3's learnable affine block: x * s + b with one s and one b (PP-OCRv4)
    first = (node("Conv", ["x", "w"], "t") if before == "Conv" else node("Relu", ["x"], "t"))
    model = make_model([first, node("Mul", ["t", "s"], "m"), node("Add", ["m", "b"])], X,
                       consts={"w": w(4, 4, 1, 1), "s": w(1, 1, 1, 1), "b": w(1, 1, 1, 1)})
    assert layer_types(check(model, tmp_path)) == expected
