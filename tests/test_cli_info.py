"""`tnnquant info` as a user runs it (a subprocess): correct facts about the shared models, and
one `error:` line with exit code 1 (never a traceback) for every kind of bad input."""
from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import tnnquant
from conftest import MODELS, need_shared
from tnnquant import save_model
from tnnquant.formats.rawbuffer import MAGIC_V2
from tnnquant.testing import GraphBuilder

REPO = Path(__file__).resolve().parents[1]
NETWORKS = ["mobilenetv2", "yolov8n", "pplcnet", "mtcnn_onet"]


def run_info(*args: object, **env: str) -> subprocess.CompletedProcess:
    environ = dict(os.environ, **env)
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO),
                                                          os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "tnnquant", "info", *map(str, args)],
                          capture_output=True, text=True, env=environ, timeout=120)


def assert_one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def parse_info(text: str) -> dict:
    """The facts of `tnnquant info` output."""
    info: dict = {"inputs": [], "outputs": [], "layers": Counter(), "params": {}}
    section = None
    for line in text.splitlines():
        if not line.startswith("  "):
            key, _, value = line.partition(":")
            section = key
            value = value.strip()
            if key == "layers":
                info["n_layers"] = int(value)
            elif key == "parameters":
                info["n_params"] = int(value.split()[0].replace(",", ""))
            elif key == "quantized":
                info["quantized"] = value
            elif key in ("blob scales", "constants"):
                info[key] = value
            continue
        words = line.split()
        if section == "inputs":
            info["inputs"].append((words[0], tuple(map(int, words[1].split("x"))), words[2]))
        elif section == "outputs":
            info["outputs"].append(words[0])
        elif section == "layers":
            info["layers"][words[0]] = int(words[1])
        elif section == "parameters":
            info["params"][words[0]] = (int(words[1].replace(",", "")), " ".join(words[2:]))
    return info


def readme_input_dims() -> dict[str, tuple[int, ...]]:
    """network -> input dims, from the table in ../shared/models/README.md."""
    text = need_shared("models", "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)/` \| [^|]+ \| ([\d,]+)", text, flags=re.M)
    return {name: tuple(int(d) for d in dims.split(",")) for name, dims in rows}


def proto_layer_counts(proto: Path) -> Counter:
    """Layer type strings counted straight from the proto lines (line 6 on)."""
    lines = proto.read_text().splitlines()[5:]
    return Counter(m.group(1) for m in map(re.compile(r'^"(\S+) ').match, lines) if m)


def human(n_bytes: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n_bytes < 1024 or unit == "MiB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError


def model_stems() -> list[str]:
    if not MODELS.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{MODELS} not found"))]
    return sorted(str(p.relative_to(MODELS).with_suffix("")) for p in MODELS.rglob("*.tnnmodel"))


@pytest.mark.parametrize("stem", model_stems())
def test_info_on_shared_models(stem):
    network = stem.split("/")[0]
    proto, model = MODELS / f"{stem}.tnnproto", MODELS / f"{stem}.tnnmodel"
    result = run_info(proto, model)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    info = parse_info(result.stdout)
    # inputs: the README's dims (and fp32 input data)
    [(name, dims, dtype)] = info["inputs"]
    assert dims == readme_input_dims()[network]
    assert dtype == "float"
    # layer counts, counted from the proto text
    counts = proto_layer_counts(proto)
    assert info["layers"] == counts
    assert info["n_layers"] == sum(counts.values())
    # parameters by data type: consistent counts and sizes, and they are most of the file
    item = {"float": 4, "half": 2, "int8": 1, "int32": 4}
    total_bytes = 0
    for dtype, (count, size) in info["params"].items():
        assert size == human(count * item[dtype])
        total_bytes += count * item[dtype]
    assert info["n_params"] == sum(count for count, _ in info["params"].values())
    overhead = 0.1 if "/quant/" in stem else 0.05   # headers, dims, blob-scale records
    assert (1 - overhead) * model.stat().st_size < total_bytes < model.stat().st_size
    # quantized yes/no, with blob scales for the quantized ones
    n_quantized = sum(n for t, n in counts.items() if t.startswith("Quantized"))
    if "/quant/" in stem:
        assert info["quantized"] == f"yes ({n_quantized} int8 layers)"
        assert set(info["params"]) == {"float", "int8", "int32"}
        n, per_channel, per_tensor = map(int, re.match(
            r"(\d+) \((\d+) per-channel, (\d+) per-tensor\)$", info["blob scales"]).groups())
        assert n == per_channel + per_tensor > 0
        assert (per_channel == 0) == ("t1" in stem)    # -t 1: per-tensor blob scales
    else:
        assert info["quantized"] == "no" and n_quantized == 0
        assert set(info["params"]) == {"float"} and "blob scales" not in info


def test_info_readme_table_is_complete():
    assert sorted(readme_input_dims()) == sorted(NETWORKS)
    assert readme_input_dims()["mtcnn_onet"] == (1, 48, 48, 3)


@pytest.mark.parametrize("name", ["densenet", "quant_squeezenet_v1.1", "shufflenet_v2"])
def test_info_on_benchmark_protos(name):
    proto = need_shared("models", "protos", f"{name}.tnnproto")
    result = run_info(proto)
    assert result.returncode == 0, result.stderr
    info = parse_info(result.stdout)
    assert info["layers"] == proto_layer_counts(proto)
    assert "n_params" not in info                      # no weights without the model
    assert info["quantized"].startswith("yes") == name.startswith("quant_")


# --- bad input -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, Path]:
    b = GraphBuilder(seed=3)
    x = b.input("data", (1, 3, 8, 8))
    y = b.conv(x, 4, 3, pad=1, name="conv1")
    y = b.layer("ReLU", y, name="relu1")
    y = b.inner_product(y, 5, 4 * 8 * 8, name="fc1")
    d = tmp_path_factory.mktemp("cli")
    save_model(b.build(y), d / "small.tnnproto", d / "small.tnnmodel")
    return d / "small.tnnproto", d / "small.tnnmodel"


def test_info_on_a_built_model(small):
    result = run_info(*small)
    assert result.returncode == 0, result.stderr
    info = parse_info(result.stdout)
    assert info["inputs"] == [("data", (1, 3, 8, 8), "float")]
    assert info["outputs"] == ["fc1"]
    assert info["layers"] == {"Convolution": 1, "ReLU": 1, "InnerProduct": 1}
    assert info["n_params"] == 4 * 3 * 9 + 4 + 5 * 256 + 5
    assert info["quantized"] == "no"


def test_truncated_models(small, tmp_path):
    proto, model = small
    data = model.read_bytes()
    conv_payload = data.index(b"conv1", data.index(b"conv1") + 5) + 40
    for cut in (0, 3, 8, 20, conv_payload, len(data) - 1):
        cut_file = tmp_path / f"cut{cut}.tnnmodel"
        cut_file.write_bytes(data[:cut])
        line = assert_one_error_line(run_info(proto, cut_file), f"error: {cut_file}: byte ")
        if cut == conv_payload:
            assert "Convolution 'conv1': file ends inside filter" in line
        if cut == len(data) - 1:
            assert "InnerProduct 'fc1': file ends inside bias" in line


def test_bad_inputs(small, tmp_path):
    proto, model = small
    text = proto.read_text()
    png = tmp_path / "a.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(20))
    empty = tmp_path / "empty.tnnproto"
    empty.write_bytes(b"")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello, world\n")
    (tmp_path / "dir").mkdir()

    def proto_with(old: str, new: str) -> Path:
        path = tmp_path / f"edited{len(list(tmp_path.iterdir()))}.tnnproto"
        assert old in text
        path.write_text(text.replace(old, new))
        return path

    conv_line = next(line for line in text.splitlines() if line.startswith('"Convolution'))
    conv_params = conv_line.split(" data conv1 ")[1]
    cases = [
        ((png,), "a.png: not a TNN proto (binary data)"),
        ((proto, png), "a.png: byte 0: not a TNN model"),
        ((empty,), "empty.tnnproto: not a TNN proto: the file is empty"),
        ((proto, empty), "empty.tnnproto: byte 0: not a TNN model: the file is empty"),
        ((notes,), "notes.txt: not a TNN proto"),
        ((proto, notes), "notes.txt: byte 0: not a TNN model"),
        ((model, proto), "small.tnnmodel: this is a .tnnmodel file; expected the .tnnproto"),
        ((proto, proto), "small.tnnproto: this is a .tnnproto file; expected the .tnnmodel"),
        ((tmp_path / "missing.tnnproto",), "missing.tnnproto: cannot read .tnnproto file"),
        ((proto, tmp_path / "missing.tnnmodel"), "missing.tnnmodel: cannot read .tnnmodel"),
        ((tmp_path / "dir",), "dir: is a directory, expected a .tnnproto file"),
        ((proto, tmp_path / "dir"), "dir: is a directory, expected a .tnnmodel file"),
        ((proto_with(conv_params, " ".join(conv_params.split()[:12]) + " ,\""),),
         ":6: Convolution 'conv1': expected 14 parameters (at least 13), got 12"),
        ((proto_with(conv_params, conv_params.replace(" 3 3 ", " 3 three ", 1)),),
         ":6: Convolution 'conv1': parameter 'kernel_w': expected an integer, got 'three'"),
        ((proto_with('"ReLU relu1', '"Sigmiod relu1'),), ":7: layer 'relu1': unknown layer "
                                                        "type 'Sigmiod' (did you mean 'Sigmoid'?)"),
        ((proto_with(" 1 3 4 3 3 1 1 1 1 1 -1", " 1 3 8 3 3 1 1 1 1 1 -1"), model),
         "Convolution 'conv1': model does not match the proto: filter has 108 values"),
        ((proto_with('"Convolution conv1', '"BatchNormCxx conv1'), model),
         "the model's Convolution record does not fit the proto's BatchNormCxx layer of this name"),
        ((proto_with('"Convolution conv1 1 1 data conv1', '"Convolution conv2 1 1 data conv1'),
          model), "Convolution 'conv2': the model file has no weights for this layer"),
    ]
    for args, fragment in cases:
        assert_one_error_line(run_info(*args), fragment)


def test_usage_errors_are_one_line():
    result = subprocess.run([sys.executable, "-m", "tnnquant", "info"], capture_output=True,
                            text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert_one_error_line(result, "the following arguments are required: proto")


def test_names_that_are_not_utf8_or_hold_control_characters(tmp_path):
    proto = tmp_path / "latin.tnnproto"
    proto.write_bytes(b'"1 2 1 4206624772 ,"\n"in\xff 4 1 3 2 2 0 ,"\n" in\xff r ,"\n"r ,"\n'
                      b'" 1 ,"\n"ReLU r 1 1 in\xff r ,"\n')
    result = run_info(proto, PYTHONIOENCODING="ascii:strict")
    assert result.returncode == 0 and "in\\udcff" in result.stdout, result.stderr
    # a model record named with a line feed, reported on one line
    model = tmp_path / "m.tnnmodel"
    model.write_bytes(struct.pack("<Iiii", MAGIC_V2, 1, 38, 3) + b"Add"
                      + struct.pack("<i", 4) + b"a\nb\x00" + struct.pack("<Iii", MAGIC_V2, 7, 4))
    line = assert_one_error_line(run_info(proto, model), "Add 'a\\x0ab\\x00'")
    assert "unknown data type 7" in line


def test_quantized_info_lists_blob_scales(tmp_path):
    b = GraphBuilder()
    x = b.input("data", (1, 3, 4, 4))
    y = b.conv(x, 2, 1, name="c")
    graph = b.build(y)
    graph.layers[0].quantized = True
    res = graph.resources["c"]
    from tnnquant.formats.rawbuffer import RawBuffer
    graph.resources["c"] = type(res)("c", 1, RawBuffer.of(np.int8([1, 2, 3, 4, 5, 6])),
                                     RawBuffer.of(np.int32([1, 2])),
                                     RawBuffer.of(np.int8([0, 0])),
                                     RawBuffer.of(np.float32([0.1, 0.2])))
    graph.blob_scales["data"] = tnnquant.BlobScale(np.float32([0.5]), np.int8([0]))
    graph.blob_scales["c"] = tnnquant.BlobScale(np.float32([0.5, 0.25]), np.int8([0, 0]))
    save_model(graph, tmp_path / "q.tnnproto", tmp_path / "q.tnnmodel")
    result = run_info(tmp_path / "q.tnnproto", tmp_path / "q.tnnmodel")
    info = parse_info(result.stdout)
    assert info["layers"] == {"QuantizedConvolution": 1}
    assert info["quantized"] == "yes (1 int8 layer)"
    assert info["blob scales"] == "2 (1 per-channel, 1 per-tensor)"
    assert info["params"] == {"float": (2, "8 B"), "int32": (2, "8 B"), "int8": (8, "8 B")}
