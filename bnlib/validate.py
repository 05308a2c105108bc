"""Input checks with messages that say what was wrong and how to fix it.

Everything public in bnlib calls these before touching numpy, so a learner sees
"x must be 2-D (N, D) …" instead of a broadcasting error from deep inside numpy.
Messages go through `_`, so they read in the learner's language (bnlib.set_language).
"""
import numpy as np

from .i18n import _


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
            raise TypeError(_("{name} could not be turned into a numpy array ({error}); "
                              "pass a rectangular np.ndarray of floats").format(name=name, error=e)) from None
    if arr.dtype == object:
        raise TypeError(_("{name} is an object array; pass numbers, e.g. np.asarray({name}, dtype=np.float32)")
                        .format(name=name))
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(_("{name} has dtype {dtype}, but normalisation needs floating point "
                          "(means and variances are fractions); use {name}.astype(np.float32)")
                        .format(name=name, dtype=arr.dtype))
    return arr


def check_finite(x, name="x"):
    if not np.isfinite(x).all():
        bad = "NaN" if np.isnan(x).any() else "inf"
        raise NonFiniteError(_("{name} contains {bad}; check the data or lower the learning rate "
                               "(training that diverges produces NaN/inf)").format(name=name, bad=bad))


def check_ndim(x, min_ndim, shape_hint, name="x"):
    if x.ndim < min_ndim:
        raise ValueError(_("{name} must have at least {ndim} dimensions {hint}, got shape "
                           "{shape}; a single sample needs a batch axis: {name}[None, :]")
                         .format(name=name, ndim=min_ndim, hint=shape_hint, shape=x.shape))


def check_size(n, name):
    """A layer size (features, inputs, outputs, channels): a positive integer."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(_("{name} must be a positive integer (how many features), got {value!r}")
                         .format(name=name, value=n))


def check_dtype(x, layer, dtype):
    """A layer computes in the dtype of its parameters; another dtype would be rounded silently."""
    if x.dtype != dtype:
        raise TypeError(_("{layer} holds {dtype} parameters but got {got} input; convert the input "
                          "with x.astype(np.{dtype}), or build the layer with dtype=np.{got}")
                        .format(layer=repr(layer), dtype=dtype, got=x.dtype))


def check_grad_shape(dy, shape, name="dy"):
    """The upstream gradient of a backward pass must have the forward output's shape."""
    if (dy.shape if isinstance(dy, np.ndarray) else np.shape(dy)) != tuple(shape):   # runs per layer and step
        raise ValueError(_("{name} must have the shape of the forward output {shape}, got {got}; "
                           "pass the gradient of the loss with respect to that output")
                         .format(name=name, shape=tuple(shape), got=np.shape(dy)))


def check_param(p, shape, name, dtype):
    """γ or β: a float array of exactly `shape`, returned in the dtype of the input."""
    p = as_float_array(p, name)
    if p.shape != tuple(shape):
        raise ValueError(_("{name} must have shape {shape} (one value per normalised feature), got {got}")
                         .format(name=name, shape=tuple(shape), got=p.shape))
    return p.astype(dtype, copy=False)


def check_eps(eps):
    if not isinstance(eps, (int, float, np.floating)) or not eps > 0:
        raise ValueError(_("eps must be a positive number (it keeps √(σ² + ε) away from zero), got {value!r}; "
                           "the usual value is 1e-5").format(value=eps))


def check_choice(value, choices, name):
    if value not in choices:
        raise ValueError(_("unknown {name} {value!r}; choose one of {choices}")
                         .format(name=name, value=value, choices=", ".join(map(repr, choices))))
