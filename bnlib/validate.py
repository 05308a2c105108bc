"""Input checks with messages that say what was wrong and how to fix it.

Everything public in bnlib calls these before touching numpy, so a learner sees
"x must be 2-D (N, D) …" instead of a broadcasting error from deep inside numpy.
"""
import numpy as np


class NonFiniteError(ValueError):
    """An array held NaN or inf. `bnlib.train` catches it to report a diverged run."""


def as_float_array(x, name="x"):
    """Return `x` as a floating-point ndarray (float32/float64 kept as they are)."""
    if type(x) is np.ndarray and x.dtype.kind == "f":
        return x                                   # the common case, kept cheap: it runs every step
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as e:  # ragged lists and the like
            raise TypeError(f"{name} could not be turned into a numpy array ({e}); "
                            f"pass a rectangular np.ndarray of floats") from None
    if arr.dtype == object:
        raise TypeError(f"{name} is an object array; pass numbers, e.g. np.asarray({name}, dtype=np.float32)")
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{name} has dtype {arr.dtype}, but normalisation needs floating point "
                        f"(means and variances are fractions); use {name}.astype(np.float32)")
    return arr


def check_finite(x, name="x"):
    if not np.isfinite(x).all():
        bad = "NaN" if np.isnan(x).any() else "inf"
        raise NonFiniteError(f"{name} contains {bad}; check the data or lower the learning rate "
                             f"(training that diverges produces NaN/inf)")


def check_ndim(x, min_ndim, shape_hint, name="x"):
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions {shape_hint}, got shape "
                         f"{x.shape}; a single sample needs a batch axis: {name}[None, :]")


def check_param(p, shape, name, dtype):
    """γ or β: a float array of exactly `shape`, returned in the dtype of the input."""
    p = as_float_array(p, name)
    if p.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} (one value per normalised feature), "
                         f"got {p.shape}")
    return p.astype(dtype, copy=False)


def check_eps(eps):
    if not isinstance(eps, (int, float, np.floating)) or not eps > 0:
        raise ValueError(f"eps must be a positive number (it keeps √(σ² + ε) away from zero), got {eps!r}; "
                         f"the usual value is 1e-5")


def check_choice(value, choices, name):
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(repr, choices))}")
