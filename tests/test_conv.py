"""The convolution and max-pooling pairs: equal to plain loops, gradient-checked in float64,
PyTorch's output size and tie rule, and bnlib's own errors for bad input."""
import numpy as np
import pytest

import bnlib
from bnlib import conv, grad_check, rel_error

TOL = 1e-7   # max relative error, float64


def rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- plain-loop references
def conv_loops(x, w, b, stride, padding):
    """y[n, f, i, j] = b[f] + Σ_c Σ_a Σ_b w[f, c, a, b] · x_pad[n, c, s·i + a, s·j + b], one value at a time."""
    N, C, H, W = x.shape
    F, _, kH, kW = w.shape
    xp = np.zeros((N, C, H + 2 * padding, W + 2 * padding))
    xp[:, :, padding:padding + H, padding:padding + W] = x
    Ho, Wo = (H + 2 * padding - kH) // stride + 1, (W + 2 * padding - kW) // stride + 1
    y = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    total = b[f]
                    for c in range(C):
                        for a in range(kH):
                            for bb in range(kW):
                                total += w[f, c, a, bb] * xp[n, c, stride * i + a, stride * j + bb]
                    y[n, f, i, j] = total
    return y


def conv_backward_loops(dy, x, w, stride, padding):
    """Each output value sends dy back to every input value and weight it multiplied."""
    N, C, H, W = x.shape
    F, _, kH, kW = w.shape
    xp = np.zeros((N, C, H + 2 * padding, W + 2 * padding))
    xp[:, :, padding:padding + H, padding:padding + W] = x
    dxp, dw, db = np.zeros_like(xp), np.zeros_like(w), np.zeros(F)
    for n in range(N):
        for f in range(F):
            for i in range(dy.shape[2]):
                for j in range(dy.shape[3]):
                    g = dy[n, f, i, j]
                    rows, cols = slice(stride * i, stride * i + kH), slice(stride * j, stride * j + kW)
                    dxp[n, :, rows, cols] += g * w[f]
                    dw[f] += g * xp[n, :, rows, cols]
                    db[f] += g
    return dxp[:, :, padding:padding + H, padding:padding + W], dw, db


def pool_loops(x, k):
    N, C, H, W = x.shape
    y = np.zeros((N, C, H // k, W // k))
    dx_of = {}
    for n in range(N):
        for c in range(C):
            for i in range(H // k):
                for j in range(W // k):
                    window = x[n, c, k * i:k * i + k, k * j:k * j + k]
                    y[n, c, i, j] = window.max()
                    a, bb = np.unravel_index(np.argmax(window), window.shape)   # the first maximum
                    dx_of[n, c, i, j] = (n, c, k * i + a, k * j + bb)
    return y, dx_of


# (H, W, kH, kW, stride, padding): same-size 3×3, strides that leave rows over, 1×1, padding > k − 1
GEOMETRIES = [(5, 6, 3, 3, 1, 1), (7, 7, 3, 2, 2, 0), (6, 5, 3, 3, 2, 1), (4, 4, 1, 1, 1, 0),
              (5, 5, 2, 3, 3, 2), (3, 3, 3, 3, 1, 4), (8, 8, 5, 5, 1, 2)]


@pytest.mark.parametrize("H, W, kH, kW, stride, padding", GEOMETRIES)
def test_conv_forward_and_backward_equal_plain_loops(H, W, kH, kW, stride, padding):
    r = rng(1)
    x, w, b = r.standard_normal((2, 3, H, W)), r.standard_normal((4, 3, kH, kW)), r.standard_normal(4)
    y, cache = bnlib.conv2d_forward(x, w, b, stride, padding)
    np.testing.assert_allclose(y, conv_loops(x, w, b, stride, padding), rtol=1e-12, atol=1e-12)
    dy = r.standard_normal(y.shape)
    for got, want in zip(bnlib.conv2d_backward(dy, cache), conv_backward_loops(dy, x, w, stride, padding)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("H, W, kH, kW, stride, padding", GEOMETRIES)
def test_conv_gradients_match_numerical(H, W, kH, kW, stride, padding):
    r = rng(2)
    x, w, b = r.standard_normal((2, 3, H, W)), r.standard_normal((4, 3, kH, kW)), r.standard_normal(4)
    y, cache = bnlib.conv2d_forward(x, w, b, stride, padding)
    dy = r.standard_normal(y.shape)
    dx, dw, db = bnlib.conv2d_backward(dy, cache)
    assert rel_error(dx, grad_check(lambda v: bnlib.conv2d_forward(v, w, b, stride, padding)[0], x, dy)) <= TOL
    assert rel_error(dw, grad_check(lambda v: bnlib.conv2d_forward(x, v, b, stride, padding)[0], w, dy)) <= TOL
    assert rel_error(db, grad_check(lambda v: bnlib.conv2d_forward(x, w, v, stride, padding)[0], b, dy)) <= TOL


def test_output_size_is_pytorchs():
    # ⌊(H + 2p − k)/s⌋ + 1, e.g. 28 → 28 (3×3, padding 1), 28 → 14 (stride 2), 7 → 3 (3×3, stride 2)
    for (H, k, s, p), want in {(28, 3, 1, 1): 28, (28, 3, 2, 1): 14, (7, 3, 2, 0): 3, (5, 5, 1, 0): 1}.items():
        y, _ = bnlib.conv2d_forward(np.ones((1, 1, H, H)), np.ones((2, 1, k, k)), None, s, p)
        assert y.shape == (1, 2, want, want) and conv.output_size(H, k, s, p) == want


def test_convolution_is_a_cross_correlation_not_flipped():
    # PyTorch's conv2d does not flip the filter: a filter with a single 1 at its top-left corner
    # (no padding) reads the top-left pixel of each window
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 0, 0] = 1.0
    y, _ = bnlib.conv2d_forward(x, w)
    np.testing.assert_array_equal(y[0, 0], x[0, 0, :2, :2])


def test_conv_keeps_float32_and_uses_w_in_xs_dtype():
    x = rng(3).random((2, 1, 6, 6)).astype(np.float32)
    w = rng(4).standard_normal((3, 1, 3, 3))                   # float64 filters, as numpy makes them
    y, cache = bnlib.conv2d_forward(x, w, np.zeros(3), padding=1)
    assert y.dtype == np.float32 and y.flags.c_contiguous
    dx, dw, db = bnlib.conv2d_backward(np.ones_like(y), cache)
    assert dx.dtype == dw.dtype == db.dtype == np.float32
    y64, _ = bnlib.conv2d_forward(x.astype(np.float64), w, np.zeros(3), padding=1)
    np.testing.assert_allclose(y, y64, rtol=1e-5, atol=1e-6)


def test_first_layer_skips_dx():
    x, w = rng(5).standard_normal((2, 1, 5, 5)), rng(6).standard_normal((2, 1, 3, 3))
    y, cache = bnlib.conv2d_forward(x, w)
    dx, dw, db = bnlib.conv2d_backward(np.ones_like(y), cache, need_dx=False)
    assert dx is None and dw.shape == w.shape and db.shape == (2,)


def test_im2col_columns_are_the_windows():
    x = rng(7).standard_normal((2, 3, 4, 5))
    cols = conv.im2col(x, 2, 3, stride=1, padding=0)                 # (C·kH·kW, N·Ho·Wo)
    assert cols.shape == (3 * 2 * 3, 2 * 3 * 3)
    n, i, j = 1, 2, 1
    np.testing.assert_array_equal(cols[:, n * 9 + i * 3 + j], x[n, :, i:i + 2, j:j + 3].ravel())


# ---------------------------------------------------------------- max pooling
@pytest.mark.parametrize("shape, k", [((2, 3, 6, 6), 2), ((2, 2, 7, 5), 2), ((1, 2, 9, 9), 3), ((2, 1, 4, 4), 1)])
def test_maxpool_equals_plain_loops_and_its_gradient_checks(shape, k):
    x = rng(8).standard_normal(shape)
    y, cache = bnlib.maxpool2d_forward(x, k)
    want, dx_of = pool_loops(x, k)
    np.testing.assert_array_equal(y, want)
    dy = rng(9).standard_normal(y.shape)
    dx = bnlib.maxpool2d_backward(dy, cache)
    expected = np.zeros_like(x)
    for out, where in dx_of.items():
        expected[where] += dy[out]
    np.testing.assert_array_equal(dx, expected)
    assert rel_error(dx, grad_check(lambda v: bnlib.maxpool2d_forward(v, k)[0], x, dy)) <= TOL


def test_maxpool_sends_the_gradient_to_the_first_of_tied_maxima():
    # after a ReLU many windows are all zeros: PyTorch passes dy to one value, not to each
    x = np.zeros((1, 1, 2, 4))
    x[0, 0, 1, 2:] = [3.0, 3.0]
    y, cache = bnlib.maxpool2d_forward(x, 2)
    dx = bnlib.maxpool2d_backward(np.array([[[[5.0, 7.0]]]]), cache)
    np.testing.assert_array_equal(y, [[[[0.0, 3.0]]]])
    np.testing.assert_array_equal(dx[0, 0], [[5.0, 0, 0, 0], [0, 0, 7.0, 0]])


def test_maxpool_drops_leftover_rows_and_columns():
    x = rng(10).standard_normal((1, 1, 5, 7))
    y, cache = bnlib.maxpool2d_forward(x, 2)
    assert y.shape == (1, 1, 2, 3)
    dx = bnlib.maxpool2d_backward(np.ones_like(y), cache)
    assert dx.shape == x.shape and not dx[0, 0, 4].any() and not dx[0, 0, :, 6].any()


# ---------------------------------------------------------------- bad input
X, WT = np.ones((2, 3, 5, 5)), np.ones((4, 3, 3, 3))


def raises(exc, match, fn, *args, **kwargs):
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)


def test_wrong_channel_count():
    raises(ValueError, r"x has 2 channels.*expect C_in = 3", bnlib.conv2d_forward, np.ones((2, 2, 5, 5)), WT)


def test_kernel_larger_than_the_padded_input():
    raises(ValueError, r"the 7×7 kernel is larger than the padded input 5×5", bnlib.conv2d_forward, X,
           np.ones((4, 3, 7, 7)))
    raises(ValueError, r"padded input 6×6 \(H \+ 2·padding = 6", bnlib.conv2d_forward, np.ones((1, 3, 2, 2)),
           np.ones((1, 3, 7, 7)), None, 1, 2)
    bnlib.conv2d_forward(np.ones((1, 3, 2, 2)), np.ones((1, 3, 6, 6)), None, 1, 2)    # exactly fits: fine
    raises(ValueError, r"pooling window is larger than the input 1×1", bnlib.maxpool2d_forward, np.ones((1, 1, 1, 1)), 2)


@pytest.mark.parametrize("stride", [1.5, 2.0, "2", True, None])
def test_non_integer_stride(stride):
    raises(TypeError, r"stride must be an integer", bnlib.conv2d_forward, X, WT, None, stride)


@pytest.mark.parametrize("kwargs, match", [(dict(stride=0), "stride must be at least 1"),
                                           (dict(padding=-1), "padding must be at least 0"),
                                           (dict(padding=0.5), "padding must be an integer")])
def test_bad_stride_or_padding_values(kwargs, match):
    raises((ValueError, TypeError), match, bnlib.conv2d_forward, X, WT, **kwargs)


def test_three_dimensional_input_gets_both_fixes():
    raises(ValueError, r"x must be 4-D \(N, C, H, W\).*got shape \(3, 5, 5\).*x\[:, None\].*x\[None\]",
           bnlib.conv2d_forward, X[0], WT)
    raises(ValueError, r"must be 4-D.*x\.reshape\(len\(x\), 1, 28, 28\)", bnlib.maxpool2d_forward, np.ones((2, 784)))


def test_bad_filters_bias_and_gradient_shapes():
    raises(ValueError, r"w must be 4-D \(C_out, C_in, kH, kW\)", bnlib.conv2d_forward, X, np.ones((3, 3)))
    raises(ValueError, r"b must have shape \(4,\)", bnlib.conv2d_forward, X, WT, np.ones(3))
    y, cache = bnlib.conv2d_forward(X, WT)
    raises(ValueError, r"dy must have the shape of the forward output \(2, 4, 3, 3\)", bnlib.conv2d_backward,
           y[:, :2], cache)
    p, pcache = bnlib.maxpool2d_forward(X, 2)
    raises(ValueError, r"dy must have the shape of the forward output \(2, 3, 2, 2\)", bnlib.maxpool2d_backward,
           np.ones((2, 3, 3, 3)), pcache)
    raises(TypeError, r"dtype int64", bnlib.conv2d_forward, np.ones((1, 3, 5, 5), dtype=np.int64), WT)
    raises(ValueError, r"contains NaN", bnlib.conv2d_forward, np.full((1, 3, 5, 5), np.nan), WT)
