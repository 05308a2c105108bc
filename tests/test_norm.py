"""The normalisation family: gradient checks, invariants, dtypes."""
import numpy as np
import pytest

import bnlib
from bnlib import grad_check, rel_error

TOL = 1e-7   # cs231n-style max relative error, float64


def rng(seed=0):
    return np.random.default_rng(seed)


# (name, forward, backward, x shape, γ shape, extra args)
PAIRS = [
    ("batch 2-D", bnlib.batchnorm_forward, bnlib.batchnorm_backward, (8, 5), (5,), ()),
    ("batch 2-D graph", bnlib.batchnorm_forward, bnlib.batchnorm_backward_graph, (8, 5), (5,), ()),
    ("batch spatial", bnlib.batchnorm_forward, bnlib.batchnorm_backward, (4, 3, 3, 2), (3,), ()),
    ("batch spatial graph", bnlib.batchnorm_forward, bnlib.batchnorm_backward_graph, (4, 3, 3, 2), (3,), ()),
    ("batch 1-D signal", bnlib.batchnorm_forward, bnlib.batchnorm_backward, (3, 2, 5), (2,), ()),
    ("layer 2-D", bnlib.layernorm_forward, bnlib.layernorm_backward, (6, 7), (7,), ()),
    ("layer spatial", bnlib.layernorm_forward, bnlib.layernorm_backward, (3, 2, 3, 2), (2, 3, 2), ()),
    ("instance", bnlib.instancenorm_forward, bnlib.instancenorm_backward, (3, 4, 3, 2), (4,), ()),
    ("group", bnlib.groupnorm_forward, bnlib.groupnorm_backward, (3, 6, 2, 2), (6,), (3,)),
    ("group 2-D", bnlib.groupnorm_forward, bnlib.groupnorm_backward, (5, 8), (8,), (2,)),
]


@pytest.mark.parametrize("name, fwd, bwd, xshape, pshape, extra", PAIRS, ids=[p[0] for p in PAIRS])
def test_gradients_match_numerical(name, fwd, bwd, xshape, pshape, extra):
    r = rng(1)
    x = r.standard_normal(xshape) * 3 + 1
    gamma, beta = r.standard_normal(pshape), r.standard_normal(pshape)
    dy = r.standard_normal(xshape)
    y, cache = fwd(x, gamma, beta, *extra)
    dx, dgamma, dbeta = bwd(dy, cache)
    assert rel_error(dx, grad_check(lambda v: fwd(v, gamma, beta, *extra)[0], x, dy)) <= TOL
    assert rel_error(dgamma, grad_check(lambda v: fwd(x, v, beta, *extra)[0], gamma, dy)) <= TOL
    assert rel_error(dbeta, grad_check(lambda v: fwd(x, gamma, v, *extra)[0], beta, dy)) <= TOL


def test_graph_and_closed_form_agree():
    r = rng(2)
    x = r.standard_normal((32, 10))
    _, cache = bnlib.batchnorm_forward(x, r.standard_normal(10), r.standard_normal(10))
    dy = r.standard_normal(x.shape)
    for a, b in zip(bnlib.batchnorm_backward(dy, cache), bnlib.batchnorm_backward_graph(dy, cache)):
        assert rel_error(a, b) < 1e-10


def test_batchnorm_training_output_has_zero_mean_unit_variance():
    x = rng(3).standard_normal((200, 6)) * np.arange(1, 7) * 10 + 50
    y, _ = bnlib.batchnorm_forward(x, np.ones(6), np.zeros(6))
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    # biased variance, and ε inside the root shrinks it by σ²/(σ²+ε)
    var = x.var(axis=0)
    np.testing.assert_allclose(y.var(axis=0), var / (var + 1e-5), rtol=1e-12)


def test_gamma_and_beta_scale_and_shift():
    x = rng(4).standard_normal((50, 3))
    gamma, beta = np.array([2.0, 0.5, -1.0]), np.array([1.0, -3.0, 0.25])
    y0, _ = bnlib.batchnorm_forward(x, np.ones(3), np.zeros(3))
    y, _ = bnlib.batchnorm_forward(x, gamma, beta)
    np.testing.assert_allclose(y, gamma * y0 + beta, rtol=1e-12)
    np.testing.assert_allclose(y.mean(axis=0), beta, atol=1e-12)


def test_identity_recovered_with_gamma_sigma_beta_mu():
    x = rng(5).standard_normal((40, 4)) * 7 + 3
    mu, var = x.mean(axis=0), x.var(axis=0)
    y, _ = bnlib.batchnorm_forward(x, np.sqrt(var + 1e-5), mu)
    np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-12)


def test_spatial_batchnorm_uses_per_channel_statistics_over_n_h_w():
    x = rng(6).standard_normal((4, 3, 5, 5)) * np.array([1.0, 10.0, 100.0])[None, :, None, None]
    y, _ = bnlib.batchnorm_forward(x, np.ones(3), np.zeros(3))
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    # the same as 2-D batch norm on the channels-last flattening
    flat = x.transpose(0, 2, 3, 1).reshape(-1, 3)
    y2, _ = bnlib.batchnorm_forward(flat, np.ones(3), np.zeros(3))
    np.testing.assert_allclose(y.transpose(0, 2, 3, 1).reshape(-1, 3), y2, rtol=1e-12)


def test_family_members_are_the_same_operation_over_different_axes():
    x = rng(7).standard_normal((3, 4, 2, 2))
    ones, zeros = np.ones(4), np.zeros(4)
    def z(v, axes):
        return (v - v.mean(axis=axes, keepdims=True)) / np.sqrt(v.var(axis=axes, keepdims=True) + 1e-5)
    np.testing.assert_allclose(bnlib.instancenorm_forward(x, ones, zeros)[0], z(x, (2, 3)), rtol=1e-12)
    np.testing.assert_allclose(bnlib.groupnorm_forward(x, ones, zeros, 1)[0], z(x, (1, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(bnlib.groupnorm_forward(x, ones, zeros, 4)[0], z(x, (2, 3)), rtol=1e-12)
    np.testing.assert_allclose(bnlib.layernorm_forward(x, np.ones((4, 2, 2)), np.zeros((4, 2, 2)))[0],
                               z(x, (1, 2, 3)), rtol=1e-12)
    grouped = z(x.reshape(3, 2, 2, 2, 2), (2, 3, 4)).reshape(x.shape)
    np.testing.assert_allclose(bnlib.groupnorm_forward(x, ones, zeros, 2)[0], grouped, rtol=1e-12)


def test_constant_feature_gives_zero_not_nan():
    x = np.column_stack([np.full(10, 3.0), np.arange(10.0)])
    y, _ = bnlib.batchnorm_forward(x, np.ones(2), np.zeros(2))
    assert np.all(y[:, 0] == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fwd, bwd, extra", [
    (bnlib.batchnorm_forward, bnlib.batchnorm_backward, ()),
    (bnlib.batchnorm_forward, bnlib.batchnorm_backward_graph, ()),
    (bnlib.instancenorm_forward, bnlib.instancenorm_backward, ()),
    (bnlib.groupnorm_forward, bnlib.groupnorm_backward, (2,)),
])
def test_dtype_preserved(dtype, fwd, bwd, extra):
    x = rng(8).standard_normal((4, 4, 3)).astype(dtype)
    y, cache = fwd(x, np.ones(4, dtype), np.zeros(4, dtype), *extra)
    grads = bwd(np.ones_like(y), cache)
    assert y.dtype == dtype and all(g.dtype == dtype for g in grads)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layernorm_dtype_preserved_even_with_float64_gamma(dtype):
    x = rng(9).standard_normal((4, 6)).astype(dtype)
    y, cache = bnlib.layernorm_forward(x, np.ones(6), np.zeros(6))   # np.ones is float64
    assert y.dtype == dtype
    assert all(g.dtype == dtype for g in bnlib.layernorm_backward(np.ones_like(y), cache))
