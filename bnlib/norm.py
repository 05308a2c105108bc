"""Batch, layer, instance and group normalisation as one operation over chosen axes.

Every member of the family computes, over a set of axes A of x,

    μ  = mean_A(x)
    σ² = mean_A((x − μ)²)              (biased: divide by the count m, as PyTorch does)
    x̂  = (x − μ) / √(σ² + ε)
    y  = γ x̂ + β                       (γ, β broadcast along the feature axes)

and the members differ only in A (and in the shape of γ, β):

    batch norm     x (N, D) or (N, C, ...)  A = N and the trailing axes   γ: (C,)
    layer norm     x (N, ...)               A = every axis but N          γ: x.shape[1:]
    instance norm  x (N, C, ...)            A = the trailing axes         γ: (C,)
    group norm     x (N, C, ...)            A = C/G channels + trailing   γ: (C,)

Functions come in cs231n-style pairs: `*_forward(x, ...) -> (y, cache)` and
`*_backward(dy, cache) -> (dx, dγ, dβ)`.
"""
import math
from dataclasses import dataclass

import numpy as np

from .i18n import N_, _
from .validate import as_float_array, check_eps, check_finite, check_grad_shape, check_ndim, check_param


# --------------------------------------------------------------------------- the shared core
@dataclass
class NormCache:
    """What the backward pass needs: x̂ and 1/√(σ²+ε), plus how γ was broadcast."""
    x_hat: np.ndarray        # (x − μ)/√(σ² + ε), in the *statistics* layout (see group norm)
    mean: np.ndarray         # μ, keepdims over the statistics axes
    var: np.ndarray          # σ² (biased), keepdims over the statistics axes
    inv_std: np.ndarray      # 1/√(σ² + ε), keepdims over the statistics axes
    gamma: np.ndarray        # γ reshaped to broadcast against x
    stat_axes: tuple         # axes the mean and variance run over
    param_axes: tuple        # axes dγ and dβ sum over
    param_shape: tuple       # γ's own shape, for returning dγ, dβ
    x_shape: tuple           # shape of x (group norm works on a reshaped view)


def count(x, axes):
    """m: how many values each mean over `axes` averages."""
    return math.prod(x.shape[a] for a in axes)


def mean(x, axes):
    """mean over `axes`, keepdims. (np.mean's Python wrapper costs twice the sum at these sizes.)"""
    return x.sum(axis=axes, keepdims=True) * (1.0 / count(x, axes))


def standardize(x, axes, eps):
    """x̂ = (x − μ)/√(σ² + ε) over `axes`; returns (x̂, μ, σ², 1/√(σ² + ε)), keepdims."""
    mu = mean(x, axes)
    xc = x - mu
    var = mean(xc * xc, axes)                  # biased; reuses x − μ rather than calling np.var
    inv_std = 1.0 / np.sqrt(var + eps)         # one division per feature, not one per value
    return xc * inv_std, mu, var, inv_std


def standardize_backward(dx_hat, x_hat, inv_std, axes):
    """Closed-form gradient of x̂ = (x − μ)/√(σ² + ε) with respect to x.

        dx = (dx̂ − mean_A(dx̂) − x̂ · mean_A(dx̂ · x̂)) / √(σ² + ε)
    """
    return (dx_hat - mean(dx_hat, axes) - x_hat * mean(dx_hat * x_hat, axes)) * inv_std


def normalize_forward(x, gamma, beta, stat_axes, param_axes, eps=1e-5, group_shape=None):
    """Normalise x over `stat_axes`, then y = γ x̂ + β (γ, β constant along `param_axes`).

    `group_shape`, if given, is the shape x is viewed as while computing statistics
    (group norm splits C into (G, C/G)). Inputs are assumed validated.
    """
    x_shape = x.shape
    param_shape = gamma.shape
    xs = x.reshape(group_shape) if group_shape is not None else x
    x_hat, mu, var, inv_std = standardize(xs, stat_axes, eps)
    x_hat_full = x_hat.reshape(x_shape)
    bshape = tuple(1 if a in param_axes else n for a, n in enumerate(x_shape))
    g = gamma.reshape(bshape)
    y = g * x_hat_full + beta.reshape(bshape)
    cache = NormCache(x_hat, mu, var, inv_std, g, stat_axes, param_axes, param_shape, x_shape)
    return y, cache


def normalize_backward(dy, cache):
    """Gradients of y = γ x̂ + β: returns (dx, dγ, dβ)."""
    c = cache
    check_grad_shape(dy, c.x_shape)
    x_hat_full = c.x_hat.reshape(c.x_shape)
    dbeta = dy.sum(axis=c.param_axes).reshape(c.param_shape)
    dgamma = np.sum(dy * x_hat_full, axis=c.param_axes).reshape(c.param_shape)
    dx_hat = (dy * c.gamma).reshape(c.x_hat.shape)
    dx = standardize_backward(dx_hat, c.x_hat, c.inv_std, c.stat_axes)
    return dx.reshape(c.x_shape), dgamma, dbeta


# --------------------------------------------------------------------------- input checks
def _prepare(x, gamma, beta, eps, channels_shape, min_ndim, shape_hint):
    x = as_float_array(x)
    check_ndim(x, min_ndim, shape_hint)
    check_finite(x)
    check_eps(eps)
    gamma = check_param(gamma, channels_shape(x), "gamma", x.dtype)
    beta = check_param(beta, channels_shape(x), "beta", x.dtype)
    return x, gamma, beta


def check_batch_size(x, axes):
    _check_stat_count(x, axes, N_("batch norm in training mode computes the variance"),
                      N_("Use a batch of at least 2 samples (for images: at least 2 values per channel, "
                         "N·H·W ≥ 2), eval mode (running statistics), or LayerNorm, which needs no batch"))


def _check_stat_count(x, axes, what, fix):
    """what, fix: texts marked with N_, translated only when the check fails (it runs every step)."""
    if count(x, axes) < 2:
        raise ValueError(_("{what} over a single value: the variance of one number is 0, so x̂ would "
                           "be 0 for every input (shape {shape}). {fix}")
                         .format(what=_(what), shape=x.shape, fix=_(fix)))


# --------------------------------------------------------------------------- batch norm
def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Batch normalisation in training mode (statistics of this batch).

    x: (N, D), or (N, C, ...) for spatial batch norm (statistics per channel over N and
    the trailing axes). gamma, beta: (D,) or (C,).

        μ_B = (1/m) Σ x,   σ²_B = (1/m) Σ (x − μ_B)²,   x̂ = (x − μ_B)/√(σ²_B + ε),   y = γ x̂ + β

    Returns (y, cache); y has x's shape and dtype.
    """
    x, gamma, beta = _prepare(x, gamma, beta, eps, lambda x: (x.shape[1],), 2, "(N, D) or (N, C, ...)")
    axes = (0,) + tuple(range(2, x.ndim))
    check_batch_size(x, axes)
    return normalize_forward(x, gamma, beta, axes, axes, eps)


def batchnorm_backward(dy, cache):
    """Closed-form backward of `batchnorm_forward`: returns (dx, dγ, dβ).

        dβ = Σ dy,   dγ = Σ dy · x̂                                  (sums over the m batch values)
        dx = (γ/√(σ²+ε)) · (dy − mean(dy) − x̂ · mean(dy · x̂))
           = (γ/√(σ²+ε)) · (dy − (dβ + x̂ · dγ)/m)                   (the same, reusing dβ and dγ)
    """
    c = cache
    check_grad_shape(dy, c.x_shape)
    axes = c.stat_axes
    dbeta = dy.sum(axis=axes, keepdims=True)
    dgamma = (dy * c.x_hat).sum(axis=axes, keepdims=True)
    dx = (c.gamma * c.inv_std) * (dy - (dbeta + c.x_hat * dgamma) * (1.0 / count(dy, axes)))
    return dx, dgamma.reshape(c.param_shape), dbeta.reshape(c.param_shape)


def batchnorm_backward_graph(dy, cache):
    """The same gradients as `batchnorm_backward`, step by step through the computational graph.

    Forward, split into elementary nodes (means over the m values of each feature):
        xc = x − μ          var = mean(xc²)        inv = 1/√(var + ε)
        x̂  = xc · inv       y   = γ x̂ + β
    Each line below is the chain rule through one node, last node first. Slower than the
    closed form (more temporaries), kept because it shows where the formula comes from.
    """
    c = cache
    check_grad_shape(dy, c.x_shape)
    axes = c.stat_axes
    m = count(dy, axes)
    x_hat, inv = c.x_hat, c.inv_std
    dbeta = dy.sum(axis=axes).reshape(c.param_shape)                  # y = … + β
    dgamma = np.sum(dy * x_hat, axis=axes).reshape(c.param_shape)    # y = γ x̂ + …
    dx_hat = dy * c.gamma
    xc = x_hat / inv                                                  # recover x − μ
    dinv = np.sum(dx_hat * xc, axis=axes, keepdims=True)              # x̂ = xc · inv
    dxc = dx_hat * inv
    dvar = dinv * -0.5 * inv ** 3                                     # inv = (var + ε)^(−1/2)
    dxc = dxc + dvar * 2.0 * xc / m                                   # var = mean(xc²)
    dmu = -np.sum(dxc, axis=axes, keepdims=True)                      # xc = x − μ
    dx = dxc + dmu / m                                                # μ = mean(x)
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------- layer norm
def layernorm_forward(x, gamma, beta, eps=1e-5):
    """Layer normalisation: statistics of each sample over all its features.

    x: (N, D) or (N, C, ...); gamma, beta: x.shape[1:] (PyTorch's normalized_shape).
    Identical in training and evaluation: no batch statistics, no running averages.
    """
    x, gamma, beta = _prepare(x, gamma, beta, eps, lambda x: x.shape[1:], 2, "(N, D) or (N, C, ...)")
    axes = tuple(range(1, x.ndim))
    _check_stat_count(x, axes, N_("layer norm computes each sample's variance"),
                      N_("Give each sample at least 2 features to normalize over"))
    return normalize_forward(x, gamma, beta, axes, (0,), eps)


def layernorm_backward(dy, cache):
    """Backward of `layernorm_forward`: returns (dx, dγ, dβ)."""
    return normalize_backward(dy, cache)


# --------------------------------------------------------------------------- instance norm
def instancenorm_forward(x, gamma, beta, eps=1e-5):
    """Instance normalisation: statistics per sample and per channel over the spatial axes.

    x: (N, C, L) or (N, C, H, W); gamma, beta: (C,).
    """
    x, gamma, beta = _prepare(x, gamma, beta, eps, lambda x: (x.shape[1],), 3, "(N, C, H, W) or (N, C, L)")
    axes = tuple(range(2, x.ndim))
    _check_stat_count(x, axes, N_("instance norm computes the variance of each channel's spatial values"),
                      N_("Give each channel at least 2 positions (H·W ≥ 2), or use batch norm"))
    return normalize_forward(x, gamma, beta, axes, (0,) + axes, eps)


def instancenorm_backward(dy, cache):
    """Backward of `instancenorm_forward`: returns (dx, dγ, dβ)."""
    return normalize_backward(dy, cache)


# --------------------------------------------------------------------------- group norm
def groupnorm_forward(x, gamma, beta, groups, eps=1e-5):
    """Group normalisation: channels split into `groups` groups; statistics per sample and group.

    x: (N, C) or (N, C, ...); gamma, beta: (C,). groups = 1 is layer norm with per-channel
    γ, β; groups = C is instance norm.
    """
    x, gamma, beta = _prepare(x, gamma, beta, eps, lambda x: (x.shape[1],), 2, "(N, C) or (N, C, ...)")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise TypeError(_("groups must be a positive integer, got {value!r}").format(value=groups))
    N, C = x.shape[:2]
    if C % groups:
        divisors = [g for g in range(1, C + 1) if C % g == 0]
        raise ValueError(_("groups={groups} does not divide the {channels} channels; choose one of {divisors}")
                         .format(groups=groups, channels=C, divisors=divisors))
    group_shape = (N, groups, C // groups) + x.shape[2:]
    stat_axes = tuple(range(2, len(group_shape)))
    _check_stat_count(x.reshape(group_shape), stat_axes, N_("group norm computes each group's variance"),
                      N_("Use fewer groups, so that each group holds at least 2 values"))
    param_axes = (0,) + tuple(range(2, x.ndim))
    return normalize_forward(x, gamma, beta, stat_axes, param_axes, eps, group_shape)


def groupnorm_backward(dy, cache):
    """Backward of `groupnorm_forward`: returns (dx, dγ, dβ)."""
    return normalize_backward(dy, cache)
