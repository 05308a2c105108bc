"""Numerical gradients, to check every analytic backward pass.

    ∂f/∂x_i ≈ (f(x + h e_i) − f(x − h e_i)) / 2h        (centred difference, error O(h²))
"""
import numpy as np


def grad_check(f, x, df=None, h=1e-5):
    """Numerical gradient of f at x (x is changed in place and restored).

    If f returns a scalar, returns ∂f/∂x. If f returns an array, pass `df` (same shape as
    that output) to get the gradient of Σ f(x)·df — exactly what backward(df) computes.
    Use float64: in float32 the rounding error of f swamps the difference for small h.
    """
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError("grad_check needs x as a floating-point np.ndarray (it perturbs x in place)")
    grad = np.zeros_like(x)
    flat_x, flat_g = x.reshape(-1), grad.reshape(-1)   # views: writing them changes x and grad
    for i in range(flat_x.size):                       # one coordinate at a time, by definition
        old = flat_x[i]
        flat_x[i] = old + h
        plus = f(x) if df is None else np.sum(f(x) * df)
        flat_x[i] = old - h
        minus = f(x) if df is None else np.sum(f(x) * df)
        flat_x[i] = old
        flat_g[i] = (plus - minus) / (2 * h)
    return grad


def rel_error(a, b):
    """max |a − b| / max(1e-8, |a| + |b|): ≈1e-9 or less for a correct float64 backward."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
