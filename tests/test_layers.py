"""Layers and the MLP: gradient checks, running statistics, eval mode, folding."""
import numpy as np
import pytest

import bnlib
from bnlib import grad_check, rel_error

TOL = 1e-7


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("layer_cls", [bnlib.Sigmoid, bnlib.Tanh, bnlib.ReLU])
def test_activation_gradients(layer_cls):
    z = rng(1).standard_normal((6, 5)) * 2
    z[np.abs(z) < 0.05] = 0.5     # keep ReLU away from its kink, where it has no derivative
    dy = rng(2).standard_normal(z.shape)
    layer = layer_cls()
    layer.forward(z)
    assert rel_error(layer.backward(dy), grad_check(lambda v: layer_cls().forward(v), z, dy)) <= TOL


def test_sigmoid_is_stable_for_large_inputs():
    y = bnlib.Sigmoid().forward(np.array([[-1000.0, 0.0, 1000.0]], dtype=np.float32))
    np.testing.assert_array_equal(y, [[0.0, 0.5, 1.0]])


def test_linear_gradients():
    lin = bnlib.Linear(4, 3, dtype=np.float64, seed=3)
    lin.b[:] = rng(4).standard_normal(3)
    x, dy = rng(5).standard_normal((7, 4)), rng(6).standard_normal((7, 3))
    lin.forward(x)
    dx = lin.backward(dy)
    assert rel_error(dx, grad_check(lambda v: lin.forward(v), x, dy)) <= TOL
    lin.forward(x)
    assert rel_error(lin.dW, grad_check(lambda W: x @ W + lin.b, lin.W.copy(), dy)) <= TOL
    assert rel_error(lin.db, grad_check(lambda b: x @ lin.W + b, lin.b.copy(), dy)) <= TOL


def test_softmax_cross_entropy_value_and_gradient():
    logits = rng(7).standard_normal((5, 4))
    y = np.array([0, 3, 1, 1, 2])
    loss, dlogits = bnlib.softmax_cross_entropy(logits, y)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(5), y])), rel=1e-12)
    num = grad_check(lambda v: bnlib.softmax_cross_entropy(v, y)[0], logits)
    assert rel_error(dlogits, num) <= TOL


def test_batchnorm_layer_gradients_match_numerical():
    bn = bnlib.BatchNorm(4, dtype=np.float64)
    r = rng(8)
    bn.gamma[:], bn.beta[:] = r.standard_normal(4), r.standard_normal(4)
    x, dy = r.standard_normal((10, 4)), r.standard_normal((10, 4))
    bn.forward(x)
    dx = bn.backward(dy)
    fresh = lambda v: bnlib.batchnorm_forward(v, bn.gamma, bn.beta)[0]
    assert rel_error(dx, grad_check(fresh, x, dy)) <= TOL
    assert rel_error(bn.dgamma, grad_check(lambda g: bnlib.batchnorm_forward(x, g, bn.beta)[0], bn.gamma.copy(), dy)) <= TOL
    assert rel_error(bn.dbeta, grad_check(lambda b: bnlib.batchnorm_forward(x, bn.gamma, b)[0], bn.beta.copy(), dy)) <= TOL


def hand_running_stats(batches, momentum):
    """Running statistics computed the slow, obvious way (PyTorch's convention)."""
    mean, var = np.zeros(batches[0].shape[1]), np.ones(batches[0].shape[1])
    for k, xb in enumerate(batches, start=1):
        w = 1.0 / k if momentum is None else momentum
        m = len(xb)
        unbiased = ((xb - xb.mean(axis=0)) ** 2).sum(axis=0) / (m - 1)
        mean = (1 - w) * mean + w * xb.mean(axis=0)
        var = (1 - w) * var + w * unbiased
    return mean, var


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_running_statistics_match_hand_computation(momentum):
    r = rng(9)
    batches = [r.standard_normal((m, 3)) * [1.0, 5.0, 0.1] + [2.0, -1.0, 10.0] for m in (8, 16, 5, 32, 8)]
    bn = bnlib.BatchNorm(3, momentum=momentum, dtype=np.float64)
    for xb in batches:
        bn.forward(xb)
    mean, var = hand_running_stats(batches, momentum)
    np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, var, rtol=1e-12)
    assert bn.num_batches_tracked == len(batches)


def test_running_statistics_start_at_zero_and_one_and_momentum_weights_the_new_batch():
    bn = bnlib.BatchNorm(2, dtype=np.float64)
    np.testing.assert_array_equal(bn.running_mean, [0, 0])
    np.testing.assert_array_equal(bn.running_var, [1, 1])
    x = np.array([[1.0, 10.0], [3.0, 20.0]])
    bn.forward(x)
    np.testing.assert_allclose(bn.running_mean, 0.1 * np.array([2.0, 15.0]))
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * np.array([2.0, 50.0]))   # unbiased: m/(m−1)


def test_eval_uses_running_statistics_and_ignores_batchmates():
    r = rng(10)
    bn = bnlib.BatchNorm(3, dtype=np.float64)
    for _ in range(20):
        bn.forward(r.standard_normal((16, 3)) * 4 + 1)
    bn.eval()
    x = r.standard_normal((8, 3))
    alone = bn.forward(x[:1])
    with_others = bn.forward(x)[:1]
    with_other_others = bn.forward(np.vstack([x[:1], 100 * r.standard_normal((5, 3))]))[:1]
    np.testing.assert_array_equal(alone, with_others)
    np.testing.assert_array_equal(alone, with_other_others)
    expected = bn.gamma * (x[:1] - bn.running_mean) / np.sqrt(bn.running_var + bn.eps) + bn.beta
    np.testing.assert_allclose(alone, expected, rtol=1e-12)


def test_training_mode_output_depends_on_batchmates():
    bn = bnlib.BatchNorm(2, dtype=np.float64)
    x = rng(11).standard_normal((6, 2))
    assert not np.allclose(bn.forward(x)[:3], bn.forward(x[:3]))


def test_spatial_batchnorm_layer_running_stats():
    bn = bnlib.BatchNorm(2, dtype=np.float64)
    x = rng(12).standard_normal((3, 2, 4, 4)) + np.array([1.0, -2.0])[None, :, None, None]
    bn.forward(x)
    per_channel = x.transpose(1, 0, 2, 3).reshape(2, -1)
    np.testing.assert_allclose(bn.running_mean, 0.1 * per_channel.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * per_channel.var(axis=1, ddof=1), rtol=1e-12)


def test_fold_batchnorm_is_exact():
    r = rng(13)
    lin = bnlib.Linear(5, 4, dtype=np.float64, seed=1)
    lin.b[:] = r.standard_normal(4)
    bn = bnlib.BatchNorm(4, dtype=np.float64)
    bn.gamma[:], bn.beta[:] = r.standard_normal(4), r.standard_normal(4)
    for _ in range(10):
        bn.forward(lin.forward(r.standard_normal((20, 5))))
    bn.eval()
    x = r.standard_normal((7, 5))
    folded = bnlib.fold_batchnorm(lin, bn)
    np.testing.assert_allclose(folded.forward(x), bn.forward(lin.forward(x)), rtol=1e-12, atol=1e-12)


MLP_CASES = [
    dict(norm=None, activation="sigmoid"),
    dict(norm="batch", activation="sigmoid", norm_position="before"),
    dict(norm="batch", activation="tanh", norm_position="after"),
    dict(norm="layer", activation="tanh"),
    dict(norm="group", activation="sigmoid", groups=2),
    dict(norm="batch", activation="relu", init="he"),
]


@pytest.mark.parametrize("kwargs", MLP_CASES, ids=lambda k: "-".join(str(v) for v in k.values()))
def test_whole_mlp_gradient(kwargs):
    model = bnlib.MLP([6, 4, 4, 3], dtype=np.float64, seed=2, **kwargs)
    r = rng(14)
    x, y = r.standard_normal((9, 6)), r.integers(0, 3, 9)
    for p in model.parameters():             # move γ, β, b off their initial 1/0 for a sharper check
        p += 0.1 * r.standard_normal(p.shape)

    def loss_of_params():
        return bnlib.softmax_cross_entropy(model.forward(x), y)[0]

    loss, dlogits = bnlib.softmax_cross_entropy(model.forward(x), y)
    model.backward(dlogits)
    # A bias right before batch norm has gradient exactly 0 (the batch mean removes it), so a
    # relative error would only compare rounding noise: check that both are ~0 instead.
    absorbed = {id(lin.b) for lin, nrm, _ in model.hidden
                if isinstance(nrm, bnlib.BatchNorm) and model.norm_position == "before"}
    for p, g in zip(model.parameters(), [g.copy() for g in model.gradients()]):
        numerical = grad_check(lambda _: loss_of_params(), p)
        if id(p) in absorbed:
            assert np.abs(g).max() < 1e-12 and np.abs(numerical).max() < 1e-10
        else:
            assert rel_error(g, numerical) <= TOL


def test_mlp_structure_and_repr():
    m = bnlib.MLP([784, 100, 100, 10], norm="batch", norm_position="before")
    names = [type(l).__name__ for l in m.layers]
    assert names == ["Linear", "BatchNorm", "Sigmoid", "Linear", "BatchNorm", "Sigmoid", "Linear"]
    m2 = bnlib.MLP([784, 100, 10], norm="batch", norm_position="after")
    assert [type(l).__name__ for l in m2.layers] == ["Linear", "Sigmoid", "BatchNorm", "Linear"]
    assert "BatchNorm(100" in repr(m) and "parameters" in repr(m)


def test_mlp_train_eval_switch_every_layer():
    m = bnlib.MLP([4, 3, 2], norm="batch")
    m.eval()
    assert not any(l.training for l in m.layers)
    m.train()
    assert all(l.training for l in m.layers)


def test_predict_restores_mode():
    m = bnlib.MLP([4, 3, 2], norm="batch")
    m.predict(np.ones((2, 4), np.float32))
    assert all(l.training for l in m.layers)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mlp_keeps_its_dtype(dtype):
    m = bnlib.MLP([4, 3, 2], norm="batch", dtype=dtype)
    out = m.forward(np.ones((5, 4), dtype=dtype) + np.arange(5, dtype=dtype)[:, None])
    assert out.dtype == dtype
    _, d = bnlib.softmax_cross_entropy(out, np.zeros(5, int))
    m.backward(d)
    assert all(g.dtype == dtype for g in m.gradients())
    assert all(p.dtype == dtype for p in m.parameters())


def test_batch_renorm_gradients_with_r_and_d_held_constant():
    r = rng(15)
    brn = bnlib.BatchRenorm(4, warmup=0, dtype=np.float64)
    brn.running_mean[:], brn.running_var[:] = r.standard_normal(4), r.uniform(0.5, 2, 4)
    brn.gamma[:], brn.beta[:] = r.standard_normal(4), r.standard_normal(4)
    x, dy = r.standard_normal((12, 4)) * 1.5 + 0.3, r.standard_normal((12, 4))
    brn.track_running_stats = False
    brn.forward(x)
    dx = brn.backward(dy)
    R, D, g, b = brn.r, brn.d, brn.gamma.copy(), brn.beta.copy()
    assert not np.allclose(R, 1) and not np.allclose(D, 0)        # the check exercises r and d
    fixed = lambda v, g=g, b=b: bnlib.batchnorm_forward(v, g * R, g * D + b)[0]
    assert rel_error(dx, grad_check(fixed, x, dy)) <= TOL
    assert rel_error(brn.dgamma, grad_check(lambda v: fixed(x, g=v), g.copy(), dy)) <= TOL
    assert rel_error(brn.dbeta, grad_check(lambda v: fixed(x, b=v), b.copy(), dy)) <= TOL


def test_batch_renorm_is_batch_norm_at_warmup_start_and_eval_form_when_unclipped():
    r = rng(16)
    x = r.standard_normal((16, 3)) * 2 + 1
    brn, bn = bnlib.BatchRenorm(3, warmup=10, dtype=np.float64), bnlib.BatchNorm(3, dtype=np.float64)
    np.testing.assert_allclose(brn.forward(x), bn.forward(x), rtol=1e-12)          # r_max = 1, d_max = 0
    np.testing.assert_allclose(brn.running_var, bn.running_var, rtol=1e-12)
    free = bnlib.BatchRenorm(3, r_max=1e6, d_max=1e6, warmup=0, dtype=np.float64)
    free.running_mean[:], free.running_var[:] = [0.5, -1.0, 2.0], [2.0, 0.5, 1.5]
    expected = (x - free.running_mean) / np.sqrt(free.running_var + free.eps)   # eval form, old stats
    np.testing.assert_allclose(free.forward(x), expected, rtol=1e-10)


def test_batch_statistics_context_uses_batch_stats_and_leaves_running_averages_and_modes():
    m = bnlib.MLP([4, 6, 3], norm="batch", dtype=np.float64)
    m.eval()
    bn = m.norm_layers()[0]
    before = bn.running_mean.copy(), bn.running_var.copy()
    x = rng(17).standard_normal((10, 4)) * 3
    with m.batch_statistics():
        assert all(layer.training for layer in m.layers)
        _, pre, _ = m.forward(x, keep=True)
    np.testing.assert_allclose(pre[0].mean(axis=0), 0, atol=1e-12)       # normalised with this batch
    np.testing.assert_array_equal(bn.running_mean, before[0])
    np.testing.assert_array_equal(bn.running_var, before[1])
    assert not any(layer.training for layer in m.layers) and bn.track_running_stats


def test_evaluation_context_restores_training_mode():
    m = bnlib.MLP([4, 6, 3], norm="batch")
    with m.evaluation():
        assert not any(layer.training for layer in m.layers)
    assert all(layer.training for layer in m.layers)
