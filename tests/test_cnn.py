"""Convolutional layers and the CNN: the new layers and the norms on (N, C, H, W) gradient-checked
in float64, whole CNNs with every norm, per-channel statistics, training on images (batch size 1
too), per-stage records, and clear errors."""
import numpy as np
import pytest

import bnlib
from bnlib import grad_check, rel_error

TOL = 1e-7


def rng(seed=0):
    return np.random.default_rng(seed)


def layer_gradients_check(layer, x):
    """Every gradient of a float64 layer (dx and each parameter's) against the numerical one."""
    r = rng(11)
    for p in layer.parameters():                  # off their initial 1/0 for a sharper check
        p += 0.3 * r.standard_normal(p.shape)
    y = layer.forward(x)
    dy = r.standard_normal(y.shape)
    dx = layer.backward(dy)
    grads = [g.copy() for g in layer.gradients()]
    assert rel_error(dx, grad_check(lambda v: layer.forward(v), x, dy)) <= TOL
    for p, g in zip(layer.parameters(), grads):
        assert rel_error(g, grad_check(lambda _: layer.forward(x), p, dy)) <= TOL


F64 = dict(dtype=np.float64)
LAYERS = {
    "Conv2d 3x3 pad 1": lambda: bnlib.Conv2d(2, 3, 3, padding=1, seed=1, **F64),
    "Conv2d 2x2 stride 2": lambda: bnlib.Conv2d(2, 3, 2, stride=2, seed=2, **F64),
    "BatchNorm spatial": lambda: bnlib.BatchNorm(2, **F64),
    "LayerNorm (C, H, W)": lambda: bnlib.LayerNorm((2, 5, 4), **F64),
    "GroupNorm spatial": lambda: bnlib.GroupNorm(2, groups=2, **F64),
    "InstanceNorm": lambda: bnlib.InstanceNorm(2, **F64),
    "MaxPool2d": lambda: bnlib.MaxPool2d(2),
    "Flatten": lambda: bnlib.Flatten(),
}


@pytest.mark.parametrize("name", LAYERS)
def test_image_layer_gradients_match_numerical(name):
    x = rng(12).standard_normal((3, 2, 5, 4)) * 2 + 1
    layer_gradients_check(LAYERS[name](), x)


@pytest.mark.parametrize("norm", [None, "batch", "layer", "group", "instance"])
def test_whole_cnn_gradient(norm):
    model = bnlib.CNN(channels=(1, 2, 4), classes=3, image_shape=(8, 8), norm=norm, groups=2, seed=3, **F64)
    r = rng(13)
    x, y = r.standard_normal((4, 1, 8, 8)), r.integers(0, 3, 4)
    for p in model.parameters():
        p += 0.1 * r.standard_normal(p.shape)
    loss, dlogits = bnlib.softmax_cross_entropy(model.forward(x), y)
    model.backward(dlogits)
    # a conv bias right before a norm that subtracts each channel's own mean (BN, IN, GN with one
    # channel per group) has gradient exactly 0: check that both are ~0, not a ratio of rounding noise
    absorbed = {id(conv.b) for conv, nrm, _ in model.hidden
                if isinstance(nrm, (bnlib.BatchNorm, bnlib.InstanceNorm))
                or isinstance(nrm, bnlib.GroupNorm) and nrm.groups == nrm.num_features}
    for p, g in zip(model.parameters(), [g.copy() for g in model.gradients()]):
        numerical = grad_check(lambda _: bnlib.softmax_cross_entropy(model.forward(x), y)[0], p)
        if id(p) in absorbed:
            assert np.abs(g).max() < 1e-12 and np.abs(numerical).max() < 1e-9
        else:
            assert rel_error(g, numerical) <= TOL


# ---------------------------------------------------------------- what each norm averages
def test_spatial_batchnorm_layer_keeps_one_statistic_per_channel_over_n_h_w():
    x = rng(14).standard_normal((4, 3, 5, 6)) * np.array([1.0, 5.0, 20.0])[None, :, None, None] + 7
    bn = bnlib.BatchNorm(3, dtype=np.float64)
    y = bn.forward(x)
    np.testing.assert_allclose(bn.cache.mean.ravel(), x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    m = 4 * 5 * 6                                          # N·H·W values per channel
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(axis=(0, 2, 3)) * m / (m - 1), rtol=1e-12)


def test_batch_of_one_image_trains_spatial_batchnorm_and_equals_instance_norm_then():
    x = rng(15).standard_normal((1, 3, 4, 4))
    y_bn = bnlib.BatchNorm(3, dtype=np.float64).forward(x)           # one image: each channel still has 16 values
    y_in = bnlib.InstanceNorm(3, dtype=np.float64).forward(x)
    np.testing.assert_allclose(y_bn, y_in, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        bnlib.BatchNorm(3).forward(np.ones((1, 3), np.float32))      # an MLP's BN has one value per feature


def test_instance_norm_removes_each_images_contrast_and_brightness():
    x = rng(16).random((3, 2, 6, 6))
    a, b = np.array([0.5, 2.0, 4.0])[:, None, None, None], np.array([-0.3, 0.1, 0.7])[:, None, None, None]
    inorm = bnlib.InstanceNorm(2, eps=1e-12, dtype=np.float64)     # exact but for ε (ε/a² in x's units)
    np.testing.assert_allclose(inorm.forward(a * x + b), inorm.forward(x), rtol=1e-8, atol=1e-8)


def test_layernorm_on_images_is_pytorchs_layernorm_c_h_w():
    x = rng(17).standard_normal((2, 3, 4, 5))
    ln = bnlib.LayerNorm((3, 4, 5), dtype=np.float64)
    assert ln.gamma.shape == (3, 4, 5)
    np.testing.assert_allclose(ln.forward(x), bnlib.layernorm_forward(x, np.ones((3, 4, 5)), np.zeros((3, 4, 5)))[0])
    assert repr(ln) == "LayerNorm((3, 4, 5), eps=1e-05)" and repr(bnlib.LayerNorm([3, 4, 5])).startswith("LayerNorm((3, 4, 5)")


# ---------------------------------------------------------------- the CNN
def test_cnn_structure_repr_and_shapes():
    m = bnlib.CNN(norm="batch")
    assert [type(l).__name__ for l in m.layers] == ["Conv2d", "BatchNorm", "ReLU", "MaxPool2d", "Conv2d", "BatchNorm",
                                                    "ReLU", "MaxPool2d", "Flatten", "Linear"]
    assert m.input_shape == (1, 28, 28) and m.classes == 10 and m.layers[-1].fan_in == 16 * 7 * 7
    assert len(m.hidden) == 2 and len(m.norm_layers()) == 2
    assert "CNN(channels=(1, 8, 16)" in repr(m) and "Conv2d(8, 16, kernel_size=3, stride=1, padding=1)" in repr(m)
    assert m.num_parameters() == (8 * 9 + 8) + 16 + (16 * 8 * 9 + 16) + 32 + (784 * 10 + 10)
    assert [type(n).__name__ for n in bnlib.CNN(norm="layer").norm_layers()] == ["LayerNorm", "LayerNorm"]
    assert bnlib.CNN(norm="layer").norm_layers()[1].gamma.shape == (16, 14, 14)
    logits, pre, act = m.forward(np.zeros((2, 1, 28, 28), np.float32), keep=True)
    assert logits.shape == (2, 10) and [z.shape for z in pre] == [(2, 8, 28, 28), (2, 16, 14, 14)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cnn_keeps_its_dtype_and_converts_its_input(dtype):
    m = bnlib.CNN(channels=(1, 2), image_shape=(6, 6), norm="batch", dtype=dtype)
    out = m.forward(rng(18).random((3, 1, 6, 6)))              # float64 data: the model converts it once
    assert out.dtype == dtype
    m.backward(bnlib.softmax_cross_entropy(out, np.zeros(3, int))[1])
    assert all(g.dtype == dtype for g in m.gradients())


def test_predict_in_chunks_equals_one_pass_and_restores_mode():
    m = bnlib.CNN(channels=(1, 3), image_shape=(8, 8), norm="batch", seed=4)
    x = rng(19).random((7, 1, 8, 8)).astype(np.float32)
    with m.evaluation():
        whole = m.forward(x).argmax(axis=1)
    np.testing.assert_array_equal(m.predict(x, chunk=3), whole)
    assert all(layer.training for layer in m.layers)


def test_cnn_trains_on_images_and_records_each_stage_per_channel():
    data = bnlib.load_digits(images=True)
    m = bnlib.CNN(channels=(1, 4, 8), image_shape=(8, 8), norm="batch", seed=0)
    h = bnlib.train(m, data, steps=60, batch_size=16, lr=0.1, record_every=30, probe_size=40, progress=False)
    assert h.final_test_acc > 0.6 and not h.diverged
    assert h.config["model"] == "CNN((1, 4, 8), relu, norm=batch)"
    assert [rec.pre.unit_percentiles.shape for rec in h.layers] == [(3, 4, 3), (3, 8, 3)]


@pytest.mark.parametrize("norm", ["batch", "layer", "group", "instance"])
def test_cnn_trains_at_batch_size_one(norm):
    data = bnlib.load_digits(images=True)
    m = bnlib.CNN(channels=(1, 4), image_shape=(8, 8), norm=norm, groups=2, seed=0)
    h = bnlib.train(m, data, steps=40, batch_size=1, lr=0.05, record_every=40, probe_size=10, progress=False)
    assert not h.diverged and np.isfinite(h.loss).all()


def test_load_mnist5k_as_images_is_the_same_split():
    flat, images = bnlib.load_mnist5k(), bnlib.load_mnist5k(images=True)
    assert images.x_train.shape == (4000, 1, 28, 28) and images.x_test.shape == (1000, 1, 28, 28)
    np.testing.assert_array_equal(images.x_test.reshape(1000, -1), flat.x_test)
    np.testing.assert_array_equal(images.y_train, flat.y_train)
    assert "images 1×28×28" in repr(images)
    assert bnlib.load_digits(images=True).x_train.shape[1:] == (1, 8, 8)


# ---------------------------------------------------------------- bad input
def test_cnn_input_errors_say_how_to_fix_them():
    m = bnlib.CNN()
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\).*x\.reshape\(len\(x\), 1, 28, 28\)"):
        m.forward(np.zeros((2, 784), np.float32))
    with pytest.raises(ValueError, match=r"batch axis: x\[None\]"):
        m.forward(np.zeros((1, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"load the data as images.*images=True"):
        bnlib.train(m, bnlib.load_mnist5k(), steps=1, batch_size=2, lr=0.1)
    with pytest.raises(ValueError, match=r"3 stages halve the image 3 times"):
        bnlib.CNN(channels=(1, 2, 2, 2), image_shape=(4, 4))
    with pytest.raises(ValueError, match=r"unknown norm 'renorm'"):
        bnlib.CNN(norm="renorm")
    with pytest.raises(ValueError, match=r"groups=3 does not divide the 8 channels"):
        bnlib.CNN(norm="group", groups=3)


def test_layer_input_errors():
    conv = bnlib.Conv2d(1, 8, 3, padding=1)
    with pytest.raises(ValueError, match=r"x must be 4-D.*x\[:, None\]"):
        conv.forward(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"Conv2d\(1, 8.*expects x of shape \(N, C, H, W\) with 1 channels"):
        conv.forward(np.zeros((2, 3, 28, 28), np.float32))
    with pytest.raises(TypeError, match=r"float32 parameters but got float64 input"):
        conv.forward(np.zeros((2, 1, 28, 28)))
    with pytest.raises(ValueError, match=r"kernel is larger than the padded input"):
        bnlib.Conv2d(1, 1, 5).forward(np.zeros((1, 1, 3, 3), np.float32))
    with pytest.raises(TypeError, match=r"stride must be an integer"):
        bnlib.Conv2d(1, 8, 3, stride=1.0)
    with pytest.raises(ValueError, match=r"kernel_size must be a positive integer"):
        bnlib.Conv2d(1, 8, 0)
    with pytest.raises(ValueError, match=r"InstanceNorm\(4.*with 4 channels"):
        bnlib.InstanceNorm(4).forward(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"LayerNorm\(\(8, 28, 28\).*\(N, 8, 28, 28\)"):
        bnlib.LayerNorm((8, 28, 28)).forward(np.zeros((2, 8, 14, 14), np.float32))
    with pytest.raises(ValueError, match=r"GroupNorm\(8.*with 8 channels"):
        bnlib.GroupNorm(8, 4).forward(np.zeros((2, 4, 3, 3), np.float32))
