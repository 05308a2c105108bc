"""Deep MLPs: skip connections (residual blocks) gradient-checked in float64, their structure,
zero_init_residual, the per-layer gradient norms bnlib.train records, and records of a
24-hidden-layer network that stay cheap (the same numbers as numpy's percentile/histogram)."""
import time

import numpy as np
import pytest

import bnlib
from bnlib import grad_check, rel_error
from bnlib.model import SkipAdd, SkipStart
from bnlib.train import ACT_RANGE, BINS, PERCENTILES, PRE_RANGE, _Recorder

TOL = 1e-7
DEEP = [6, 5, 5, 5, 5, 5, 5, 3]          # 6 hidden layers: 5 residual blocks


def perturbed(sizes, seed, **kwargs):
    """A float64 MLP with every parameter moved off its initial value (γ off 1, β and b off 0),
    a batch x and an upstream gradient dy for the logits."""
    model = bnlib.MLP(sizes, dtype=np.float64, seed=seed, **kwargs)
    r = np.random.default_rng(100 + seed)
    x = r.standard_normal((9, sizes[0]))
    for p in model.parameters():
        p += 0.1 * r.standard_normal(p.shape)
    return model, x, r.standard_normal((9, sizes[-1]))


def worst_gradient_error(model, x, dy, h):
    """Largest rel_error between backward and the numerical gradient of Σ logits·dy, over all
    parameters. A bias right before batch norm has gradient exactly 0 (the batch mean removes it):
    there both must be ~0 and no relative error is taken (it would compare rounding noise)."""
    model.forward(x)
    model.backward(dy)
    absorbed = {id(lin.b) for lin, nrm, _ in model.hidden
                if isinstance(nrm, bnlib.BatchNorm) and model.norm_position == "before"}
    worst = 0.0
    for p, g in zip(model.parameters(), [g.copy() for g in model.gradients()]):
        numerical = grad_check(lambda _: model.forward(x), p, dy, h=h)
        if id(p) in absorbed:
            assert np.abs(g).max() < 1e-12 and np.abs(numerical).max() < 1e-9
        else:
            worst = max(worst, rel_error(g, numerical))
    return worst


SMOOTH = [dict(norm=None, activation="sigmoid"), dict(norm="batch", activation="sigmoid"),
          dict(norm="batch", activation="tanh", norm_position="after"), dict(norm="layer", activation="sigmoid"),
          dict(norm="layer", activation="tanh"), dict(norm=None, activation="tanh", zero_init_residual=True)]


@pytest.mark.parametrize("kwargs", SMOOTH, ids=lambda k: "-".join(str(v) for v in k.values()))
def test_deep_skip_mlp_gradient_smooth_activations(kwargs):
    # sigmoid and tanh are smooth, so the five-point difference can use h = 3e-4: its rounding
    # error (∝ 1/h) then stays far below 1e-7 even for the small gradients of the first layers
    model, x, dy = perturbed(DEEP, seed=0, skip=True, **kwargs)
    assert model.residual_blocks() == 5
    assert worst_gradient_error(model, x, dy, h=3e-4) <= TOL


def first_seed_away_from_kinks(kwargs, margin=0.01):
    """ReLU has a kink at 0: a numerical gradient whose ±2h steps cross it is wrong, whatever the
    backward does. Take the first seed whose every ReLU input lies at least `margin` from 0."""
    for seed in range(100):
        model, x, dy = perturbed(DEEP, seed, skip=True, init="he", activation="relu", **kwargs)
        with model.batch_statistics():
            _, pre, _ = model.forward(x, keep=True)
        if min(np.abs(z).min() for z in pre) >= margin:
            return model, x, dy
    raise AssertionError("no seed keeps every ReLU input away from the kink")


@pytest.mark.parametrize("kwargs", [dict(norm=None), dict(norm="batch"), dict(norm="batch", norm_position="after")],
                         ids=lambda k: "-".join(str(v) for v in k.values()))
def test_deep_skip_mlp_gradient_relu(kwargs):
    model, x, dy = first_seed_away_from_kinks(kwargs)
    assert worst_gradient_error(model, x, dy, h=1e-4) <= TOL


def test_skip_adds_the_identity_around_each_width_keeping_hidden_linear():
    plain = bnlib.MLP([784, 64, 64, 64, 10], activation="relu", norm="batch")
    res = bnlib.MLP([784, 64, 64, 64, 10], activation="relu", norm="batch", skip=True)
    kinds = [type(layer).__name__ for layer in res.layers]
    assert kinds == ["Linear", "SkipStart", "BatchNorm", "ReLU", "Linear", "SkipAdd",
                     "SkipStart", "BatchNorm", "ReLU", "Linear", "SkipAdd", "BatchNorm", "ReLU", "Linear"]
    # the same layers in the same order, and the same initial weights: only the additions differ
    same = [layer for layer in res.layers if not isinstance(layer, (SkipStart, SkipAdd))]
    assert [type(a) for a in same] == [type(b) for b in plain.layers]
    for a, b in zip(same, plain.layers):
        for pa, pb in zip(a.parameters(), b.parameters()):
            np.testing.assert_array_equal(pa, pb)
    assert res.residual_blocks() == 2 and "skip=True" in repr(res) and "SkipAdd" in repr(res)
    assert "skip" not in repr(plain) and res.label().endswith(", skip)")
    # u' = u + f(u), f(u) = relu(BN(u)) W + b: block 1 by hand against the layers run in order
    x = np.random.default_rng(0).random((8, 784)).astype(np.float32)
    lin0, _, bn0, act0, lin1 = res.layers[:5]
    with res.batch_statistics():
        u = lin0.forward(x)
        by_hand = u + lin1.forward(act0.forward(bn0.forward(u)))
        out = x
        for layer in res.layers[:6]:
            out = layer.forward(out)
    np.testing.assert_allclose(out, by_hand, rtol=1e-6)


def test_skip_only_where_the_width_is_kept():
    m = bnlib.MLP([20, 16, 8, 8, 8, 3], skip=True)
    assert m.residual_blocks() == 2                     # 16 → 8 changes the width: no block there
    with pytest.raises(ValueError, match="equal width"):
        bnlib.MLP([784, 100, 10], skip=True)
    with pytest.raises(ValueError, match="equal width"):
        bnlib.MLP([784, 100, 50, 10], skip=True)
    with pytest.raises(ValueError, match="needs skip=True"):
        bnlib.MLP([784, 64, 64, 10], zero_init_residual=True)
    with pytest.raises(ValueError, match="skip"):
        bnlib.MLP([784, 64, 64, 10], skip="yes")


def test_zero_init_residual_starts_every_block_as_the_identity_and_still_learns():
    sizes = [30, 16, 16, 16, 16, 4]
    model = bnlib.MLP(sizes, activation="relu", norm="batch", init="he", skip=True, zero_init_residual=True,
                      dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((12, 30))
    y = np.arange(12) % 4
    first, (last_bn, last_act, head) = model.layers[0], model.layers[-3:]
    with model.batch_statistics():
        logits = model.forward(x)
        expected = head.forward(last_act.forward(last_bn.forward(first.forward(x))))   # u_L = u_1
    np.testing.assert_allclose(logits, expected, rtol=1e-12)
    _, dlogits = bnlib.softmax_cross_entropy(model.forward(x), y)
    model.backward(dlogits)
    blocks = [layer for layer in model.layers[1:-1] if isinstance(layer, bnlib.Linear)]
    assert all(np.abs(lin.dW).max() > 1e-3 for lin in blocks)        # the zero weights get a gradient
    # every block sees the same stream u_1 and passes the same ∂L/∂u: equal gradients in every block
    for lin in blocks[1:]:
        np.testing.assert_allclose(lin.dW, blocks[0].dW, rtol=1e-12)


def test_gamma_zero_before_a_relu_would_kill_the_branch():
    """Why zero_init_residual zeroes the block's Linear and not its γ (the docstring's claim):
    with γ = β = 0, relu(γ x̂ + β) = 0 for every input and its derivative there is 0."""
    model = bnlib.MLP([30, 16, 16, 4], activation="relu", norm="batch", init="he", skip=True, dtype=np.float64)
    bn = model.hidden[0][1]
    bn.gamma[...] = 0
    x, y = np.random.default_rng(2).standard_normal((12, 30)), np.arange(12) % 4
    _, dlogits = bnlib.softmax_cross_entropy(model.forward(x), y)
    model.backward(dlogits)
    block = model.hidden[1][0]
    assert np.all(bn.dgamma == 0) and np.all(bn.dbeta == 0) and np.all(block.dW == 0)


# ---------------------------------------------------------------- gradient norms in the History
def test_train_records_gradient_norms_per_weight_layer():
    data = bnlib.load_digits()
    h = bnlib.train(bnlib.MLP([64, 16, 16, 16, 10], norm="batch", skip=True), data, steps=30, batch_size=20,
                    lr=0.1, record_every=10, progress=False)
    assert h.grad_norms.shape == (4, 4) and np.all(np.isfinite(h.grad_norms)) and np.all(h.grad_norms > 0)
    # step 0's norms are those of the first batch's gradient, computed by hand
    model = bnlib.MLP([64, 16, 16, 16, 10], norm="batch", skip=True)
    idx = next(bnlib.minibatches(len(data.x_train), 20, 0))
    _, dlogits = bnlib.softmax_cross_entropy(model.forward(data.x_train[idx]), data.y_train[idx])
    model.backward(dlogits)
    by_hand = [np.linalg.norm(layer.dW) for layer in model.layers if isinstance(layer, bnlib.Linear)]
    np.testing.assert_allclose(h.grad_norms[0], by_hand, rtol=1e-6)


def test_gradient_norms_of_a_run_that_diverged():
    data = bnlib.load_digits()
    h = bnlib.train(bnlib.MLP([64, 32, 10], activation="tanh", init="he"), data, steps=200, batch_size=32,
                    lr=50.0, record_every=1, progress=False)
    assert h.diverged and h.grad_norms.shape == (len(h.record_steps), 2)
    assert np.all(np.isnan(h.grad_norms[-1])) and np.all(np.isfinite(h.grad_norms[0]))


def test_vanishing_and_exploding_gradients_at_initialization():
    """The notebook's story in one test, at 24 hidden layers of 64 units (step 0, one batch):
    plain sigmoid vanishes towards the input; BN without skip grows towards it; BN with skip less."""
    data = bnlib.load_mnist5k()
    x, y = data.x_train[:60], data.y_train[:60]

    def norms(**kwargs):
        model = bnlib.MLP([784] + [64] * 24 + [10], **kwargs)
        _, dlogits = bnlib.softmax_cross_entropy(model.forward(x), y)
        model.backward(dlogits)
        g = [np.linalg.norm(layer.dW) for layer in model.layers if isinstance(layer, bnlib.Linear)]
        return g[1] / g[-2]                   # first hidden 64×64 layer ÷ last one
    assert norms(activation="sigmoid") < 1e-8
    exploding = norms(activation="relu", init="he", norm="batch")
    assert exploding > 20
    assert 1 < norms(activation="relu", init="he", norm="batch", skip=True) < exploding / 3


# ---------------------------------------------------------------- cheap, exact records
def reference_stats(values, value_range):
    """What the recorder computed before it was made faster: numpy's percentile and histogram."""
    flat = values.reshape(-1)
    counts, _ = np.histogram(np.clip(flat, *value_range), bins=np.linspace(*value_range, BINS + 1))
    per_unit = values if values.ndim == 2 else np.moveaxis(values, 1, -1).reshape(-1, values.shape[1])
    return dict(percentiles=np.percentile(flat, PERCENTILES),
                unit_percentiles=np.percentile(per_unit, PERCENTILES, axis=0).T,
                mean=flat.mean(), std=flat.std(), hist=counts / flat.size)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_records_are_numpys_percentiles_and_histograms_bit_for_bit(activation, dtype):
    data = bnlib.load_mnist5k()
    model = bnlib.MLP([784, 32, 32, 10], activation=activation, norm="batch", skip=True, dtype=dtype)
    x = data.x_test[:300].astype(dtype)
    rec = _Recorder(model, x)
    rec.record()
    with model.batch_statistics():
        _, pre, act = model.forward(x, keep=True)
    for l in range(2):
        for got, values, value_range in ((rec.pre[l][0], pre[l], PRE_RANGE),
                                         (rec.act[l][0], act[l], ACT_RANGE[activation])):
            for key, want in reference_stats(values, value_range).items():
                np.testing.assert_array_equal(got[key], want, err_msg=key)


def test_record_of_24_hidden_layers_is_cheap_in_time_and_memory():
    data = bnlib.load_mnist5k()
    model = bnlib.MLP([784] + [64] * 24 + [10], activation="relu", norm="batch", init="he", skip=True)
    rec = _Recorder(model, data.x_test[:500])
    rec.record()
    start = time.perf_counter()
    for _ in range(3):
        rec.record()
    per_record = (time.perf_counter() - start) / 3
    x, y = data.x_train[:60], data.y_train[:60]
    start = time.perf_counter()
    for _ in range(20):
        _, dlogits = bnlib.softmax_cross_entropy(model.forward(x), y)
        model.backward(dlogits)
    per_step = (time.perf_counter() - start) / 20
    assert per_record < 30 * per_step, f"one record costs {per_record / per_step:.0f} training steps"
    h = bnlib.train(bnlib.MLP([784] + [64] * 24 + [10], activation="relu", norm="batch", init="he", skip=True),
                    data, steps=50, batch_size=60, lr=0.1, record_every=1, probe_size=100, eval_size=100,
                    progress=False)
    stored = sum(a.nbytes for layer in h.layers for s in (layer.pre, layer.act)
                 for a in (s.percentiles, s.unit_percentiles, s.mean, s.std, s.hist))
    assert len(h.record_steps) == 51 and stored < 51 * 110e3     # ≈ 100 kB per record for 24 layers
