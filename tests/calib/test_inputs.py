"""Calibration inputs: discovery, .txt/.npy/image reading, preprocessing, batching."""
from __future__ import annotations

import ctypes
import ctypes.util
import io
import struct
import warnings
import zlib
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import need_shared
from tnnquant.calib.inputs import (Preprocess, Sample, safe_file_name, iter_batches,
                                   list_samples, load_sample, parse_channel_values,
                                   read_input_file)
from tnnquant.errors import ConfigError, InputError
from tnnquant.ir.graph import InputSpec

IMAGENET = Preprocess(mean=(123.675, 116.28, 103.53),
                      scale=(0.0171247538, 0.0175070028, 0.0174291939))


def spec(dims=(1, 3, 4, 5), name="data") -> InputSpec:
    return InputSpec(name, tuple(dims))


def write_txt(path: Path, values) -> Path:
    path.write_text("".join("%.9g\n" % v for v in np.asarray(values, np.float32).ravel()))
    return path


def write_image(path: Path, array: np.ndarray, **save) -> Path:
    Image.fromarray(array).save(path, **save)
    return path


def png16(array: np.ndarray) -> bytes:
    """A 16-bit PNG (Pillow cannot write 16-bit colour): array (h, w, 1|3|4) uint16."""
    h, w, c = array.shape
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in array)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 3: 2, 4: 6}[c], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def reference(pixels_hwc: np.ndarray, pre: Preprocess) -> np.ndarray:
    """The spec's formula, written directly: x[c] = f32(f32(pix[src(c)] - mean[c]) * scale[c])."""
    c = pixels_hwc.shape[2]
    mean = np.array(pre.mean or [0] * c, np.float32)
    scale = np.array(pre.scale or [1] * c, np.float32)
    src = [2 - k if pre.reverse_channel and c >= 3 and k < 3 else k for k in range(c)]
    out = np.empty((1, c) + pixels_hwc.shape[:2], np.float32)
    for k in range(c):
        out[0, k] = (pixels_hwc[..., src[k]].astype(np.float32) - mean[k]) * scale[k]
    return out


def one_line(err: pytest.ExceptionInfo, *parts: str) -> str:
    text = str(err.value)
    assert "\n" not in text
    for part in parts:
        assert part in text, text
    return text


def rng(seed=0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- option parsing ----------------------------------------------------------------------------

def test_parse_channel_values_accepts_float_syntax():
    assert parse_channel_values("123.675,116.28,103.53", "-n") == (123.675, 116.28, 103.53)
    assert parse_channel_values(" 1e-3 , +1,.5,-2., 7E2", "-s") == (1e-3, 1.0, 0.5, -2.0, 700.0)


@pytest.mark.parametrize("text", ["", "1,,2", "1,2,", "abc", "1/255", "nan", "inf", "1e39",
                                  "0x10", "1_0", "1 2", "1;2"])
def test_parse_channel_values_rejects_garbage(text):
    with pytest.raises(ConfigError) as err:
        parse_channel_values(text, "-s/--scale")
    one_line(err, "-s/--scale")


def test_preprocess_defaults_and_channel_count():
    mean, scale = Preprocess().channel_values(4)
    assert mean.tolist() == [0] * 4 and scale.tolist() == [1] * 4
    mean, scale = Preprocess(mean=(1, 2, 3, 4), scale=(0.1, 0.2, 0.3, 0.4)).channel_values(3)
    assert mean.dtype == np.float32 and mean.tolist() == [1, 2, 3]
    assert scale.tolist() == np.float32([0.1, 0.2, 0.3]).tolist()
    with pytest.raises(ConfigError) as err:
        Preprocess(mean=(127.5,)).channel_values(3)
    one_line(err, "-n/--bias", "1 value", "3 channels")


# --- discovery ---------------------------------------------------------------------------------

def test_list_samples_flat_sorted_with_warnings(tmp_path):
    write_txt(tmp_path / "b.TXT", np.zeros(60))
    np.save(tmp_path / "a.npy", np.zeros((3, 3, 4, 5), np.float32))
    write_image(tmp_path / "c.Png", np.zeros((4, 5, 3), np.uint8))
    write_image(tmp_path / "d.jpeg", np.zeros((4, 5, 3), np.uint8))
    write_image(tmp_path / "e.bmp", np.zeros((4, 5, 3), np.uint8))
    (tmp_path / "notes.md").write_text("x")
    (tmp_path / "sub").mkdir()
    warnings: list[str] = []
    samples = list_samples(tmp_path, [spec()], warnings.append)
    assert [s.name for s in samples] == ["a.npy", "b.TXT", "c.Png", "d.jpeg", "e.bmp"]
    assert [s.count for s in samples] == [3, 1, 1, 1, 1]
    assert samples[1].files == {"data": tmp_path / "b.TXT"}
    assert len(warnings) == 1 and "notes.md" in warnings[0] and "sub/" in warnings[0]


def test_list_samples_warns_through_logging_by_default(tmp_path, caplog):
    write_txt(tmp_path / "a.txt", np.zeros(60))
    (tmp_path / "x.csv").write_text("1")
    list_samples(tmp_path, [spec()])
    assert "x.csv" in caplog.text


def test_list_samples_empty_folder_and_not_a_folder(tmp_path):
    (tmp_path / "readme").write_text("x")
    with pytest.raises(InputError) as err:
        list_samples(tmp_path, [spec()], lambda m: None)
    one_line(err, str(tmp_path), "no sample files")
    with pytest.raises(InputError) as err:
        list_samples(tmp_path / "readme", [spec()])
    one_line(err, "readme", "not a folder")


def test_list_samples_checks_npy_headers(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 5, 4), np.float32))
    with pytest.raises(InputError) as err:
        list_samples(tmp_path, [spec()])
    one_line(err, "bad.npy", "(2, 3, 5, 4)", "(3, 4, 5)")


def test_multi_input_flat_folder_explains_the_convention(tmp_path):
    write_txt(tmp_path / "a.txt", np.zeros(60))
    with pytest.raises(InputError) as err:
        list_samples(tmp_path, [spec(name="img:0"), spec((1, 2), name="mask")])
    one_line(err, "2 inputs", "img_0/", "mask/", "sub-folder per input")


def two_input_folder(tmp_path: Path) -> list[InputSpec]:
    inputs = [spec(name="img:0"), spec((1, 2), name="mask")]
    (tmp_path / "img_0").mkdir()
    (tmp_path / "mask").mkdir()
    for stem, k in (("s2", 2), ("s1", 1)):
        write_txt(tmp_path / "img_0" / f"{stem}.txt", np.full(60, k))
        np.save(tmp_path / "mask" / f"{stem}.npy", np.full((2,), k, np.float32))
    return inputs


def test_multi_input_subfolders_matched_by_stem(tmp_path):
    inputs = two_input_folder(tmp_path)
    (tmp_path / "stray.txt").write_text("1")
    warnings: list[str] = []
    samples = list_samples(tmp_path, inputs, warnings.append)
    assert [s.name for s in samples] == ["s1", "s2"]
    assert samples[0].files == {"img:0": tmp_path / "img_0" / "s1.txt",
                                "mask": tmp_path / "mask" / "s1.npy"}
    assert any("stray.txt" in w for w in warnings)
    batch, = iter_batches(samples, inputs, batch_size=2)
    assert batch["img:0"].shape == (2, 3, 4, 5) and batch["mask"].shape == (2, 2)
    assert batch["img:0"][:, 0, 0, 0].tolist() == [1, 2] == batch["mask"][:, 0].tolist()


def test_multi_input_errors(tmp_path):
    inputs = two_input_folder(tmp_path)
    (tmp_path / "mask" / "s2.npy").unlink()
    with pytest.raises(InputError) as err:
        list_samples(tmp_path, inputs)
    one_line(err, "s2.txt", "no match in 'mask/'")
    np.save(tmp_path / "mask" / "s2.npy", np.zeros((3, 2), np.float32))
    with pytest.raises(InputError) as err:
        list_samples(tmp_path, inputs)
    one_line(err, "'s2'", "different batch sizes")
    write_txt(tmp_path / "img_0" / "s1.npy", np.zeros(60))
    with pytest.raises(InputError) as err:
        list_samples(tmp_path, inputs)
    one_line(err, "s1.npy", "s1.txt", "same name")
    (tmp_path / "img_0" / "s1.npy").unlink()
    (tmp_path / "mask").rename(tmp_path / "masks")
    with pytest.raises(InputError) as err:
        list_samples(tmp_path, inputs)
    one_line(err, "no sub-folder 'mask'")


def test_safe_file_name():
    assert safe_file_name("input_3") == "input_3"
    assert safe_file_name("/model/img:0 x") == "_model_img_0_x"
    assert safe_file_name("a.b-c") == "a.b-c"


# --- .txt --------------------------------------------------------------------------------------

def test_text_reads_tnn_written_values_exactly(tmp_path):
    x = rng().standard_normal((1, 3, 4, 5)).astype(np.float32) * 1e3
    out = read_input_file(write_txt(tmp_path / "a.txt", x), spec(), IMAGENET)
    assert out.dtype == np.float32 and out.shape == (1, 3, 4, 5)
    np.testing.assert_array_equal(out, x)   # no mean/scale for text


def test_text_any_whitespace(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"  1 2\t3\r\n4e0\n\n+5 .6e1 7.\r\n" + b" 0" * 53)
    out = read_input_file(path, spec())
    assert out.ravel()[:7].tolist() == [1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize("content, line, words", [
    (b"1\n2\nabc\n", 3, ["value 3", "'abc' is not a number"]),
    (b"1 2\n3 nan\n", 2, ["value 4", "'nan' is not a finite number"]),
    (b"1\n-inf\n", 2, ["'-inf' is not a finite number"]),
    (b"1\n1_0\n", 2, ["'1_0' is not a number"]),
    (b"1\n2,5\n", 2, ["'2,5' is not a number"]),
    (b"1\n\xff\n", 2, ["is not a number"]),
    (b"1\n1e39\n", 2, ["'1e39' is outside the float32 range"]),
    (b"1\n-1e400\n", 2, ["'-1e400' is outside the float32 range"]),
])
def test_text_bad_values_name_file_and_line(tmp_path, content, line, words):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_input_file(path, spec((1, 2, 1, 1)))
    assert one_line(err, *words).startswith(f"{path}:{line}: ")


def test_text_value_count(tmp_path):
    path = tmp_path / "n.txt"
    path.write_text("1\n2\n3\n4 5\n")
    with pytest.raises(InputError) as err:
        read_input_file(path, spec((1, 3)))
    assert one_line(err, "expected 3 values", "found 5").startswith(f"{path}:4: ")
    path.write_text("1\n2\n")
    with pytest.raises(InputError) as err:
        read_input_file(path, spec((1, 3)))
    assert one_line(err, "expected 3 values", "ends after 2").startswith(f"{path}:2: ")
    path.write_text("")
    with pytest.raises(InputError) as err:
        read_input_file(path, spec((1, 3)))
    one_line(err, "n.txt", "ends after 0")


def test_text_is_fast(tmp_path):
    import time
    x = rng().standard_normal(3 * 224 * 224).astype(np.float32)
    path = write_txt(tmp_path / "big.txt", x)
    start = time.perf_counter()
    out = read_input_file(path, spec((1, 3, 224, 224)))
    assert time.perf_counter() - start < 0.5   # ~20 ms here; generous for slow CI machines
    np.testing.assert_array_equal(out.ravel(), x)


def _libc_strtof():
    name = ctypes.util.find_library("c")
    if name is None:
        pytest.skip("no C library to compare with strtof")
    strtof = ctypes.CDLL(name).strtof
    strtof.restype = ctypes.c_float
    strtof.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
    return lambda text: np.float32(strtof(text.encode(), None))


def near_float32_midpoint(bits: int, sign: int, exponent: int) -> str:
    """A decimal just above/below the midpoint of two adjacent float32 values: its float64
    rounding lands on the midpoint, so decimal -> f64 -> f32 rounds twice."""
    a = np.array([bits], np.uint32).view(np.float32)[0]
    b = np.nextafter(a, np.float32(np.inf))
    mid = (Decimal(float(a)) + Decimal(float(b))) / 2
    return str(mid + sign * mid.scaleb(-exponent))


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.builds(near_float32_midpoint, st.integers(0x00000001, 0x7F7FFFFE), st.sampled_from([-1, 1]),
              st.integers(18, 30)),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(-10**20, 10**20), st.integers(-60, 20))))
def test_text_rounds_like_strtof(tmp_path_factory, token):
    strtof = _libc_strtof()
    path = tmp_path_factory.mktemp("t") / "v.txt"
    path.write_text(token + "\n")
    want = strtof(token)
    if np.isinf(want):
        with pytest.raises(InputError, match="outside the float32 range"):
            read_input_file(path, spec((1, 1)))
    else:
        got = read_input_file(path, spec((1, 1)))[0, 0]
        assert got.view(np.uint32) == want.view(np.uint32), token


def test_text_double_rounding_case(tmp_path):
    # 1 + 2^-24 is halfway between float32 1 and 1 + 2^-23; a hair above it must round up
    token = str(Decimal(1) + Decimal(2) ** -24 + Decimal(2) ** -80)
    assert np.float32(float(token)) == 1   # the naive float64 route gets this wrong
    path = tmp_path / "v.txt"
    path.write_text(token)
    assert read_input_file(path, spec((1, 1)))[0, 0] == np.float32(1 + 2 ** -23)
    # just below the overflow threshold 2**128 - 2**103, whose float64 rounding is the threshold
    path.write_text("-3402823567797336428e20")
    assert read_input_file(path, spec((1, 1)))[0, 0] == -np.finfo(np.float32).max


# --- .npy --------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, n", [((3, 4, 5), 1), ((1, 3, 4, 5), 1), ((4, 3, 4, 5), 4)])
def test_npy_shapes(tmp_path, shape, n):
    x = rng().standard_normal(shape)            # float64 on disk
    np.save(tmp_path / "a.npy", x)
    out = read_input_file(tmp_path / "a.npy", spec(), IMAGENET)
    assert out.dtype == np.float32 and out.shape == (n, 3, 4, 5)
    np.testing.assert_array_equal(out, x.astype(np.float32).reshape(n, 3, 4, 5))


def test_npy_integer_and_fortran_order(tmp_path):
    x = np.asfortranarray(np.arange(60, dtype=np.int16).reshape(3, 4, 5))
    np.save(tmp_path / "a.npy", x)
    np.testing.assert_array_equal(read_input_file(tmp_path / "a.npy", spec())[0], x)


@pytest.mark.parametrize("make, words", [
    (lambda: np.zeros((3, 5, 4), np.float32), ["(3, 5, 4)", "expected (3, 4, 5) or (N, 3, 4, 5)"]),
    (lambda: np.zeros((0, 3, 4, 5), np.float32), ["holds no sample"]),
    (lambda: np.zeros((3, 4, 5), np.complex64), ["complex64", "not a real number type"]),
    (lambda: np.zeros((3, 4, 5), bool), ["bool"]),
    (lambda: np.array(["a"] * 60).reshape(3, 4, 5), ["<U1"]),
])
def test_npy_bad_shape_or_dtype(tmp_path, make, words):
    np.save(tmp_path / "bad.npy", make())
    with pytest.raises(InputError) as err:
        read_input_file(tmp_path / "bad.npy", spec())
    one_line(err, "bad.npy", *words)


def test_npy_non_finite_and_out_of_range(tmp_path):
    x = np.zeros((3, 4, 5))
    x[1, 2, 3] = np.nan
    np.save(tmp_path / "bad.npy", x)
    with pytest.raises(InputError) as err:
        read_input_file(tmp_path / "bad.npy", spec())
    one_line(err, "bad.npy", "(1, 2, 3)", "nan is not a finite number")
    x[1, 2, 3] = 1e300
    np.save(tmp_path / "bad.npy", x)
    with pytest.raises(InputError) as err:
        read_input_file(tmp_path / "bad.npy", spec())
    one_line(err, "bad.npy", "(1, 2, 3)", "outside the float32 range")


def test_npy_corrupt_object_and_npz(tmp_path):
    (tmp_path / "a.npy").write_bytes(b"not numpy at all")
    np.save(tmp_path / "b.npy", np.array([object()] * 60).reshape(3, 4, 5), allow_pickle=True)
    np.savez(tmp_path / "c.npz", x=np.zeros((3, 4, 5)))
    (tmp_path / "c.npz").rename(tmp_path / "c.npy")
    data = io.BytesIO()
    np.save(data, np.zeros((3, 4, 5), np.float32))
    (tmp_path / "d.npy").write_bytes(data.getvalue()[:-10])
    for name in "abcd":
        with pytest.raises(InputError) as err:
            read_input_file(tmp_path / f"{name}.npy", spec())
        one_line(err, f"{name}.npy")


def test_npy_damaged_header_text_warns_nothing(tmp_path):
    """numpy parses a .npy header with ast, which warns (SyntaxWarning on Python >= 3.12) about
    a damaged header's bad escapes: the user gets our one error line, not that warning too."""
    data = io.BytesIO()
    np.save(data, np.zeros((3, 4, 5), np.float32))
    (tmp_path / "a.npy").write_bytes(data.getvalue().replace(b"'descr'", b"'\\Mscr'"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError) as err:
            read_input_file(tmp_path / "a.npy", spec())
    one_line(err, "a.npy", "not a valid .npy file")
    assert not [str(w.message) for w in caught]


# --- images ------------------------------------------------------------------------------------

def test_png_at_input_size_matches_formula(tmp_path):
    pix = rng().integers(0, 256, (4, 5, 3), dtype=np.uint8)
    path = write_image(tmp_path / "a.png", pix)
    for pre in (IMAGENET, Preprocess(IMAGENET.mean, IMAGENET.scale, reverse_channel=True),
                Preprocess()):
        out = read_input_file(path, spec(), pre)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, reference(pix, pre))
    bgr = read_input_file(path, spec(), Preprocess(reverse_channel=True))
    np.testing.assert_array_equal(bgr[0, 0], pix[..., 2])


def test_resized_image_uses_pillow_bilinear(tmp_path):
    pix = rng().integers(0, 256, (37, 23, 3), dtype=np.uint8)
    path = write_image(tmp_path / "a.bmp", pix)
    expected = np.asarray(Image.fromarray(pix).resize((5, 4), Image.BILINEAR))
    out = read_input_file(path, spec(), IMAGENET)
    np.testing.assert_array_equal(out, reference(expected, IMAGENET))
    up = read_input_file(path, spec((1, 3, 50, 60)))
    np.testing.assert_array_equal(up[0].transpose(1, 2, 0),
                                  np.asarray(Image.fromarray(pix).resize((60, 50),
                                                                         Image.BILINEAR)))


def test_jpeg_decoded_by_pillow(tmp_path):
    pix = rng().integers(0, 256, (16, 16, 3), dtype=np.uint8)
    path = write_image(tmp_path / "a.JPG", pix, quality=90)
    decoded = np.asarray(Image.open(path).convert("RGB"))
    np.testing.assert_array_equal(read_input_file(path, spec((1, 3, 16, 16)), IMAGENET),
                                  reference(decoded, IMAGENET))


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "1"])
def test_image_modes_to_rgb(tmp_path, mode):
    pix = rng().integers(0, 256, (4, 5, 3), dtype=np.uint8)
    image = Image.fromarray(pix).convert(mode)
    image.save(tmp_path / "a.png")
    rgb = np.asarray(image.convert("RGB"))   # gray replicated, palette expanded, alpha dropped
    np.testing.assert_array_equal(read_input_file(tmp_path / "a.png", spec(), IMAGENET),
                                  reference(rgb, IMAGENET))


def test_gray_input_uses_stb_luma(tmp_path):
    pix = rng().integers(0, 256, (4, 5, 3), dtype=np.uint8)
    write_image(tmp_path / "a.png", pix)
    pre = Preprocess(mean=(10,), scale=(0.5,))
    r, g, b = pix.astype(np.int64).transpose(2, 0, 1)
    luma = (77 * r + 150 * g + 29 * b) >> 8
    np.testing.assert_array_equal(read_input_file(tmp_path / "a.png", spec((1, 1, 4, 5)), pre),
                                  reference(luma.astype(np.uint8)[..., None], pre))
    gray = pix[..., 0]
    write_image(tmp_path / "g.png", gray)
    np.testing.assert_array_equal(read_input_file(tmp_path / "g.png", spec((1, 1, 4, 5)))[0, 0],
                                  gray)


def test_gray_input_from_jpeg(tmp_path):
    y, x = np.mgrid[:32, :32]
    pix = np.stack([x * 8, y * 8, (x + y) * 4], axis=-1).astype(np.uint8)   # smooth colours
    path = write_image(tmp_path / "a.jpg", pix, quality=95)
    out = read_input_file(path, spec((1, 1, 32, 32)))[0, 0]
    r, g, b = pix.astype(np.int64).transpose(2, 0, 1)
    assert np.abs(out - ((77 * r + 150 * g + 29 * b) >> 8)).max() <= 3   # the JPEG's luma
    path = write_image(tmp_path / "g.jpg", pix[..., 0], quality=95)
    np.testing.assert_array_equal(read_input_file(path, spec((1, 1, 32, 32)))[0, 0],
                                  np.asarray(Image.open(path)))


def test_rgba_input(tmp_path):
    pix = rng().integers(0, 256, (4, 5, 4), dtype=np.uint8)
    write_image(tmp_path / "a.png", pix)
    pre = Preprocess(mean=(1, 2, 3, 4), scale=(1, 2, 3, 4), reverse_channel=True)
    np.testing.assert_array_equal(read_input_file(tmp_path / "a.png", spec((1, 4, 4, 5)), pre),
                                  reference(pix, pre))
    write_image(tmp_path / "g.png", pix[..., 0])
    out = read_input_file(tmp_path / "g.png", spec((1, 4, 4, 5)))[0]
    np.testing.assert_array_equal(out[:3], np.broadcast_to(pix[..., 0], (3, 4, 5)))
    assert (out[3] == 255).all()


def test_rgba_resize_is_not_premultiplied(tmp_path):
    # like TNN's resizer, colour of transparent pixels survives resizing
    pix = np.zeros((8, 10, 4), np.uint8)
    pix[..., :3] = 200
    write_image(tmp_path / "a.png", pix)
    out = read_input_file(tmp_path / "a.png", spec((1, 4, 4, 5)))[0]
    assert (out[:3] == 200).all() and (out[3] == 0).all()


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_16bit_png_keeps_high_byte(tmp_path, channels):
    pix = rng().integers(0, 65536, (4, 5, channels), dtype=np.uint16)
    (tmp_path / "a.png").write_bytes(png16(pix))
    out = read_input_file(tmp_path / "a.png", spec((1, channels, 4, 5)))
    np.testing.assert_array_equal(out[0], (pix >> 8).transpose(2, 0, 1))


def test_image_needs_1_3_or_4_channels(tmp_path):
    path = write_image(tmp_path / "a.png", np.zeros((48, 3, 3), np.uint8))
    with pytest.raises(InputError) as err:
        read_input_file(path, spec((1, 48, 48, 3), name="input_3"))
    one_line(err, "a.png", "1-, 3- or 4-channel", "48 channels")
    with pytest.raises(InputError) as err:
        read_input_file(path, spec((1, 3, 48)))
    one_line(err, "a.png", "4-D")


def test_image_too_few_mean_values(tmp_path):
    path = write_image(tmp_path / "a.png", np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ConfigError) as err:
        read_input_file(path, spec(), Preprocess(mean=(127.5,), scale=(1, 1, 1)))
    one_line(err, "-n/--bias", "3 channels")


def test_corrupt_images(tmp_path):
    good = io.BytesIO()
    Image.fromarray(rng().integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good, "JPEG")
    files = {"empty.png": b"", "noise.jpg": rng().bytes(500), "trunc.jpg": good.getvalue()[:600],
             "text.bmp": b"BM this is not a bitmap"}
    png = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(png, "PNG")
    files["trunc.png"] = png.getvalue()[:60]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError) as err:
            read_input_file(tmp_path / name, spec())
        one_line(err, name, "cannot decode image")


def test_unsupported_extension_and_missing_file(tmp_path):
    with pytest.raises(InputError) as err:
        read_input_file(tmp_path / "a.csv", spec())
    one_line(err, "a.csv", "unsupported file type")
    with pytest.raises(InputError) as err:
        read_input_file(tmp_path / "gone.txt", spec())
    one_line(err, "gone.txt", "cannot read")


# --- batching ----------------------------------------------------------------------------------

def test_iter_batches_concatenates_and_splits(tmp_path):
    values = rng().standard_normal((7, 3, 4, 5)).astype(np.float32)
    np.save(tmp_path / "a.npy", values[:3])
    write_txt(tmp_path / "b.txt", values[3])
    np.save(tmp_path / "c.npy", values[4:7])
    samples = list_samples(tmp_path, [spec()])
    assert sum(s.count for s in samples) == 7
    for size, shapes in ((2, [2, 2, 2, 1]), (3, [3, 3, 1]), (10, [7]), (1, [1] * 7)):
        batches = list(iter_batches(samples, [spec()], batch_size=size))
        assert [b["data"].shape[0] for b in batches] == shapes
        np.testing.assert_array_equal(np.concatenate([b["data"] for b in batches]), values)
    with pytest.raises(ConfigError):
        next(iter_batches(samples, [spec()], batch_size=0))


def test_iter_batches_streams(tmp_path):
    write_txt(tmp_path / "a.txt", np.ones(60))
    (tmp_path / "b.txt").write_text("1 broken")
    batches = iter_batches(list_samples(tmp_path, [spec()]), [spec()], batch_size=1)
    assert next(batches)["data"].sum() == 60    # the bad file is read only when reached
    with pytest.raises(InputError) as err:
        next(batches)
    one_line(err, "b.txt:1")


def test_load_sample_checks_count(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 3, 4, 5), np.float32))
    sample = Sample("a.npy", {"data": tmp_path / "a.npy"}, count=1)
    with pytest.raises(InputError) as err:
        load_sample(sample, [spec()])
    one_line(err, "a.npy", "holds 2 samples, expected 1")


# --- real data (../shared) ---------------------------------------------------------------------

def test_shared_calibration_npy():
    for model, dims in (("mobilenetv2", (1, 3, 224, 224)), ("mtcnn_onet", (1, 48, 48, 3))):
        folder = need_shared("models", model, "calib")
        inputs = [spec(dims, "input")]
        samples = list_samples(folder, inputs)
        assert len(samples) == 14
        batches = list(iter_batches(samples, inputs, IMAGENET, batch_size=4))
        got = np.concatenate([b["input"] for b in batches])
        want = np.concatenate([np.load(s.files["input"]) for s in samples])
        np.testing.assert_array_equal(got, want)   # no preprocessing for .npy


def test_shared_photos_reproduce_golden_tensors():
    photos = need_shared("data", "calib")
    golden = need_shared("models", "mobilenetv2", "calib")
    inputs = [spec((1, 3, 224, 224), "input")]
    samples = list_samples(photos, inputs)
    assert len(samples) == 14
    for sample in samples:
        got = load_sample(sample, inputs, IMAGENET)["input"]
        want = np.load(golden / (Path(sample.name).stem + ".npy"))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=sample.name)


def test_label_and_class_lists_are_not_samples(tmp_path):
    """One rule for every sample folder: a .txt whose first word is not a number is a label or
    class list, skipped with the other non-samples in one warning that says why."""
    write_txt(tmp_path / "a.txt", np.zeros(60))
    (tmp_path / "labels.txt").write_text("a.txt 3\n")
    (tmp_path / "classes.txt").write_text("tench\ngoldfish\n")
    (tmp_path / "nan.txt").write_text("nan " * 60)   # number-like: a sample, rejected on read
    (tmp_path / "notes.md").write_text("x")
    warnings: list[str] = []
    samples = list_samples(tmp_path, [spec()], warnings.append)
    assert [s.name for s in samples] == ["a.txt", "nan.txt"]
    assert warnings == [f"{tmp_path}: skipped 3 entries that are not samples: classes.txt, "
                        f"labels.txt (text whose first word is not a number: labels or class "
                        f"names); notes.md (not .txt .npy .jpg .jpeg .png .bmp files)"]
    with pytest.raises(InputError) as err:
        load_sample(samples[1], [spec()])
    one_line(err, "nan.txt:1", "not a finite number")
