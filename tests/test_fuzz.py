"""Mutation fuzzing of every kind of file tnnquant reads: a valid seed file, damaged at random,
must either work or fail with a TnnQuantError of one line; nothing may hang or allocate
without bound.

``TARGETS`` lists the file kinds. Each target builds its seed files in a folder, names the
one that gets damaged, and ``consume``s the folder as a user would, as far as the files allow:
models (TNN's, or ONNX converted in memory) are loaded, described, run in float, quantized and
simulated in int8; samples are listed and read for a model input. A new file kind is one more
``Target`` entry: a seed writer and the call that reads it.

Deterministic: hypothesis is derandomized (the same cases on every run and every machine) and
keeps no example database. Bounded: FUZZ_EXAMPLES cases per target (``TNNQUANT_FUZZ_EXAMPLES``
overrides it for a longer local run); each case may take CASE_SECONDS and allocate
CASE_MEMORY bytes of new address space (Linux), else it fails as a hang or an unbounded
allocation. ``test_cli_contract_under_fuzz`` runs damaged models through the command line
itself: exit 0, or exit 1 with one ``error:`` line, no traceback and no output file.
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import signal
import struct
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import tnnquant
from tnnquant.calib.inputs import list_samples, load_sample, read_input_file
from tnnquant.cli import main as cli_main
from tnnquant.config import QuantConfig
from tnnquant.errors import TnnQuantError
from tnnquant.exec.executor import Executor
from tnnquant.formats.tnnmodel import format_model
from tnnquant.formats.tnnproto import format_proto
from tnnquant.info import model_info
from tnnquant.ir.graph import InputSpec
from tnnquant.quantize import quantize
from tnnquant.testing import GraphBuilder

DEFAULT_EXAMPLES = 400     # the README states the default budget
FUZZ_EXAMPLES = int(os.environ.get("TNNQUANT_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
CLI_EXAMPLES = max(1, FUZZ_EXAMPLES // 8)
CASE_SECONDS = 20          # a case that runs longer hangs (real cases take milliseconds)
CASE_MEMORY = 1 << 30      # new address space one case may reserve
RUN_ELEMENTS = 1 << 22     # largest non-image input the harness builds itself
SAMPLE_SPEC = InputSpec("data", (1, 3, 8, 8))
OUTCOMES: dict[str, dict[str, int]] = {}   # target -> {"ok": n, "error": n}


# --- seeds -------------------------------------------------------------------------------------

def float_model() -> tnnquant.Graph:
    """A small branching graph of the layers quantization touches and of layers whose
    parameters set output sizes: Conv, ReLU, max pool, Upsample, Sigmoid/Mul, a two-input Add,
    Concat, Permute, Reshape, ReLU6, average pool, Flatten, InnerProduct, Softmax."""
    b = GraphBuilder(seed=11)
    x = b.input("data", SAMPLE_SPEC.dims)
    c1 = b.conv(x, 4, 3, pad=1, name="conv1")
    r1 = b.layer("ReLU", c1, name="relu1")
    p1 = b.layer("Pooling", r1, "0 2 2 2 2 0 0 -1 -1 -1 0 0 0 0", name="pool1")
    c2 = b.conv(p1, 4, 3, pad=1, name="conv2")
    up = b.layer("Upsample", b.conv(c2, 4, 1, stride=2, name="conv3"), "1 2 2", name="up1")
    gate = b.layer("Mul", [up, b.layer("Sigmoid", up, name="sig1")], "-1", name="mul1")
    a = b.layer("Add", [c2, gate], "-1", name="add1")
    cat = b.layer("Concat", [a, p1], "1", name="cat1", channels=8)
    t = b.layer("Permute", b.layer("Permute", cat, "4 0 2 3 1", name="nhwc"), "4 0 3 1 2",
                name="nchw")
    r6 = b.layer("ReLU6", b.layer("Reshape", t, "0 4 4 0 8 2 8 0", name="shape1"), name="relu6")
    gp = b.layer("Pooling", r6, "1 0 0 1 1 0 0 -1 -1 -1 0 0 0 0", name="gap")
    f = b.layer("Flatten", gp, "1", name="flat")
    fc = b.inner_product(f, 5, 8, name="fc1")
    return b.build(b.layer("Softmax", fc, "1", name="prob"))


def write_model(folder: Path) -> None:
    tnnquant.save_model(float_model(), folder / "m.tnnproto", folder / "m.tnnmodel")
    calib = folder / "calib"
    calib.mkdir()
    rng = np.random.default_rng(3)
    for i in range(2):
        np.save(calib / f"{i}.npy", rng.normal(size=SAMPLE_SPEC.dims[1:]).astype(np.float32))
    Image.fromarray(rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)).save(folder / "photo.png")


def write_onnx(folder: Path) -> None:
    """A small ONNX model (Conv, Relu, MaxPool, Add, GlobalAveragePool, Flatten, Gemm,
    Softmax) for the converter, and a photo for its input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(7)

    def weight(name: str, *shape: int):
        return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    nodes = [helper.make_node("Conv", ["data", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c2", "p1"], ["a1"]),
             helper.make_node("GlobalAveragePool", ["a1"], ["g1"]),
             helper.make_node("Flatten", ["g1"], ["f1"]),
             helper.make_node("Gemm", ["f1", "w3", "b3"], ["fc"], transB=1),
             helper.make_node("Softmax", ["fc"], ["prob"], axis=1)]
    graph = helper.make_graph(
        nodes, "fuzz", [helper.make_tensor_value_info("data", TensorProto.FLOAT, SAMPLE_SPEC.dims)],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, (1, 5))],
        [weight("w1", 4, 3, 3, 3), weight("b1", 4), weight("w2", 4, 4, 3, 3), weight("b2", 4),
         weight("w3", 5, 4), weight("b3", 5)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]),
              folder / "m.onnx")
    write_model(folder)   # the photo and calibration samples


def use_onnx(folder: Path) -> None:
    use_model(folder / "m.onnx", None, folder)


def write_int8_model(folder: Path) -> None:
    write_model(folder)
    result = quantize(tnnquant.load_model(folder / "m.tnnproto", folder / "m.tnnmodel"),
                      folder / "calib", QuantConfig.tnn())   # a file as TNN's tool writes it
    result.save(folder / "q.tnnproto", folder / "q.tnnmodel")


def write_sample(ext: str) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        rng = np.random.default_rng(5)
        x = rng.normal(size=SAMPLE_SPEC.dims[1:]).astype(np.float32)
        path = folder / f"sample{ext}"
        if ext == ".npy":
            np.save(path, x)
        elif ext == ".txt":
            path.write_text("".join("%.9g\n" % v for v in x.ravel()))
        else:
            pixels = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path)
    return write


# --- consumers: what a user does with the files ------------------------------------------------

def use_model(proto: Path, model: Path | None, folder: Path) -> None:
    graph = tnnquant.load_model(proto, model)
    model_info(graph)
    format_proto(graph), format_model(graph)
    feeds = {}
    for spec in graph.inputs:
        if len(spec.dims) == 4 and spec.dims[1] in (1, 3, 4):
            # a photo resized to the input: the library must refuse dims it cannot hold
            feeds[spec.name] = read_input_file(folder / "photo.png", spec)
        elif math.prod(spec.dims[1:]) <= RUN_ELEMENTS:
            feeds[spec.name] = np.full((1, *spec.dims[1:]), 0.5, np.float32)
        else:
            return   # no file format of ours makes this input without holding it whole
    if graph.is_quantized:
        tnnquant.simulate(graph, feeds)
        return
    tnnquant.run(graph, feeds)
    result = quantize(graph, [feeds, feeds], QuantConfig())   # tnnquant's default recipe
    tnnquant.simulate(result.graph, feeds)


def use_float_model(folder: Path) -> None:
    use_model(folder / "m.tnnproto", folder / "m.tnnmodel", folder)


def use_int8_model(folder: Path) -> None:
    use_model(folder / "q.tnnproto", folder / "q.tnnmodel", folder)


def use_samples(folder: Path) -> None:
    for sample in list_samples(folder, [SAMPLE_SPEC], warn=lambda message: None):
        load_sample(sample, [SAMPLE_SPEC])


@dataclass(frozen=True)
class Target:
    seed: Callable[[Path], None]     # writes valid files into a folder
    damaged: str                     # the file that gets damaged
    consume: Callable[[Path], None]  # reads the folder as a user would
    damage: str = "bytes"            # "bytes", "text" (bytes, words, lines) or "numbers"


TARGETS = {
    ".tnnproto": Target(write_model, "m.tnnproto", use_float_model, "text"),
    ".tnnproto numbers": Target(write_model, "m.tnnproto", use_float_model, "numbers"),
    ".tnnmodel": Target(write_model, "m.tnnmodel", use_float_model),
    "int8 .tnnproto": Target(write_int8_model, "q.tnnproto", use_int8_model, "text"),
    "int8 .tnnproto numbers": Target(write_int8_model, "q.tnnproto", use_int8_model, "numbers"),
    "int8 .tnnmodel": Target(write_int8_model, "q.tnnmodel", use_int8_model),
    ".onnx": Target(write_onnx, "m.onnx", use_onnx),
    ".npy": Target(write_sample(".npy"), "sample.npy", use_samples),
    ".txt": Target(write_sample(".txt"), "sample.txt", use_samples, "text"),
    ".png": Target(write_sample(".png"), "sample.png", use_samples),
    ".jpg": Target(write_sample(".jpg"), "sample.jpg", use_samples),
    ".bmp": Target(write_sample(".bmp"), "sample.bmp", use_samples),
}


# --- damage ------------------------------------------------------------------------------------

INTERESTING_INTS = [0, 1, -1, 2, 3, 4, 7, 8, 255, 256, 4095, 65535, 65536, 1 << 24, 1 << 30,
                    (1 << 31) - 1, -(1 << 31), 0xFABC0004 - (1 << 32), 0xFABC0002 - (1 << 32)]
INTEGER_WORDS = [b"0", b"-1", b"1", b"2", b"3", b"5", b"7", b"64", b"255", b"4096", b"65536",
                 b"2147483647", b"-2147483648", b"-3"]
FLOAT_WORDS = [b"0", b"1e9", b"1e-9", b"0.5", b"-0.5", b"3.5", b"nan", b"inf", b"-inf", b"-0",
               b"1e39"]
INTERESTING_WORDS = INTEGER_WORDS + FLOAT_WORDS + [b"99999999999",
    b"x", b"", b",", b'"', b":", b"\n", b"Convolution", b"ReLU", b"Add", b"InnerProduct",
    b"Upsample", b"Reshape", b"Quantized", b"data", b"conv1", b"relu1", b"cat1", b"\xff"]
DAMAGE = {
    "bytes": ["flip", "set", "int32", "delete", "duplicate", "move", "truncate", "insert"],
    "numbers": ["number"],
}
DAMAGE["text"] = DAMAGE["bytes"] + ["word"] * 3 + ["line_delete", "line_duplicate", "line_swap"]


@st.composite
def damaged(draw, seed: bytes, damage: str) -> bytes:
    """``seed`` with 1-6 random edits. "bytes": byte flips and sets, interesting 32-bit
    integers written over the data (lengths, counts, dims, magic numbers), chunks deleted,
    duplicated or moved, truncation, random bytes inserted. "text" adds words replaced by
    interesting words and whole lines deleted, duplicated or swapped (duplicate layers,
    cycles, two producers of a blob). "numbers" only replaces numbers by interesting ones,
    so that the file stays well-formed and its parameters reach the kernels."""
    data = bytearray(seed)
    ops = DAMAGE[damage]
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            data += draw(st.binary(min_size=1, max_size=8))
        op = draw(st.sampled_from(ops))
        pos = draw(st.integers(0, len(data) - 1))
        size = draw(st.integers(1, 64))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[pos] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]))
        elif op == "int32":
            data[pos:pos + 4] = struct.pack("<i", draw(st.sampled_from(INTERESTING_INTS)))
        elif op == "delete":
            del data[pos:pos + size]
        elif op == "duplicate":
            data[pos:pos] = data[pos:pos + size]
        elif op == "move":
            chunk = data[pos:pos + size]
            del data[pos:pos + size]
            at = draw(st.integers(0, len(data)))
            data[at:at] = chunk
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=size))
        elif op == "word":
            words = list(_spans(data, rb"[^\s,\"]+"))
            if words:
                a, b = draw(st.sampled_from(words))
                data[a:b] = draw(st.sampled_from(INTERESTING_WORDS))
        elif op == "number":   # an integer stays an integer, so that parameters still parse
            words = list(_spans(data, rb"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])"))
            if words:
                a, b = draw(st.sampled_from(words))
                integer = b"." not in data[a:b]
                data[a:b] = draw(st.sampled_from(INTEGER_WORDS if integer else FLOAT_WORDS))
        else:
            lines = data.split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if op == "line_delete":
                del lines[i]
            elif op == "line_duplicate":
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\n".join(lines))
    return bytes(data)


def _spans(data: bytes, pattern: bytes):
    import re
    return ((m.start(), m.end()) for m in re.finditer(pattern, bytes(data)))


# --- bounds ------------------------------------------------------------------------------------

class CaseTimeout(Exception):
    """A fuzz case ran longer than CASE_SECONDS."""


def _address_space() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


@contextlib.contextmanager
def bounded():
    """Run a case under CASE_SECONDS of wall time and CASE_MEMORY of new address space."""
    import resource
    used = _address_space()
    old_limit = resource.getrlimit(resource.RLIMIT_AS)
    if used is not None:
        hard = old_limit[1]
        soft = used + CASE_MEMORY
        resource.setrlimit(resource.RLIMIT_AS,
                           (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))

    def timeout(signum, frame):
        raise CaseTimeout(f"the case ran longer than {CASE_SECONDS} s")

    old_handler = signal.signal(signal.SIGALRM, timeout)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        resource.setrlimit(resource.RLIMIT_AS, old_limit)


def outcome(consume: Callable[[Path], None], folder: Path) -> str:
    """"ok", or "error" for a one-line TnnQuantError; anything else fails the test, and so
    does a warning a user would see beside it (``shown``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with bounded():
                consume(folder)
        except TnnQuantError as err:
            message = str(err)
            assert message and "\n" not in message and "\r" not in message, repr(message)
            return "error"
        finally:
            seen = [f"{w.category.__name__}: {w.message}" for w in caught if shown(w)]
            assert not seen, seen
    return "ok"


def shown(w: warnings.WarningMessage) -> bool:
    """A warning Python prints by default that the input, not the library versions, causes:
    any but the deprecation family and numpy's inf/NaN arithmetic (damaged weights hold
    inf/NaN), and any at all raised while parsing the damaged text itself ("<unknown>")."""
    if w.filename == "<unknown>":
        return True
    return not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning,
                                       RuntimeWarning))


needs_posix = pytest.mark.skipif(not hasattr(signal, "setitimer") or sys.platform == "win32",
                                 reason="the case bounds use setitimer and RLIMIT_AS")
# damaged weights hold inf/NaN: numpy's overflow warnings are expected, not findings
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
FUZZ_SETTINGS = settings(max_examples=FUZZ_EXAMPLES, derandomize=True, database=None,
                         deadline=None, print_blob=True,
                         suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.data_too_large,
                                                HealthCheck.function_scoped_fixture])


# --- the fuzz tests ----------------------------------------------------------------------------

@needs_posix
@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_fuzz(kind, tmp_path):
    target = TARGETS[kind]
    target.seed(tmp_path)
    path = tmp_path / target.damaged
    seed = path.read_bytes()
    counts = OUTCOMES.setdefault(kind, {"ok": 0, "error": 0})
    assert outcome(target.consume, tmp_path) == "ok"   # the seed itself is valid

    @FUZZ_SETTINGS
    @given(damaged(seed, target.damage))
    def case(data: bytes) -> None:
        path.write_bytes(data)
        counts[outcome(target.consume, tmp_path)] += 1

    case()
    assert counts["error"] > 0


# damaged parameters a longer fuzz run once found escaping as a crash (word k of the first
# convolution's line): each must end in success or one line, like any fuzz case
FOUND_BY_FUZZING = {
    "fp32 conv, dilation -2^31": (".tnnproto numbers", 17, "-2147483648"),   # 512 GiB output
    "int8 conv, pad 2^31-1": ("int8 .tnnproto numbers", 13, "2147483647"),   # onnxruntime OOM
    "int8 conv, dilation 0": ("int8 .tnnproto numbers", 17, "0"),   # not an ONNX geometry
}


@needs_posix
@pytest.mark.parametrize("case", FOUND_BY_FUZZING.values(), ids=FOUND_BY_FUZZING.keys())
def test_cases_found_by_fuzzing(case, tmp_path):
    kind, word, value = case
    target = TARGETS[kind]
    target.seed(tmp_path)
    path = tmp_path / target.damaged
    lines = path.read_text().splitlines(keepends=True)
    k = next(i for i, line in enumerate(lines) if "Convolution conv1 " in line)
    words = lines[k].split(" ")
    words[word] = value
    lines[k] = " ".join(words)
    path.write_text("".join(lines))
    assert outcome(target.consume, tmp_path) in ("ok", "error")


@pytest.fixture(scope="module")
def cli_seed(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli_seed")
    write_int8_model(folder)
    (folder / "onnx").mkdir()
    write_onnx(folder / "onnx")
    (folder / "m.onnx").write_bytes((folder / "onnx" / "m.onnx").read_bytes())
    return folder


CLI_FILES = ("m.tnnproto", "m.tnnmodel", "q.tnnproto", "q.tnnmodel", "m.onnx")


@needs_posix
def test_cli_contract_under_fuzz(cli_seed, tmp_path):
    """The command line on damaged models (`tnnquant quantize` of a TNN or ONNX model with its
    accuracy summary, `tnnquant simulate -o`): exit 0, or exit 1 with one `error:` line on
    stderr, no traceback, and no output file."""
    seeds = {name: (cli_seed / name).read_bytes() for name in CLI_FILES}
    counts = OUTCOMES.setdefault("command line", {"ok": 0, "error": 0})

    @settings(FUZZ_SETTINGS, max_examples=CLI_EXAMPLES)
    @given(st.sampled_from(CLI_FILES), st.data())
    def case(name: str, data) -> None:
        work = Path(tempfile.mkdtemp(dir=tmp_path))
        for other, content in seeds.items():
            (work / other).write_bytes(content)
        damage = data.draw(st.sampled_from(["text", "numbers"])) if name.endswith("proto") \
            else "bytes"
        (work / name).write_bytes(data.draw(damaged(seeds[name], damage)))
        if name == "m.onnx":
            argv = ["quantize", "-p", work / "m.onnx", "-i", cli_seed / "calib", "-o",
                    work / "out", "-q"]
        elif name.startswith("m."):
            argv = ["quantize", "-p", work / "m.tnnproto", "-m", work / "m.tnnmodel",
                    "-i", cli_seed / "calib", "-o", work / "out", "-q"]
        else:
            argv = ["simulate", "-p", work / "q.tnnproto", "-m", work / "q.tnnmodel",
                    "-i", cli_seed / "calib" / "0.npy", "-o", work / "outputs"]
        stdout, stderr = io.StringIO(), io.StringIO()
        with bounded(), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = cli_main([str(a) for a in argv])
        written = sorted(p.name for p in work.iterdir() if p.name not in seeds)
        errors = [line for line in stderr.getvalue().splitlines() if not
                  line.startswith("warning: ")]
        if code == 0:
            counts["ok"] += 1
            assert written and not errors, (written, stderr.getvalue())
            return
        counts["error"] += 1
        assert code == 1, (code, stderr.getvalue())
        assert len(errors) == 1 and errors[0].startswith("error: "), stderr.getvalue()
        assert not written, written

    case()
    assert counts["error"] > 0 and counts["ok"] > 0


def test_case_counts():
    """Every target ran its FUZZ_EXAMPLES cases (the README's figure) and some damaged files
    still load: the mutations reach past the first check."""
    for kind in TARGETS:
        if kind not in OUTCOMES:
            pytest.skip("run with the fuzz tests")
        counts = OUTCOMES[kind]
        assert sum(counts.values()) >= 0.9 * FUZZ_EXAMPLES, (kind, counts)
    assert sum(OUTCOMES[kind]["ok"] for kind in TARGETS) > 0
    print("\nfuzz cases:", ", ".join(f"{kind} {c['ok']} ok / {c['error']} error"
                                     for kind, c in OUTCOMES.items()))


def test_readme_states_the_budget():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    readme = " ".join(readme.split())   # sentences wrap across lines
    cli = DEFAULT_EXAMPLES // 8
    assert (f"{DEFAULT_EXAMPLES} cases for each of {len(TARGETS)} kinds" in readme
            and f"{cli} damaged models through the command line" in readme
            and f"{DEFAULT_EXAMPLES * len(TARGETS) + cli:,} cases" in readme)
