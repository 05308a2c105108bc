"""Numerical gradients, to check every analytic backward pass.

    ∂f/∂x_i ≈ (f(x − 2h e_i) − 8 f(x − h e_i) + 8 f(x + h e_i) − f(x + 2h e_i)) / 12h

This five-point centred difference has error O(h⁴), so h can stay large enough (1e-4) for
float64 rounding not to matter; the plain (f(x+h) − f(x−h))/2h, error O(h²), is too coarse to
show 1e-7 agreement on gradients as small as batch norm's often are. Each f value is taken
relative to f(x) before summing, so rounding in a large sum does not hide a small change.
"""
import numpy as np

from .i18n import _


def grad_check(f, x, df=None, h=1e-4):
    """Numerical gradient of f at x (x is changed in place and restored).

    If f returns a scalar, returns ∂f/∂x. If f returns an array, pass `df` (same shape as
    that output) to get the gradient of Σ f(x)·df — exactly what backward(df) computes.
    Use float64: in float32 the rounding error of f swamps the difference for small h.
    """
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError(_("grad_check needs x as a floating-point np.ndarray (it perturbs x in place)"))
    if not x.flags.c_contiguous:
        raise ValueError(_("grad_check needs a C-contiguous x (it perturbs x in place): pass x.copy()"))

    f0 = f(x).copy() if df is not None else f(x)

    def change(value):
        return value - f0 if df is None else np.sum((value - f0) * df)

    grad = np.zeros_like(x)
    flat_x, flat_g = x.reshape(-1), grad.reshape(-1)   # views: writing them changes x and grad
    for i in range(flat_x.size):                       # one coordinate at a time, by definition
        old = flat_x[i]
        values = []
        for shift in (-2 * h, -h, h, 2 * h):
            flat_x[i] = old + shift
            values.append(change(f(x)))
        flat_x[i] = old
        f_m2, f_m1, f_p1, f_p2 = values
        flat_g[i] = (f_m2 - 8 * f_m1 + 8 * f_p1 - f_p2) / (12 * h)
    return grad


def rel_error(a, b):
    """max |a − b| / max(1e-8, |a| + |b|): ≈1e-9 or less for a correct float64 backward."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
