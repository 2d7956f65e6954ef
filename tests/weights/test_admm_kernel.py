"""The compiled ADMM (tnnquant/weights/methods/admm_kernel.py, numba) against the NumPy one:
the same codes, scales and step counts, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from tnnquant.weights.methods import admm

pytest.importorskip("numba", reason="numba is not installed (pip install 'tnnquant[fast]')")

F32 = np.float32


def both(w, monkeypatch, iterations=admm.ADMM_ITERATIONS):
    compiled = admm.admm_solve(w, iterations)
    with monkeypatch.context() as m:
        m.setattr(admm, "_compiled", lambda: None)
        plain = admm.admm_solve(w, iterations)
    return compiled, plain


def assert_same_bits(a, b):
    for got, ref in zip(a, b):
        assert got.dtype == ref.dtype and got.shape == ref.shape
        assert np.array_equal(got.view(np.uint8), ref.view(np.uint8))


def test_the_solver_is_compiled_when_numba_is_installed():
    assert admm._compiled() is not None


@pytest.mark.parametrize("k", [1, 3, 16, 17, 75, 1152])
def test_compiled_admm_equals_numpy_admm(monkeypatch, k):
    rng = np.random.default_rng(k)
    w = (rng.standard_normal((300, k)) * rng.lognormal(0, 2, (300, 1))).astype(F32)
    w[0] = 0
    w[1, 0] = 1e3  # one outlier
    w[2] = np.round(w[2] * 4) / 4  # values on a coarse grid: exact ties in RHAZ
    w[3] = 3e-40  # subnormal
    for iterations in (1, 7, admm.ADMM_ITERATIONS):
        compiled, plain = both(w, monkeypatch, iterations)
        assert_same_bits(compiled, plain)
    assert (plain[2] < admm.ADMM_ITERATIONS).any()   # rows stopped at their fixed point


def test_compiled_admm_equals_numpy_admm_on_inf_and_nan(monkeypatch):
    w = np.array([[np.inf, 1.0, -2.0], [np.nan, 0.5, 0.25], [-np.inf, np.inf, 0.0]], F32)
    with np.errstate(all="ignore"):
        compiled, plain = both(w, monkeypatch)
    assert_same_bits(compiled, plain)
