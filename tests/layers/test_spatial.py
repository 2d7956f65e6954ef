"""Window helpers shared by Convolution, Deconvolution and Pooling."""
from __future__ import annotations

import numpy as np
import pytest

from tnnquant.layers._spatial import c_div, stride_planes, window_input


@pytest.mark.parametrize("a,b,expected", [(7, 2, 3), (-7, 2, -3), (-1, 2, 0), (6, 3, 2),
                                          (-3, 2, -1)])
def test_c_div_truncates_toward_zero(a, b, expected):
    assert c_div(a, b) == expected


def padded_reference(x, top, left, rows, cols, fill):
    """Element (r, c) of the result is x[r - top, c - left], or fill outside x."""
    n, ch, h, w = x.shape
    out = np.full((n, ch, rows, cols), fill, np.float32)
    for r in range(rows):
        for c in range(cols):
            if 0 <= r - top < h and 0 <= c - left < w:
                out[:, :, r, c] = x[:, :, r - top, c - left]
    return out


@pytest.mark.parametrize("top,left,rows,cols", [(1, 2, 7, 9), (0, 0, 4, 5), (-1, 0, 3, 5),
                                                (2, -2, 5, 2), (0, 0, 2, 3), (5, 5, 3, 3)])
@pytest.mark.parametrize("fill", [0.0, -3.0])
def test_window_input_pads_and_crops(top, left, rows, cols, fill):
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    got = window_input(x, top, left, rows, cols, fill)
    np.testing.assert_array_equal(got, padded_reference(x, top, left, rows, cols, fill))


@pytest.mark.parametrize("stride", [(1, 1), (2, 2), (3, 2)])
@pytest.mark.parametrize("pads", [(1, 1), (0, 0), (-1, 2)])
def test_every_tap_of_the_stride_planes_reads_the_padded_input(stride, pads):
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 8)).astype(np.float32)
    sh, sw = stride
    out_h, out_w, extent = 4, 3, 3
    planes = stride_planes(x, pads[0], pads[1], out_h, out_w, sh, sw, extent, extent)
    padded = padded_reference(x, pads[0], pads[1], (out_h - 1) * sh + extent,
                              (out_w - 1) * sw + extent, 0.0)
    for row in range(extent):
        for col in range(extent):
            expected = padded[:, :, row::sh, col::sw][:, :, :out_h, :out_w]
            np.testing.assert_array_equal(planes.crop(planes.tap(row, col)), expected)
