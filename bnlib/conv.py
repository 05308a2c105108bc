"""2-D convolution and max pooling as functional pairs, vectorized with im2col.

A convolutional layer slides each of its C_out filters, of shape (C_in, kH, kW), over the image
and takes a weighted sum at every position (PyTorch's Conv2d; strictly a cross-correlation —
the filter is not flipped):

    y[n, f, i, j] = b[f] + Σ_c Σ_a Σ_b  w[f, c, a, b] · x_pad[n, c, s·i + a, s·j + b]

x: (N, C_in, H, W), w: (C_out, C_in, kH, kW), b: (C_out,), stride s, zero padding p
(x_pad is x with p zeros added on every side), and the output has PyTorch's size

    H_out = ⌊(H + 2p − kH) / s⌋ + 1,    W_out = ⌊(W + 2p − kW) / s⌋ + 1.

im2col ("image to columns") turns the whole sum into ONE matrix product: every window that a
filter meets is copied out as one column of a matrix `cols` (C_in·kH·kW rows, N·H_out·W_out
columns, made with numpy's sliding_window_view: no Python loop over samples, channels or
positions), the filters are a (C_out, C_in·kH·kW) matrix, and y = w @ cols + b. The backward
pass is two more products: dw = dy @ colsᵀ, and dx — itself a convolution, of dy with the
filters flipped (see conv2d_backward).

Max pooling with a k × k window and stride k (PyTorch's MaxPool2d(k)) keeps the largest value of
each window: y[n, c, i, j] = max over a, b < k of x[n, c, k·i + a, k·j + b]. Rows or columns left
over when H or W is not a multiple of k are dropped, as in PyTorch.

Pairs in the cs231n style: `*_forward(...) -> (y, cache)`, `*_backward(dy, cache) -> gradients`.
"""
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .i18n import _
from .validate import as_float_array, check_finite, check_grad_shape


# --------------------------------------------------------------------------- input checks
def check_integer(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(_("{name} must be an integer, got {value!r} ({kind}); for example {name}=1")
                        .format(name=name, value=value, kind=type(value).__name__))
    if value < minimum:
        raise ValueError(_("{name} must be at least {minimum}, got {value}")
                         .format(name=name, minimum=minimum, value=value))


def check_images(x, name="x"):
    """x as a float array of shape (N, C, H, W), with a clear error for anything else."""
    x = as_float_array(x, name)
    if x.ndim != 4:
        if x.ndim == 3:
            hint = _("for N one-channel images (N, H, W) add the channel axis: {name}[:, None]; for one "
                     "image (C, H, W) add the batch axis: {name}[None]").format(name=name)
        else:
            hint = _("flat pixels need reshaping, e.g. {name}.reshape(len({name}), 1, 28, 28)").format(name=name)
        raise ValueError(_("{name} must be 4-D (N, C, H, W): N images of C channels of H × W pixels, "
                           "got shape {shape}; {hint}").format(name=name, shape=x.shape, hint=hint))
    return x


def check_window(H, W, kH, kW, padding, pooling=False):
    if kH <= H + 2 * padding and kW <= W + 2 * padding:
        return
    if pooling:
        raise ValueError(_("the {kh}×{kw} pooling window is larger than the input {h}×{w}; use a smaller "
                           "kernel_size, or pool fewer times").format(kh=kH, kw=kW, h=H, w=W))
    raise ValueError(_("the {kh}×{kw} kernel is larger than the padded input {h}×{w} (H + 2·padding = {h}, "
                       "W + 2·padding = {w}); use a smaller kernel or more padding")
                     .format(kh=kH, kw=kW, h=H + 2 * padding, w=W + 2 * padding))


def output_size(size, kernel, stride=1, padding=0):
    """⌊(size + 2·padding − kernel) / stride⌋ + 1: how many positions a window takes along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


# --------------------------------------------------------------------------- convolution
@dataclass
class ConvCache:
    """What the backward pass needs: the im2col matrix, the filters and the geometry."""
    cols: np.ndarray         # (C_in·kH·kW, N·H_out·W_out): every window the filters met, one per column
    w: np.ndarray            # (C_out, C_in, kH, kW)
    x_shape: tuple           # (N, C_in, H, W)
    stride: int
    padding: int


def im2col(x, kH, kW, stride=1, padding=0):
    """Every kH × kW window of x (N, C, H, W) as one column: (C·kH·kW, N·H_out·W_out).

    Column n·H_out·W_out + i·W_out + j holds window (i, j) of image n, its values ordered
    (c, a, b) like w[f].ravel(). sliding_window_view makes the windows as a view (no copy); the
    one copy is the final reshape. (Windows as columns, not rows: the copy then runs along the
    image rows, which was measured 3–4× faster than the row layout.)
    """
    N, C, H, W = x.shape
    if padding:                                    # (np.pad does the same, at 20× the overhead)
        padded = np.zeros((N, C, H + 2 * padding, W + 2 * padding), dtype=x.dtype)
        padded[:, :, padding:padding + H, padding:padding + W] = x
        x = padded
    windows = sliding_window_view(x, (kH, kW), axis=(2, 3))[:, :, ::stride, ::stride]   # (N, C, Ho, Wo, kH, kW)
    Ho, Wo = windows.shape[2:4]
    return windows.transpose(1, 4, 5, 0, 2, 3).reshape(C * kH * kW, N * Ho * Wo)


def convolve(x, w, b, stride, padding):
    """The convolution of `conv2d_forward`, inputs assumed validated (layers check their own): (y, cache)."""
    N = x.shape[0]
    F, C, kH, kW = w.shape
    Ho, Wo = output_size(x.shape[2], kH, stride, padding), output_size(x.shape[3], kW, stride, padding)
    cols = im2col(x, kH, kW, stride, padding)
    y = w.reshape(F, C * kH * kW) @ cols                           # the one GEMM: (F, N·Ho·Wo)
    if b is not None:
        y += b[:, None]
    # columns are (n, i, j): bring n in front for PyTorch's (N, C_out, H_out, W_out)
    y = np.ascontiguousarray(y.reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3))
    return y, ConvCache(cols, w, x.shape, stride, padding)


def conv2d_forward(x, w, b=None, stride=1, padding=0):
    """2-D convolution (PyTorch's conv2d): returns (y, cache).

    x: (N, C_in, H, W); w: (C_out, C_in, kH, kW); b: (C_out,) or None; stride, padding: integers.
        y[n, f, i, j] = b[f] + Σ_c Σ_a Σ_b  w[f, c, a, b] · x_pad[n, c, s·i + a, s·j + b]
    y: (N, C_out, H_out, W_out) with H_out = ⌊(H + 2p − kH)/s⌋ + 1 (W_out likewise), in x's dtype
    (w and b are used in x's dtype, as γ and β are in the norm functions).
    """
    x = check_images(x)
    w = as_float_array(w, "w")
    if w.ndim != 4:
        raise ValueError(_("w must be 4-D (C_out, C_in, kH, kW): one filter of C_in × kH × kW weights "
                           "per output channel, got shape {shape}; one 3×3 filter for one-channel "
                           "images is w of shape (1, 1, 3, 3)").format(shape=w.shape))
    if x.shape[1] != w.shape[1]:
        raise ValueError(_("x has {got} channels (axis 1 of its shape {shape}) but the filters w of shape "
                           "{wshape} expect C_in = {want}; check the channel counts of consecutive layers")
                         .format(got=x.shape[1], shape=x.shape, wshape=w.shape, want=w.shape[1]))
    check_integer(stride, "stride", 1)
    check_integer(padding, "padding", 0)
    check_window(x.shape[2], x.shape[3], w.shape[2], w.shape[3], padding)
    check_finite(x)
    w = w.astype(x.dtype, copy=False)
    if b is not None:
        b = as_float_array(b, "b")
        if b.shape != (w.shape[0],):
            raise ValueError(_("b must have shape ({n},) (one bias per output channel), got {got}")
                             .format(n=w.shape[0], got=b.shape))
        b = b.astype(x.dtype, copy=False)
    return convolve(x, w, b, stride, padding)


def convolve_backward(dy, c, need_dx=True):
    """The gradients of `conv2d_backward`, dy assumed validated: (dx or None, dw, db)."""
    F, C, kH, kW = c.w.shape
    N, H, W = c.x_shape[0], c.x_shape[2], c.x_shape[3]
    Ho, Wo = dy.shape[2:]
    dy_cols = dy.transpose(1, 0, 2, 3).reshape(F, N * Ho * Wo)      # columns (n, i, j), like cols
    db = dy_cols.sum(axis=1)
    dw = (dy_cols @ c.cols.T).reshape(c.w.shape)                   # one GEMM: (F, C·kH·kW)
    if not need_dx:
        return None, dw, db
    # dx is itself a convolution: of dy, with stride − 1 zeros put between its values and kH − 1
    # zeros around them, by the filters flipped in both directions with C_in and C_out swapped.
    s, p = c.stride, c.padding
    spread = np.zeros((N, F, (Ho - 1) * s + 2 * kH - 1, (Wo - 1) * s + 2 * kW - 1), dtype=dy.dtype)
    spread[:, :, kH - 1:kH - 1 + (Ho - 1) * s + 1:s, kW - 1:kW - 1 + (Wo - 1) * s + 1:s] = dy
    flipped = c.w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)          # (C, F, kH, kW)
    dx_pad, _cache = convolve(spread, np.ascontiguousarray(flipped), None, 1, 0)   # (N, C, (Ho−1)s + kH, …)
    # the padded input had H + 2p rows; the last ones no window reached get no gradient
    full = np.zeros((N, C, H + 2 * p, W + 2 * p), dtype=dy.dtype)
    full[:, :, :dx_pad.shape[2], :dx_pad.shape[3]] = dx_pad
    return full[:, :, p:p + H, p:p + W], dw, db


def conv2d_backward(dy, cache, need_dx=True):
    """Backward of `conv2d_forward`: returns (dx, dw, db) (dx is None when need_dx=False).

    dy: (N, C_out, H_out, W_out). With cols and the filter matrix of the forward pass,
        db[f] = Σ_n Σ_i Σ_j dy[n, f, i, j]
        dw    = dy @ colsᵀ                    (each weight: Σ of dy × the input value it met)
        dx    = the convolution of dy (zeros between its values for stride > 1, padded by k − 1)
                with every filter flipped in both directions, C_in and C_out swapped
    dx: (N, C_in, H, W); dw: (C_out, C_in, kH, kW); db: (C_out,).
    """
    c = cache
    N, H, W = c.x_shape[0], c.x_shape[2], c.x_shape[3]
    F, kH, kW = c.w.shape[0], c.w.shape[2], c.w.shape[3]
    shape = (N, F, output_size(H, kH, c.stride, c.padding), output_size(W, kW, c.stride, c.padding))
    check_grad_shape(dy, shape)
    dy = as_float_array(dy, "dy")
    return convolve_backward(dy, c, need_dx)


# --------------------------------------------------------------------------- max pooling
@dataclass
class PoolCache:
    """Which value of each window was its maximum, and the geometry."""
    first_max: np.ndarray    # (k·k, N, C, H_out, W_out) booleans: True at each window's (first) maximum
    x_shape: tuple
    kernel_size: int


def max_pool(x, k):
    """The pooling of `maxpool2d_forward`, inputs assumed validated: (y, cache)."""
    N, C, H, W = x.shape
    Ho, Wo = H // k, W // k
    # the k·k values of every window along a new first axis: (k·k, N, C, Ho, Wo)
    blocks = x[:, :, :Ho * k, :Wo * k].reshape(N, C, Ho, k, Wo, k)
    windows = blocks.transpose(3, 5, 0, 1, 2, 4).reshape(k * k, N, C, Ho, Wo)
    y = windows.max(axis=0)
    # mark the FIRST maximum of each window (PyTorch's choice when values tie, e.g. zeros after a
    # ReLU): among the values equal to the maximum, the one with the largest score k·k − offset
    is_max = windows == y
    score = is_max * np.arange(k * k, 0, -1, dtype=np.int8).reshape(-1, 1, 1, 1, 1)
    return y, PoolCache(score == score.max(axis=0), x.shape, k)


def max_pool_backward(dy, c):
    """The gradient of `maxpool2d_backward`, dy assumed validated: dx."""
    N, C, H, W = c.x_shape
    k = c.kernel_size
    Ho, Wo = dy.shape[2:]
    dx = np.zeros(c.x_shape, dtype=dy.dtype) if (H % k or W % k) else np.empty(c.x_shape, dtype=dy.dtype)
    # all of dy to each window's maximum, 0 to the rest (and to rows/columns pooling dropped),
    # written straight into dx seen as (k, k, N, C, Ho, Wo): no temporary array
    windows_of_dx = dx[:, :, :Ho * k, :Wo * k].reshape(N, C, Ho, k, Wo, k).transpose(3, 5, 0, 1, 2, 4)
    np.multiply(c.first_max.reshape(k, k, N, C, Ho, Wo), dy, out=windows_of_dx)
    return dx


def maxpool2d_forward(x, kernel_size=2):
    """Max pooling over non-overlapping k × k windows (stride k): returns (y, cache).

    x: (N, C, H, W);  y[n, c, i, j] = max over a, b < k of x[n, c, k·i + a, k·j + b];
    y: (N, C, ⌊H/k⌋, ⌊W/k⌋). Each channel of each image is pooled on its own.
    """
    x = check_images(x)
    check_integer(kernel_size, "kernel_size", 1)
    check_window(x.shape[2], x.shape[3], kernel_size, kernel_size, 0, pooling=True)
    check_finite(x)
    return max_pool(x, kernel_size)


def maxpool2d_backward(dy, cache):
    """Backward of `maxpool2d_forward`: dx (N, C, H, W).

    Each window passes dy to its maximum (the first one if several are equal, as PyTorch does)
    and 0 to its other values: dx[n, c, k·i + a, k·j + b] = dy[n, c, i, j] where (a, b) is the
    argmax of window (i, j), else 0.
    """
    c = cache
    N, C, H, W = c.x_shape
    check_grad_shape(dy, (N, C, H // c.kernel_size, W // c.kernel_size))
    dy = as_float_array(dy, "dy")
    return max_pool_backward(dy, c)
