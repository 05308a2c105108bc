"""Datasets shipped with bnlib (offline), synthetic 2-D data, and a minibatch iterator.

A dataset is anything with x_train, y_train, x_test, y_test: `train` accepts your own too.
Licences and provenance: bnlib/data/NOTICE.md.
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .i18n import _

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass
class Dataset:
    """x_*: (N, features) floats, or images (N, C, H, W); y_*: (N,) integer labels 0..classes−1."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str = "dataset"
    image_shape: tuple = field(default=None)

    @property
    def classes(self):
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def __repr__(self):
        what = (f"{self.x_train.shape[1]} features" if self.x_train.ndim == 2 else
                "images " + "×".join(map(str, self.x_train.shape[1:])))
        return (f"Dataset({self.name!r}: {len(self.x_train)} train / {len(self.x_test)} test, "
                f"{what}, {self.classes} classes, {self.x_train.dtype})")


def stratified_split(y, test_fraction, seed):
    """Indices (train, test) with each class split in the same proportion, reproducibly."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):                       # a loop over classes, not samples
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(test_fraction * len(idx)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _load_images(name, scale, test_fraction, seed, dtype, as_images=False):
    with np.load(DATA_DIR / f"{name}.npz") as f:
        images, labels = f["images"], f["labels"].astype(np.int64)
    shape = (len(images), 1) + images.shape[1:] if as_images else (len(images), -1)   # (N, C=1, H, W)
    x = (images.reshape(shape) / scale).astype(dtype)
    tr, te = stratified_split(labels, test_fraction, seed)
    return Dataset(x[tr], labels[tr], x[te], labels[te], name, images.shape[1:])


def load_mnist5k(test_fraction=0.2, seed=0, dtype=np.float32, images=False):
    """5,000 MNIST digits (500 per class), pixels scaled to [0, 1], 784 features.

    Default split: 4,000 train / 1,000 test, stratified and seeded. MNIST: CC BY-SA 3.0.
    images=True gives x as images (N, 1, 28, 28) (one channel) for a CNN: the same split.
    """
    return _load_images("mnist5k", 255.0, test_fraction, seed, dtype, images)


def load_digits(test_fraction=0.2, seed=0, dtype=np.float32, images=False):
    """1,797 8×8 digits (UCI optdigits), pixels scaled to [0, 1], 64 features (images=True:
    (N, 1, 8, 8)). CC BY 4.0."""
    return _load_images("digits", 16.0, test_fraction, seed, dtype, images)


def _split(x, y, name, test_fraction, seed, dtype):
    tr, te = stratified_split(y, test_fraction, seed)
    x = x.astype(dtype)
    return Dataset(x[tr], y[tr], x[te], y[te], name)


def make_spirals(n_per_class=200, classes=3, noise=0.2, test_fraction=0.2, seed=0, dtype=np.float32):
    """Interleaved 2-D spiral arms, one per class: a problem a linear model cannot solve."""
    rng = np.random.default_rng(seed)
    r = np.tile(np.linspace(0.05, 1.0, n_per_class), classes)
    y = np.repeat(np.arange(classes), n_per_class)
    theta = 4.0 * r + 2 * np.pi * y / classes + noise * rng.standard_normal(r.size)
    x = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    return _split(x, y, "spirals", test_fraction, seed, dtype)


def make_blobs(n_per_class=200, classes=3, spread=1.0, test_fraction=0.2, seed=0, dtype=np.float32):
    """Gaussian blobs in 2-D with centres on a circle of radius 3."""
    rng = np.random.default_rng(seed)
    angle = 2 * np.pi * np.arange(classes) / classes
    centres = 3.0 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    y = np.repeat(np.arange(classes), n_per_class)
    x = centres[y] + spread * rng.standard_normal((y.size, 2))
    return _split(x, y, "blobs", test_fraction, seed, dtype)


def minibatches(n, batch_size, seed=0):
    """Endless index batches: each epoch a fresh shuffle of range(n), cut into full batches.

    The last incomplete batch of an epoch is dropped so every step sees exactly batch_size
    samples (batch statistics of a 3-sample leftover would be a different experiment).
    """
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(_("batch_size must be a positive integer, got {value!r}").format(value=batch_size))
    if batch_size > n:
        raise ValueError(_("batch_size {size} is larger than the {n} training samples; use at most {n}")
                         .format(size=batch_size, n=n))
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start:start + batch_size]
