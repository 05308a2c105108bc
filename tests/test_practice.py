"""What notebook 12 (BN in practice) needs from bnlib: ghost (per-device) batch norm, frozen
statistics, recompute_statistics, training only some parameters, weight decay with γ/β/bias
exempt, and batches in stored order. Gradient checks in float64, conventions, bad input."""
import copy

import numpy as np
import pytest

import bnlib
from bnlib import GhostBatchNorm, MLP, grad_check, recompute_statistics, rel_error
from bnlib.layers import BatchNorm, BatchRenorm
from bnlib.train import in_stored_order

TOL = 1e-7


def rng(seed=0):
    return np.random.default_rng(seed)


def tiny_data(n=120, seed=0, features=12, classes=3):
    r = rng(seed)
    y = np.arange(n) % classes
    x = r.standard_normal((n, features)) + 2.0 * np.eye(classes, features)[y]
    return bnlib.Dataset(x[: n * 3 // 4].astype(np.float64), y[: n * 3 // 4], x[n * 3 // 4:].astype(np.float64),
                         y[n * 3 // 4:], "tiny")


def check_layer_gradients(make, x, dy):
    """dx, dγ, dβ of a layer's backward against five-point numerical gradients (float64)."""
    layer = make()
    layer.forward(x)
    dx = layer.backward(dy)

    def out_of(x_=None, gamma=None, beta=None):
        fresh = make()
        if gamma is not None:
            fresh.gamma[...] = gamma
        if beta is not None:
            fresh.beta[...] = beta
        return fresh.forward(x if x_ is None else x_)

    assert rel_error(dx, grad_check(lambda v: out_of(x_=v), x.copy(), dy)) <= TOL
    assert rel_error(layer.dgamma, grad_check(lambda g: out_of(gamma=g), layer.gamma.copy(), dy)) <= TOL
    assert rel_error(layer.dbeta, grad_check(lambda b: out_of(beta=b), layer.beta.copy(), dy)) <= TOL


# --------------------------------------------------------------------------- GhostBatchNorm
def ghost(features, size, seed=3, **kw):
    layer = GhostBatchNorm(features, size, dtype=np.float64, **kw)
    layer.gamma[...] = 1 + rng(seed).standard_normal(layer.gamma.shape) * 0.3
    layer.beta[...] = rng(seed + 1).standard_normal(layer.beta.shape) * 0.3
    return layer


@pytest.mark.parametrize("shape, size", [((12, 5), 4), ((12, 5), 3), ((8, 3, 2, 2), 2), ((6, 3, 2, 3), 3)])
def test_ghost_batchnorm_gradients_match_numerical(shape, size):
    x = rng(1).standard_normal(shape) * 2 + 1
    dy = rng(2).standard_normal(shape)
    check_layer_gradients(lambda: ghost(shape[1], size), x, dy)


def test_each_ghost_batch_is_normalised_with_its_own_statistics():
    x = rng(4).standard_normal((12, 6)) * 3 + np.arange(12)[:, None]      # groups differ in their mean
    layer = GhostBatchNorm(6, 4, dtype=np.float64)
    y = layer.forward(x).reshape(3, 4, 6)
    np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=1), 1, rtol=1e-4)
    for g in range(3):                                                     # group g alone through BatchNorm
        np.testing.assert_allclose(y[g], BatchNorm(6, dtype=np.float64).forward(x[4 * g:4 * g + 4]), atol=1e-12)


def test_ghost_batch_of_the_whole_batch_is_batchnorm():
    x = rng(5).standard_normal((10, 3, 2, 2))
    dy = rng(6).standard_normal(x.shape)
    a, b = GhostBatchNorm(3, 10, dtype=np.float64), BatchNorm(3, dtype=np.float64)
    np.testing.assert_allclose(a.forward(x), b.forward(x), atol=1e-12)
    np.testing.assert_allclose(a.backward(dy), b.backward(dy), atol=1e-12)
    np.testing.assert_allclose(a.running_mean, b.running_mean, atol=1e-12)
    np.testing.assert_allclose(a.running_var, b.running_var, atol=1e-12)


def test_ghost_running_statistics_average_the_groups_unbiased_variances():
    x = rng(7).standard_normal((12, 4)) * 2 + 1
    layer = GhostBatchNorm(4, 3, momentum=0.1, dtype=np.float64)
    layer.forward(x)
    groups = x.reshape(4, 3, 4)
    np.testing.assert_allclose(layer.running_mean, 0.1 * groups.mean(axis=1).mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(layer.running_var, 0.9 + 0.1 * groups.var(axis=1, ddof=1).mean(axis=0), atol=1e-12)
    images = rng(8).standard_normal((4, 2, 3, 3))                           # m = 2·3·3 values per group
    conv = GhostBatchNorm(2, 2, momentum=None, dtype=np.float64)
    conv.forward(images)
    g = images.reshape(2, 2, 2, 3, 3)
    np.testing.assert_allclose(conv.running_var, g.var(axis=(1, 3, 4), ddof=1).mean(axis=0), atol=1e-12)


def test_ghost_eval_is_batchnorm_eval_and_bad_batches_are_refused():
    layer = GhostBatchNorm(3, 4, dtype=np.float64)
    layer.running_mean[...] = [1, 2, 3]
    layer.running_var[...] = [4, 1, 0.25]
    x = rng(9).standard_normal((5, 3))
    plain = BatchNorm(3, dtype=np.float64)
    plain.running_mean[...], plain.running_var[...] = layer.running_mean, layer.running_var
    np.testing.assert_allclose(layer.eval().forward(x), plain.eval().forward(x))
    layer.train()
    with pytest.raises(ValueError, match="multiple of 4"):
        layer.forward(rng(1).standard_normal((10, 3)))
    with pytest.raises(ValueError, match="single value"):
        GhostBatchNorm(3, 1).forward(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError):
        GhostBatchNorm(3, 0)
    assert "virtual_batch_size=4" in repr(layer)


def test_mlp_with_ghost_norm_and_its_whole_gradient():
    with pytest.raises(ValueError, match="virtual_batch_size"):
        MLP([4, 5, 2], norm="ghost")
    with pytest.raises(ValueError, match="virtual_batch_size"):
        MLP([4, 5, 2], norm="batch", virtual_batch_size=2)
    model = MLP([4, 6, 5, 3], activation="tanh", norm="ghost", virtual_batch_size=3, dtype=np.float64, seed=1)
    assert all(isinstance(n, GhostBatchNorm) for n in model.norm_layers()) and "of 3" in model.label()
    x, y = rng(2).standard_normal((9, 4)), np.arange(9) % 3

    def loss_at(w):
        layer.W[...] = w
        return bnlib.softmax_cross_entropy(model.forward(x), y)[0]

    for layer in (model.layers[0], model.layers[3]):
        model.train()
        bnlib.softmax_cross_entropy(model.forward(x), y)
        model.backward(bnlib.softmax_cross_entropy(model.forward(x), y)[1])
        analytic = layer.dW.copy()
        numeric = grad_check(loss_at, layer.W.copy())
        assert rel_error(analytic, numeric) <= TOL


# --------------------------------------------------------------------------- frozen statistics
def frozen_bn(features, seed=3):
    bn = BatchNorm(features, dtype=np.float64)
    bn.running_mean[...] = rng(seed).standard_normal(features)
    bn.running_var[...] = rng(seed + 1).uniform(0.5, 2.0, features)
    bn.gamma[...] = 1 + 0.3 * rng(seed + 2).standard_normal(features)
    bn.beta[...] = 0.3 * rng(seed + 3).standard_normal(features)
    bn.frozen = True
    return bn


@pytest.mark.parametrize("shape", [(7, 4), (3, 4, 2, 3)])
def test_frozen_batchnorm_gradients_match_numerical(shape):
    x = rng(1).standard_normal(shape) * 2
    dy = rng(2).standard_normal(shape)
    check_layer_gradients(lambda: frozen_bn(4), x, dy)


def test_frozen_statistics_normalise_as_eval_mode_and_never_move():
    bn = frozen_bn(4)
    before = bn.running_mean.copy(), bn.running_var.copy(), bn.num_batches_tracked
    x = rng(3).standard_normal((6, 4)) * 5
    y_train = bn.forward(x)
    assert bn.training and "frozen statistics" in repr(bn)
    np.testing.assert_allclose(y_train, copy.deepcopy(bn).eval().forward(x))
    np.testing.assert_array_equal(bn.running_mean, before[0])
    np.testing.assert_array_equal(bn.running_var, before[1])
    assert bn.num_batches_tracked == before[2]
    bn.forward(x[:1])                       # one sample is fine: no batch statistics are computed
    bn.eval().forward(x)
    with pytest.raises(RuntimeError):       # backward after an eval-mode forward is still refused
        bn.backward(x)


def test_frozen_batch_renorm_is_frozen_too():
    bn = BatchRenorm(3, dtype=np.float64)
    bn.running_mean[...] = [1, 2, 3]
    bn.frozen = True
    x = rng(4).standard_normal((5, 3))
    np.testing.assert_allclose(bn.forward(x), (x - bn.running_mean) / np.sqrt(1 + 1e-5))
    np.testing.assert_allclose(bn.backward(np.ones_like(x)), np.ones_like(x) / np.sqrt(1 + 1e-5))
    np.testing.assert_array_equal(bn.running_mean, [1, 2, 3])


def test_reset_running_stats():
    bn = BatchNorm(3)
    bn.forward(rng(1).standard_normal((5, 3)).astype(np.float32) + 4)
    bn.reset_running_stats()
    np.testing.assert_array_equal(bn.running_mean, 0)
    np.testing.assert_array_equal(bn.running_var, 1)
    assert bn.num_batches_tracked == 0 and bn.running_mean.dtype == np.float32


def test_model_frozen_statistics_context_trains_weights_but_not_statistics():
    data = tiny_data()
    model = MLP([12, 8, 3], activation="relu", norm="batch", init="he", dtype=np.float64)
    bnlib.train(model, data, steps=5, batch_size=10, lr=0.1, progress=False)
    stats = [(bn.running_mean.copy(), bn.running_var.copy()) for bn in model.norm_layers()]
    w, gamma = model.layers[0].W.copy(), model.norm_layers()[0].gamma.copy()
    with model.frozen_statistics():
        assert all(bn.frozen for bn in model.norm_layers())
        bnlib.train(model, data, steps=10, batch_size=10, lr=0.1, progress=False)
    assert not any(bn.frozen for bn in model.norm_layers())
    for bn, (mu, var) in zip(model.norm_layers(), stats):
        np.testing.assert_array_equal(bn.running_mean, mu)
        np.testing.assert_array_equal(bn.running_var, var)
    assert not np.array_equal(model.layers[0].W, w) and not np.array_equal(model.norm_layers()[0].gamma, gamma)
    with pytest.raises(KeyError):                                           # restored when the block fails
        with model.frozen_statistics():
            raise KeyError("boom")
    assert not any(bn.frozen for bn in model.norm_layers())


# --------------------------------------------------------------------------- training only some parameters
def test_training_only_the_output_layer_still_moves_the_running_statistics():
    data = tiny_data()
    model = MLP([12, 8, 3], activation="relu", norm="batch", init="he", dtype=np.float64)
    frozen = [p.copy() for p in model.parameters()[:-2]]
    head = [p.copy() for p in model.layers[-1].parameters()]
    mean0 = model.norm_layers()[0].running_mean.copy()
    history = bnlib.train(model, data, steps=8, batch_size=10, lr=0.1, parameters=model.layers[-1].parameters(),
                          progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(frozen, model.parameters()[:-2]))
    assert not any(np.array_equal(a, b) for a, b in zip(head, model.layers[-1].parameters()))
    assert not np.array_equal(model.norm_layers()[0].running_mean, mean0), "PyTorch's requires_grad=False trap"
    assert history.config["trained"] == 2
    with model.frozen_statistics():                                        # now nothing of the backbone moves
        mean1 = model.norm_layers()[0].running_mean.copy()
        bnlib.train(model, data, steps=4, batch_size=10, lr=0.1, parameters=model.layers[-1].parameters(),
                    progress=False)
    np.testing.assert_array_equal(model.norm_layers()[0].running_mean, mean1)
    with pytest.raises(ValueError, match="parameters"):
        bnlib.train(model, data, steps=1, batch_size=10, lr=0.1, parameters=[np.zeros(3)], progress=False)


# --------------------------------------------------------------------------- weight decay
def test_sgd_weight_decay_adds_lambda_p_where_decay_says():
    p, q = np.array([1.0, -2.0]), np.array([3.0])
    gp, gq = np.array([0.5, 0.5]), np.array([1.0])
    opt = bnlib.SGD([p, q], [gp, gq], lr=0.1, weight_decay=0.01, decay=[True, False])
    opt.step()
    np.testing.assert_allclose(p, [1.0 - 0.1 * (0.5 + 0.01), -2.0 - 0.1 * (0.5 - 0.02)])
    np.testing.assert_allclose(q, [3.0 - 0.1])
    np.testing.assert_array_equal(gp, [0.5, 0.5]), "the gradients are left as computed"
    v = np.array([2.0])
    opt = bnlib.SGD([v], [np.array([0.0])], lr=0.5, momentum=0.9, weight_decay=0.1)
    opt.step()
    opt.step()                                                              # velocity 0.2, then 0.9·0.2 + 0.19
    np.testing.assert_allclose(v, [2.0 - 0.5 * 0.2 - 0.5 * (0.9 * 0.2 + 0.1 * 1.9)])
    for bad in (-0.1, True, "0.1"):
        with pytest.raises(ValueError, match="weight_decay"):
            bnlib.SGD([p], [gp], lr=0.1, weight_decay=bad)
    with pytest.raises(ValueError, match="one True/False per parameter"):
        bnlib.SGD([p, q], [gp, gq], lr=0.1, decay=[True])


def test_train_decays_weight_matrices_only_and_records_their_norms():
    data = tiny_data()
    kw = dict(steps=6, batch_size=10, lr=0.1, record_every=3, progress=False)
    a = MLP([12, 8, 3], activation="relu", norm="batch", init="he", dtype=np.float64)
    b = copy.deepcopy(a)
    ha = bnlib.train(a, data, weight_decay=0.0, **kw)
    hb = bnlib.train(b, data, weight_decay=0.5, **kw)
    assert ha.weight_norms.shape == (3, 2) and hb.config["weight_decay"] == 0.5
    np.testing.assert_allclose(ha.weight_norms[0], [np.linalg.norm(layer.W) for layer in
                                                    MLP([12, 8, 3], activation="relu", norm="batch", init="he",
                                                        dtype=np.float64).layers if hasattr(layer, "W")])
    assert np.all(hb.weight_norms[-1] < ha.weight_norms[-1])
    # the same steps by hand: W ← W − lr (dW + λW); b, γ, β ← − lr · gradient
    c = MLP([12, 8, 3], activation="relu", norm="batch", init="he", dtype=np.float64).train()
    batches = bnlib.minibatches(len(data.x_train), 10, 0)
    for _step in range(6):
        idx = next(batches)
        c.backward(bnlib.softmax_cross_entropy(c.forward(data.x_train[idx]), data.y_train[idx])[1])
        for p, g in zip(c.parameters(), c.gradients()):
            p -= 0.1 * (g + 0.5 * p if p.ndim >= 2 else g)
    for p, q in zip(b.parameters(), c.parameters()):
        np.testing.assert_allclose(p, q, atol=1e-12)


# --------------------------------------------------------------------------- batches in stored order
def test_in_stored_order_and_train_without_shuffling():
    batches = in_stored_order(10, 4)
    assert [next(batches).tolist() for _ in range(3)] == [[0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 2, 3]]
    with pytest.raises(ValueError, match="larger than"):
        next(in_stored_order(3, 4))
    data = tiny_data()
    runs = [MLP([12, 8, 3], norm="batch", dtype=np.float64) for _ in range(2)]
    for seed, model in enumerate(runs):                                     # the seed picks no order now
        bnlib.train(model, data, steps=7, batch_size=10, lr=0.1, shuffle=False, seed=seed, progress=False)
    np.testing.assert_array_equal(runs[0].layers[0].W, runs[1].layers[0].W)
    hand = MLP([12, 8, 3], norm="batch", dtype=np.float64).train()
    opt = bnlib.SGD(hand.parameters(), hand.gradients(), 0.1)
    for step in range(7):
        idx = np.arange(10 * (step % 9), 10 * (step % 9) + 10)             # 90 samples: 9 full batches
        hand.backward(bnlib.softmax_cross_entropy(hand.forward(data.x_train[idx]), data.y_train[idx])[1])
        opt.step()
    np.testing.assert_allclose(hand.layers[0].W, runs[0].layers[0].W, atol=1e-12)


# --------------------------------------------------------------------------- recompute_statistics
def test_recompute_statistics_in_one_batch_gives_the_exact_first_layer_statistics():
    data = tiny_data()
    model = MLP([12, 8, 6, 3], activation="relu", norm="batch", init="he", dtype=np.float64, momentum=0.3)
    bnlib.train(model, data, steps=5, batch_size=10, lr=0.1, progress=False)
    model.eval()
    weights = [p.copy() for p in model.parameters()]
    x = data.x_test
    assert recompute_statistics(model, x) is model
    z = model.layers[0].forward(x)
    bn = model.norm_layers()[0]
    np.testing.assert_allclose(bn.running_mean, z.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(bn.running_var, z.var(axis=0, ddof=1), atol=1e-12)
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.parameters()))
    assert not any(layer.training for layer in model.layers), "modes restored"
    assert all(bn.momentum == 0.3 and bn.num_batches_tracked == 1 for bn in model.norm_layers())


def test_recompute_statistics_in_batches_is_the_bn_papers_algorithm_2():
    data = tiny_data()
    model = MLP([12, 8, 6, 3], activation="tanh", norm="batch", dtype=np.float64)
    bnlib.train(model, data, steps=5, batch_size=10, lr=0.1, progress=False)
    x, m = data.x_train[:87], 20                                            # 4 batches; the last 7 left out
    reference = copy.deepcopy(model).train()
    means, variances = [[] for _ in range(2)], [[] for _ in range(2)]
    with reference.batch_statistics():
        for k in range(4):
            h = x[m * k:m * (k + 1)]
            for layer in reference.layers:
                if isinstance(layer, BatchNorm):
                    l = reference.norm_layers().index(layer)
                    means[l].append(h.mean(axis=0))
                    variances[l].append(h.var(axis=0))
                h = layer.forward(h)
    model.norm_layers()[1].frozen = True
    recompute_statistics(model, x, batch_size=m)
    for l, bn in enumerate(model.norm_layers()):
        np.testing.assert_allclose(bn.running_mean, np.mean(means[l], axis=0), atol=1e-12)
        np.testing.assert_allclose(bn.running_var, m / (m - 1) * np.mean(variances[l], axis=0), atol=1e-12)
    assert model.norm_layers()[1].frozen and model.norm_layers()[0].momentum == 0.1


def test_recompute_statistics_refuses_what_it_cannot_do():
    x = np.zeros((10, 4), np.float32)
    with pytest.raises(ValueError, match="no batch norm"):
        recompute_statistics(MLP([4, 3, 2], norm="layer"), x)
    model = MLP([4, 3, 2], norm="batch")
    for bad in (1, 11, 0, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            recompute_statistics(model, x, batch_size=bad)
    with pytest.raises(ValueError, match="batch_size"):
        recompute_statistics(model, x[:1])
