"""Data, the training loop and its records, and the headline effect of batch norm."""
import numpy as np
import pytest

import bnlib

PAPER_NET = [784, 100, 100, 100, 10]


@pytest.fixture(scope="module")
def mnist():
    return bnlib.load_mnist5k()


def test_mnist5k_is_shipped_split_and_scaled(mnist):
    assert mnist.x_train.shape == (4000, 784) and mnist.x_test.shape == (1000, 784)
    assert mnist.x_train.dtype == np.float32
    assert 0.0 <= mnist.x_train.min() and mnist.x_train.max() == 1.0
    # stratified: 100 test images of each digit
    np.testing.assert_array_equal(np.bincount(mnist.y_test), np.full(10, 100))
    assert mnist.image_shape == (28, 28)


def test_split_is_seeded_and_disjoint():
    a, b, c = bnlib.load_digits(seed=0), bnlib.load_digits(seed=0), bnlib.load_digits(seed=1)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_test, c.x_test)
    train_rows = {r.tobytes() for r in a.x_train}
    assert sum(r.tobytes() in train_rows for r in a.x_test) < 5   # a few digits are pixel-identical duplicates
    assert len(a.x_train) + len(a.x_test) == 1797


def test_float64_loading():
    assert bnlib.load_digits(dtype=np.float64).x_train.dtype == np.float64


@pytest.mark.parametrize("make", [bnlib.make_spirals, bnlib.make_blobs])
def test_synthetic_data_is_seeded(make):
    a, b = make(seed=3), make(seed=3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert a.x_train.shape[1] == 2 and a.classes == 3


def test_minibatches_cover_each_epoch_once():
    it = bnlib.minibatches(10, 3, seed=0)
    epoch = np.concatenate([next(it) for _ in range(3)])        # 3 full batches; 1 sample dropped
    assert len(set(epoch.tolist())) == 9


def test_training_is_deterministic():
    data = bnlib.load_digits()
    runs = [bnlib.train(bnlib.MLP([64, 32, 10], norm="batch", seed=1), data, steps=60, batch_size=32, lr=0.2,
                        record_every=20, seed=4) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].loss, runs[1].loss)
    np.testing.assert_array_equal(runs[0].layers[0].pre.hist, runs[1].layers[0].pre.hist)


def test_history_records_per_layer_statistics():
    data = bnlib.load_digits()
    model = bnlib.MLP([64, 20, 16, 10], norm="batch", seed=0)
    h = bnlib.train(model, data, steps=50, batch_size=32, lr=0.1, record_every=10, probe_size=200)
    np.testing.assert_array_equal(h.record_steps, [0, 10, 20, 30, 40, 50])
    assert len(h.layers) == 2 and len(h.loss) == 50
    rec = h.layers[1]
    assert rec.pre.percentiles.shape == (6, 3) and rec.pre.unit_percentiles.shape == (6, 16, 3)
    assert np.all(np.diff(rec.pre.percentiles, axis=1) >= 0)          # 15th ≤ 50th ≤ 85th
    np.testing.assert_allclose(rec.pre.hist.sum(axis=1), 1.0, rtol=1e-12)
    assert rec.act.bin_edges[0] == 0.0 and rec.act.bin_edges[-1] == 1.0   # sigmoid outputs
    assert np.all((0 <= rec.saturated) & (rec.saturated <= 1))
    # records use batch statistics of the probe: the pre-activation is normalised (γ≈1, β≈0 early on)
    assert abs(h.layers[0].pre.mean[0]) < 1e-5 and abs(h.layers[0].pre.std[0] - 1) < 1e-3


def test_recording_does_not_change_training():
    data = bnlib.load_digits()
    a = bnlib.train(bnlib.MLP([64, 20, 10], norm="batch"), data, steps=40, batch_size=16, lr=0.1, record_every=1)
    b = bnlib.train(bnlib.MLP([64, 20, 10], norm="batch"), data, steps=40, batch_size=16, lr=0.1, record_every=40)
    np.testing.assert_array_equal(a.loss, b.loss)


def test_divergence_is_reported_not_raised():
    data = bnlib.load_digits()
    h = bnlib.train(bnlib.MLP([64, 32, 10], activation="tanh", init="he"), data, steps=200, batch_size=32,
                    lr=50.0, progress=False)
    assert h.diverged and len(h.loss) < 200 and h.message
    assert "diverged" in repr(h)


def test_sgd_momentum_matches_pytorch_form():
    p, g = np.array([1.0]), np.array([0.5])
    opt = bnlib.SGD([p], [g], lr=0.1, momentum=0.9)
    opt.step()          # v = 0.5            p = 1 − 0.05
    opt.step()          # v = 0.9·0.5 + 0.5  p = 0.95 − 0.095
    np.testing.assert_allclose(p, [1.0 - 0.05 - 0.095])


def test_bn_beats_plain_network_early_on_mnist(mnist):
    """The BN paper's Figure 1(a) effect, at lr 0.1 after 300 steps: a clear margin."""
    acc = {}
    for norm in (None, "batch"):
        h = bnlib.train(bnlib.MLP(PAPER_NET, norm=norm, seed=0), mnist, steps=300, batch_size=60, lr=0.1,
                        record_every=300, probe_size=100, progress=False)
        acc[norm] = h.final_test_acc
    assert acc["batch"] > 0.8 and acc["batch"] - acc[None] > 0.3, acc


def test_divergence_needs_patience_steps_above_the_limit():
    data = bnlib.load_digits()
    limit = 10 * np.log(10)
    kwargs = dict(steps=200, batch_size=32, lr=50.0, progress=False)
    eager = bnlib.train(bnlib.MLP([64, 32, 10], activation="tanh", init="he"), data, patience=1, **kwargs)
    patient = bnlib.train(bnlib.MLP([64, 32, 10], activation="tanh", init="he"), data, patience=5, **kwargs)
    assert eager.diverged and patient.diverged
    # the same seeded run: stopping later means a longer loss record, and the last 5 losses all above the limit
    assert len(patient.loss) > len(eager.loss)
    assert np.all(patient.loss[-4:] > limit)


def test_nan_in_the_first_batch_is_a_diverged_run_not_a_crash():
    data = bnlib.make_blobs(n_per_class=20, classes=2)
    data.x_train[4:] = np.nan                             # the first batch holds NaN rows; the 4 used
    h = bnlib.train(bnlib.MLP([2, 4, 2], norm="batch"), data, steps=5, batch_size=8, lr=0.1,  # for train
                    eval_size=4, progress=False)                                           # accuracy do not
    assert h.diverged and "NaN" in h.message and len(h.loss) == 0


# ------------------------------------------------------------- one buffer for all parameters
def _unpacked(model):
    """The same model with every parameter and gradient in an array of its own (SGD then
    updates them one by one, the reference for the one-buffer update)."""
    for layer in model.layers:
        for name in layer.params:
            if getattr(layer, name) is not None:
                setattr(layer, name, getattr(layer, name).copy())
                setattr(layer, "d" + name, getattr(layer, "d" + name).copy())
    return model


MODELS = {"mlp": lambda norm: bnlib.MLP([784, 16, 16, 10], norm=norm, seed=3),
          "skip": lambda norm: bnlib.MLP([784, 16, 16, 16, 10], activation="relu", norm=norm, skip=True, seed=3),
          "cnn": lambda norm: bnlib.CNN((1, 4, 8), norm=norm, seed=3)}


@pytest.mark.parametrize("kind,norm", [("mlp", None), ("mlp", "batch"), ("mlp", "group"), ("mlp", "renorm"),
                                       ("skip", "batch"), ("cnn", "batch"), ("cnn", "instance")])
def test_parameters_live_in_one_buffer_and_train_exactly_as_separate_arrays(kind, norm):
    """A Network keeps its parameters (and, apart, their gradients) as views of one flat array, so
    SGD updates it with one call; training gives bit for bit what updating each array does."""
    from bnlib.train import one_buffer
    packed, separate = MODELS[kind](norm), _unpacked(MODELS[kind](norm))
    assert one_buffer(packed.parameters()) is not None and one_buffer(packed.gradients()) is not None
    assert one_buffer(separate.parameters()) is None
    assert one_buffer(packed.parameters()).size == packed.num_parameters()
    data = bnlib.load_mnist5k(images=kind == "cnn")
    data = bnlib.Dataset(data.x_train[:600], data.y_train[:600], data.x_test[:50], data.y_test[:50],
                         "mnist5k", data.image_shape)
    runs = [bnlib.train(m, data, steps=12, batch_size=20, lr=0.05, momentum=0.9, weight_decay=1e-3,
                        probe_size=20, eval_size=20, progress=False) for m in (packed, separate)]
    np.testing.assert_array_equal(runs[0].loss, runs[1].loss)
    start = MODELS[kind](norm).parameters()
    for p, q in zip(packed.parameters(), separate.parameters()):
        np.testing.assert_array_equal(p, q)
    assert all(not np.array_equal(p, s) for p, s in zip(packed.parameters(), start)), "every array trained"


def test_a_deep_copy_is_packed_again_and_trains_on_its_own():
    """copy.deepcopy copies each view on its own: the copy packs its parameters again, and
    training it leaves the original untouched."""
    import copy
    from bnlib.train import one_buffer
    model = bnlib.MLP([784, 16, 10], norm="batch", seed=0)
    twin = copy.deepcopy(model)
    assert one_buffer(twin.parameters()) is not None
    assert not np.shares_memory(one_buffer(twin.parameters()), one_buffer(model.parameters()))
    assert twin.hidden[0][0] is twin.layers[0]          # the copy's structure points at its own layers
    before = [p.copy() for p in model.parameters()]
    data = bnlib.load_mnist5k()
    bnlib.train(twin, data, steps=5, batch_size=20, lr=0.1, progress=False)
    assert all(np.array_equal(p, b) for p, b in zip(model.parameters(), before))
    assert not all(np.array_equal(p, b) for p, b in zip(twin.parameters(), before))


def test_sgd_updates_a_subset_of_a_packed_model_only():
    """parameters=… (here the output layer: the end of the buffer) trains only those arrays."""
    model = bnlib.MLP([784, 16, 10], norm="batch", seed=0)
    before = [p.copy() for p in model.parameters()]
    last = model.layers[-1].parameters()
    bnlib.train(model, bnlib.load_mnist5k(), steps=5, batch_size=20, lr=0.1, parameters=last, progress=False)
    changed = [not np.array_equal(p, b) for p, b in zip(model.parameters(), before)]
    assert changed == [False] * (len(before) - 2) + [True, True]
