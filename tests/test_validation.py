"""Bad input gets a ValueError/TypeError that says what was wrong and how to fix it."""
import numpy as np
import pytest

import bnlib

X = np.random.default_rng(0).standard_normal((8, 4))
ONES, ZEROS = np.ones(4), np.zeros(4)


def raises(exc, match, fn, *args, **kwargs):
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)


@pytest.mark.parametrize("fwd", [bnlib.batchnorm_forward, bnlib.layernorm_forward])
def test_one_dimensional_input(fwd):
    raises(ValueError, r"at least 2 dimensions.*x\[None, :\]", fwd, X[0], ONES, ZEROS)


def test_wrong_feature_count_in_layer():
    raises(ValueError, r"expects 5 features.*got x of shape \(8, 4\)", bnlib.BatchNorm(5).forward, X)
    raises(ValueError, r"expects x of shape \(N, 5\)", bnlib.Linear(5, 2).forward, X)
    raises(ValueError, r"takes 5 inputs.*flatten", bnlib.MLP([5, 3, 2]).forward, X)


@pytest.mark.parametrize("gamma, beta, name", [(np.ones(3), ZEROS, "gamma"), (ONES, np.zeros((1, 4)), "beta")])
def test_gamma_beta_wrong_shape(gamma, beta, name):
    raises(ValueError, rf"{name} must have shape \(4,\)", bnlib.batchnorm_forward, X, gamma, beta)


def test_layernorm_gamma_shape_is_normalized_shape():
    x = np.ones((2, 3, 4)) + np.arange(4)
    raises(ValueError, r"gamma must have shape \(3, 4\)", bnlib.layernorm_forward, x, np.ones(3), np.zeros(3))


def test_training_batch_of_one_sample():
    msg = r"single value.*at least 2 samples.*eval mode.*LayerNorm"
    raises(ValueError, msg, bnlib.batchnorm_forward, X[:1], ONES, ZEROS)
    raises(ValueError, msg, bnlib.BatchNorm(4, dtype=np.float64).forward, X[:1])


def test_batch_of_one_is_fine_in_eval_mode():
    bn = bnlib.BatchNorm(4, dtype=np.float64)
    bn.forward(X)
    bn.eval()
    assert bn.forward(X[:1]).shape == (1, 4)


@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "inf")])
@pytest.mark.filterwarnings("ignore:invalid value encountered")   # the BN layer computes first, checks σ² after
def test_non_finite_input(bad, word):
    x = X.copy()
    x[2, 1] = bad
    raises(bnlib.NonFiniteError, word, bnlib.batchnorm_forward, x, ONES, ZEROS)
    raises(ValueError, word, bnlib.BatchNorm(4, dtype=np.float64).forward, x)
    raises(ValueError, word, bnlib.MLP([4, 3, 2]).forward, x)
    bn = bnlib.BatchNorm(4, dtype=np.float64).eval()
    raises(ValueError, word, bn.forward, x)


@pytest.mark.parametrize("x, match", [
    (np.arange(8).reshape(4, 2), r"dtype int64.*astype\(np.float32\)"),
    (np.array([[1, "a"], [2, 3]], dtype=object), "object array"),
    ([[1.0, 2.0], [3.0]], "rectangular"),
])
def test_integer_object_and_ragged_arrays(x, match):
    raises(TypeError, match, bnlib.batchnorm_forward, x, np.ones(2), np.zeros(2))


def test_python_lists_of_floats_are_accepted():
    y, _ = bnlib.batchnorm_forward([[1.0, 2.0], [3.0, 5.0]], [1.0, 1.0], [0.0, 0.0])
    np.testing.assert_allclose(y, [[-1, -1], [1, 1]], atol=1e-5)


def test_groups_must_divide_channels():
    x = np.ones((2, 6, 3)) + np.arange(3)
    raises(ValueError, r"groups=4 does not divide the 6 channels; choose one of \[1, 2, 3, 6\]",
           bnlib.groupnorm_forward, x, np.ones(6), np.zeros(6), 4)
    raises(TypeError, "positive integer", bnlib.groupnorm_forward, x, np.ones(6), np.zeros(6), 1.5)
    raises(ValueError, "does not divide", bnlib.MLP, [4, 6, 2], norm="group", groups=4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(norm="batchnorm"), r"unknown norm 'batchnorm'; choose one of None, 'batch'"),
    (dict(activation="gelu"), r"unknown activation 'gelu'; choose one of 'sigmoid'"),
    (dict(init="glorot"), r"unknown init .glorot.; choose one of .xavier."),
    (dict(init=-1.0), r"non-negative std"),
    (dict(norm_position="middle"), r"unknown norm_position"),
])
def test_unknown_names(kwargs, match):
    raises(ValueError, match, bnlib.MLP, [4, 3, 2], **kwargs)


@pytest.mark.parametrize("eps", [0, -1e-5, "1e-5", None])
def test_non_positive_eps(eps):
    raises(ValueError, "eps must be a positive number", bnlib.batchnorm_forward, X, ONES, ZEROS, eps)
    raises(ValueError, "eps must be a positive number", bnlib.BatchNorm, 4, eps=eps)


@pytest.mark.parametrize("momentum", [-0.1, 1.5, "0.1"])
def test_momentum_outside_unit_interval(momentum):
    raises(ValueError, r"momentum must be in \[0, 1\].*None for a cumulative average", bnlib.BatchNorm, 4,
           momentum=momentum)


def test_batch_size_larger_than_data():
    data = bnlib.make_blobs(n_per_class=10, classes=2)
    raises(ValueError, r"batch_size 100 is larger than the 16 training samples", bnlib.train,
           bnlib.MLP([2, 4, 2]), data, steps=5, batch_size=100, lr=0.1)


def test_labels_out_of_range():
    logits = np.zeros((3, 4))
    raises(ValueError, r"labels must lie in 0..3 for 4 classes", bnlib.softmax_cross_entropy, logits, np.array([0, 4, 1]))
    raises(ValueError, "integers", bnlib.softmax_cross_entropy, logits, np.array([0.0, 1.0, 2.0]))
    data = bnlib.make_blobs(n_per_class=10, classes=3)
    raises(ValueError, r"labels 0..2, but the model has 2 outputs", bnlib.train, bnlib.MLP([2, 4, 2]), data,
           steps=5, batch_size=4, lr=0.1)


def test_train_argument_checks():
    data = bnlib.make_blobs(n_per_class=10, classes=2)
    model = bnlib.MLP([2, 4, 2])
    raises(ValueError, "lr must be positive", bnlib.train, model, data, steps=5, batch_size=4, lr=0)
    raises(ValueError, "steps must be a positive integer", bnlib.train, model, data, steps=0, batch_size=4, lr=0.1)
    raises(ValueError, "batch_size must be a positive integer", bnlib.train, model, data, steps=5, batch_size=0, lr=0.1)
    raises(TypeError, "x_train, y_train, x_test and y_test", bnlib.train, model, object(), steps=5, batch_size=4, lr=0.1)
    raises(ValueError, r"x_train must be \(N, 3\)", bnlib.train, bnlib.MLP([3, 4, 2]), data, steps=5, batch_size=4, lr=0.1)


def test_fold_batchnorm_checks_types_and_sizes():
    raises(TypeError, r"takes \(Linear, BatchNorm\)", bnlib.fold_batchnorm, bnlib.BatchNorm(3), bnlib.Linear(2, 3))
    raises(ValueError, "has 3 outputs but", bnlib.fold_batchnorm, bnlib.Linear(2, 3), bnlib.BatchNorm(4))


def test_backward_after_eval_forward_is_refused():
    bn = bnlib.BatchNorm(4, dtype=np.float64)
    bn.eval()
    bn.forward(X)
    raises(RuntimeError, r"call .train\(\) first", bn.backward, X)


def test_check_rejects_text_answers_and_skips_unattempted(capsys):
    with pytest.raises(bnlib.checks.NotYet, match="is text"):
        bnlib.check("75", 75.0, "x")
    assert bnlib.check(..., 75.0, "x") is False
    assert "not attempted" in capsys.readouterr().out


# A float64 array given to a float32 layer would be rounded silently (parameters, gradients and
# running statistics are float32): refuse it as PyTorch does, naming both dtypes and the fix.
@pytest.mark.parametrize("layer", [bnlib.Linear(4, 3), bnlib.BatchNorm(4), bnlib.BatchRenorm(4),
                                   bnlib.LayerNorm(4), bnlib.GroupNorm(4, groups=2)], ids=repr)
def test_float64_input_to_float32_layer_names_both_dtypes(layer):
    raises(TypeError, r"float32 parameters but got float64 input.*x\.astype\(np\.float32\).*dtype=np\.float64",
           layer.forward, X)
    assert layer.forward(X.astype(np.float32)).dtype == np.float32


def test_float32_input_to_float64_layer_is_refused_too():
    raises(TypeError, "float64 parameters but got float32 input", bnlib.BatchNorm(4, dtype=np.float64).forward,
           X.astype(np.float32))


def test_mlp_converts_its_input_to_its_dtype():
    # the model is the boundary where data comes in (as a data loader would): it converts once
    model = bnlib.MLP([4, 3, 2], norm="batch")
    assert model.forward(X).dtype == np.float32


def _forward_cache(kind):
    if kind == "batch":
        return bnlib.batchnorm_forward(X, ONES, ZEROS)
    if kind == "layer":
        return bnlib.layernorm_forward(X, ONES, ZEROS)
    return bnlib.groupnorm_forward(X, ONES, ZEROS, 2)


@pytest.mark.parametrize("kind, backward", [("batch", bnlib.batchnorm_backward),
                                            ("batch", bnlib.batchnorm_backward_graph),
                                            ("layer", bnlib.layernorm_backward),
                                            ("group", bnlib.groupnorm_backward)])
def test_backward_with_wrong_dy_shape(kind, backward):
    _, cache = _forward_cache(kind)
    raises(ValueError, r"dy must have the shape of the forward output \(8, 4\), got \(8,\)", backward, X[:, 0], cache)
    raises(ValueError, r"got \(4, 8\)", backward, X.T, cache)


@pytest.mark.parametrize("make", [lambda: bnlib.Linear(4, 3, dtype=np.float64), lambda: bnlib.Sigmoid(),
                                  lambda: bnlib.Tanh(), lambda: bnlib.ReLU(),
                                  lambda: bnlib.BatchNorm(4, dtype=np.float64),
                                  lambda: bnlib.LayerNorm(4, dtype=np.float64)])
def test_layer_backward_with_wrong_dy_shape(make):
    layer = make()
    out = layer.forward(X)
    raises(ValueError, r"must have the shape of the forward output", layer.backward, np.ones(out.shape[1]))


@pytest.mark.parametrize("make, name", [(lambda n: bnlib.BatchNorm(n), "num_features"),
                                        (lambda n: bnlib.LayerNorm(n), "num_features"),
                                        (lambda n: bnlib.BatchRenorm(n), "num_features"),
                                        (lambda n: bnlib.Linear(n, 5), "fan_in"),
                                        (lambda n: bnlib.Linear(5, n), "fan_out")])
@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_non_positive_or_fractional_sizes_are_refused(make, name, size):
    raises(ValueError, f"{name} must be a positive integer", make, size)
