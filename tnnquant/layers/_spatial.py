"""Sliding-window helpers shared by Convolution, Deconvolution and Pooling.

Window kernels are loops over kernel taps, never over elements. Pooling reads its input through
``window_input`` (the rows and columns its windows reach, padding filled with a constant) and
``tap`` (the strided view of one tap at every output position). Convolution reads
``StridePlanes``, where each tap is one contiguous run per channel: copying a tap into window
columns is then a plain memory copy.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from ..exec.onnx_model import OnnxGraph


PAD_EXPLICIT, PAD_SAME, PAD_VALID = -1, 0, 1   # pad_type of Convolution and Pooling (§3.3.1-2)


def c_div(a: int, b: int) -> int:
    """C integer division: truncates toward zero (Python's ``//`` floors)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def ceil_div(a: int, b: int) -> int:
    """ceil(a / b) for integers of any sign, b > 0."""
    return -(-a // b)


def same_valid_axis(size: int, kernel: int, stride: int, pad_type: int) -> tuple[int, int, int]:
    """(out, pad_begin, total padding) of a SAME or VALID axis, as TNN derives them: out =
    ceil(in/stride) or ceil((in-k+1)/stride), begin = total/2 in C division (a negative VALID
    total shifts the window). Convolution and Pooling differ only in their end pad."""
    out = ceil_div(size if pad_type == PAD_SAME else size - kernel + 1, stride)
    total = (out - 1) * stride + kernel - size
    return out, c_div(total, 2), total


def need_4d(x: np.ndarray | tuple[int, ...], what: str) -> tuple[int, int, int, int]:
    """The dims of a 4-D NCHW array (or shape)."""
    shape = tuple(x) if isinstance(x, tuple) else x.shape
    if len(shape) != 4:
        raise ValueError(f"{what} needs a 4-D NCHW input, got shape {shape}")
    n, c, h, w = shape
    return n, c, h, w


def window_input(x_nchw: np.ndarray, pad_top: int, pad_left: int, rows: int, cols: int,
                 fill: float = 0.0) -> np.ndarray:
    """Rows ``[-pad_top, rows - pad_top)`` and columns ``[-pad_left, cols - pad_left)`` of the
    input, with ``fill`` where they fall outside it. Negative pads crop (TNN's VALID windows
    can start inside the input, spec model-format §3.3.1). Returns ``x`` itself when no
    padding or cropping is needed."""
    n, c, h, w = x_nchw.shape
    if pad_top == 0 and pad_left == 0 and rows == h and cols == w:
        return x_nchw
    src_top, src_left = max(-pad_top, 0), max(-pad_left, 0)
    dst_top, dst_left = max(pad_top, 0), max(pad_left, 0)
    copy_h = min(h - src_top, rows - dst_top)
    copy_w = min(w - src_left, cols - dst_left)
    # filling everything first is much faster than filling the border's many short runs
    out = np.full((n, c, rows, cols), fill, dtype=x_nchw.dtype)
    if copy_h > 0 and copy_w > 0:
        out[:, :, dst_top:dst_top + copy_h, dst_left:dst_left + copy_w] = \
            x_nchw[:, :, src_top:src_top + copy_h, src_left:src_left + copy_w]
    return out


def tap(x_window: np.ndarray, row: int, col: int, out_h: int, out_w: int, stride_h: int,
        stride_w: int) -> np.ndarray:
    """View of the element at kernel offset (row, col) of every output position's window."""
    return x_window[:, :, row:row + (out_h - 1) * stride_h + 1:stride_h,
                    col:col + (out_w - 1) * stride_w + 1:stride_w]


class StridePlanes(NamedTuple):
    """A padded NCHW input split into its ``stride_h * stride_w`` phase planes, each flattened
    per channel so that every kernel tap reads one contiguous run per channel.

    Output position (y, x) of tap (row, col) reads plane ``(row % stride_h, col % stride_w)``
    at flat position ``(y + row // stride_h) * row_len + x + col // stride_w``; an output row
    therefore spans ``row_len`` flat positions of which the first ``out_w`` are real (the rest
    are computed and cropped). ``data`` has shape (N, planes, C, rows * row_len).
    """

    data: np.ndarray
    row_len: int
    out_h: int
    out_w: int
    stride_h: int
    stride_w: int

    @property
    def run(self) -> int:
        """Flat length of one tap's run: every output row, garbage columns included."""
        return self.out_h * self.row_len

    def tap(self, row: int, col: int) -> np.ndarray:
        """(N, C, run) view of kernel tap (row, col) — offsets include dilation."""
        plane = (row % self.stride_h) * self.stride_w + col % self.stride_w
        start = (row // self.stride_h) * self.row_len + col // self.stride_w
        return self.data[:, plane, :, start:start + self.run]

    def crop(self, y_flat: np.ndarray) -> np.ndarray:
        """(N, C, run) results -> (N, C, out_h, out_w) view without the garbage columns."""
        n, c = y_flat.shape[:2]
        return y_flat.reshape(n, c, self.out_h, self.row_len)[:, :, :, :self.out_w]


def _phase_range(size: int, pad: int, phase: int, stride: int,
                 length: int) -> tuple[int, int, int]:
    """Plane positions [q0, q1) of one phase whose padded position ``phase + q * stride``
    falls inside the input, and the input position of q0."""
    q0 = max(ceil_div(pad - phase, stride), 0)
    q1 = min(ceil_div(size + pad - phase, stride), length)
    return q0, max(q1, q0), phase + q0 * stride - pad


def stride_planes(x_nchw: np.ndarray, pad_top: int, pad_left: int, out_h: int, out_w: int,
                  stride_h: int, stride_w: int, extent_h: int, extent_w: int) -> StridePlanes:
    """Phase planes of ``x`` for windows of extent (extent_h, extent_w) starting at
    ``out * stride - pad``, with zeros outside the input (one strided copy per plane)."""
    n, c, h, w = x_nchw.shape
    rows = out_h + (extent_h - 1) // stride_h + 1   # one slack row: the last run ends inside
    row_len = out_w + (extent_w - 1) // stride_w
    data = np.zeros((n, stride_h * stride_w, c, rows, row_len), dtype=x_nchw.dtype)
    for a in range(stride_h):
        q0, q1, row0 = _phase_range(h, pad_top, a, stride_h, rows)
        for b in range(stride_w):
            p0, p1, col0 = _phase_range(w, pad_left, b, stride_w, row_len)
            if q1 > q0 and p1 > p0:
                data[:, a * stride_w + b, :, q0:q1, p0:p1] = x_nchw[
                    :, :, row0:row0 + (q1 - q0 - 1) * stride_h + 1:stride_h,
                    col0:col0 + (p1 - p0 - 1) * stride_w + 1:stride_w]
    return StridePlanes(data.reshape(n, stride_h * stride_w, c, rows * row_len), row_len,
                        out_h, out_w, stride_h, stride_w)


def onnx_window(g: "OnnxGraph", x: str, sizes: tuple[int, int], begins: tuple[int, int],
                outs: tuple[int, int], strides: tuple[int, int],
                extents: tuple[int, int]) -> tuple[str, list[int]]:
    """The input and ONNX ``pads`` of a window op whose output position o reads input rows
    ``o * stride - begin`` onwards over ``extent`` rows (and likewise columns), for exactly
    ``out`` outputs: rows the windows never reach are sliced off (TNN's VALID windows may
    start inside the input, and its output sizes need not fill the input), rows beyond the
    input are padding. Returns (input name, [top, left, bottom, right])."""
    starts, ends, pads_begin, pads_end = [], [], [], []
    for size, begin, out, stride, extent in zip(sizes, begins, outs, strides, extents):
        crop_begin = max(-begin, 0)
        last = (out - 1) * stride + extent - begin    # one past the last row read
        crop_end = min(last, size)
        starts.append(crop_begin)
        ends.append(crop_end)
        pads_begin.append(max(begin, 0))
        pads_end.append(max(last - size, 0))
    if starts != [0, 0] or ends != list(sizes):
        x = g.node("Slice", [x, g.ints(starts), g.ints(ends), g.ints([2, 3])])
    return x, pads_begin + pads_end
