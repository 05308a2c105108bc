"""Layer objects: Linear, Conv2d, MaxPool2d, Flatten, activations, BatchNorm/GhostBatchNorm/LayerNorm/
GroupNorm/InstanceNorm, softmax cross-entropy.

Every layer has the same few members:
    forward(x) -> y          remembers what backward needs
    backward(dy) -> dx       also fills the gradients of the layer's parameters
    parameters(), gradients() lists of arrays in the same order (updated in place by SGD)
    train(), eval()          switch mode (only BatchNorm behaves differently)
"""
import numpy as np

from . import conv, norm
from .i18n import _
from .validate import (as_float_array, check_choice, check_dtype, check_eps, check_finite, check_grad_shape,
                       check_ndim, check_size)

INITS = ("xavier", "he", "lecun")


class Layer:
    training = True
    params = ()        # names of the learned arrays (None where switched off, e.g. bias=False);
                       # the gradient of `name` is the array `d` + name, written in place by backward

    def parameters(self):
        return [getattr(self, name) for name in self.params if getattr(self, name) is not None]

    def gradients(self):
        return [getattr(self, "d" + name) for name in self.params if getattr(self, name) is not None]

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self

    def _check_input(self, x, features, dtype):
        x = as_float_array(x)
        if x.ndim != 2 or x.shape[1] != features:
            raise ValueError(_("{layer} expects x of shape (N, {features}), got {shape}; "
                               "check the layer sizes (a single sample needs a batch axis: x[None, :])")
                             .format(layer=repr(self), features=features, shape=x.shape))
        check_dtype(x, self, dtype)
        return x

    def _check_channels(self, x, channels, dtype, min_ndim, shape_hint):
        """x: (N, C, ...) with at least `min_ndim` axes and C = `channels` in axis 1."""
        x = as_float_array(x)
        if x.ndim < min_ndim or x.shape[1] != channels:
            raise ValueError(_("{layer} expects x of shape {hint} with {channels} channels (C) in axis 1, "
                               "got {shape}; check the channel counts of consecutive layers")
                             .format(layer=repr(self), hint=shape_hint, channels=channels, shape=x.shape))
        check_dtype(x, self, dtype)
        return x


def _init_std(init, fan_in, fan_out):
    """The standard deviation of the N(0, std²) initial weights for `init` (see Linear)."""
    if isinstance(init, str):
        check_choice(init, INITS, "init")
        return {"xavier": np.sqrt(2.0 / (fan_in + fan_out)), "he": np.sqrt(2.0 / fan_in),
                "lecun": np.sqrt(1.0 / fan_in)}[init]
    if isinstance(init, (int, float)) and not isinstance(init, bool) and init >= 0:
        return float(init)
    raise ValueError(_("init must be one of {choices} or a non-negative std, got {value!r}")
                     .format(choices=INITS, value=init))


class Linear(Layer):
    """y = x W + b, with x: (N, fan_in), W: (fan_in, fan_out), b: (fan_out,).

    init: "xavier" (normal with Glorot's std √(2/(fan_in+fan_out)), derived for tanh; the
    logistic sigmoid is usually given about 4× larger weights), "he" (std √(2/fan_in),
    suits ReLU), "lecun" (std √(1/fan_in)), or a number: the std of N(0, std²) weights.
    """
    params = ("W", "b")

    def __init__(self, fan_in, fan_out, init="xavier", bias=True, seed=0, dtype=np.float32):
        check_size(fan_in, "fan_in")
        check_size(fan_out, "fan_out")
        self.fan_in, self.fan_out, self.init = fan_in, fan_out, init
        std = _init_std(init, fan_in, fan_out)
        rng = np.random.default_rng(seed)
        self.W = (rng.standard_normal((fan_in, fan_out)) * std).astype(dtype)
        self.b = np.zeros(fan_out, dtype=dtype) if bias else None
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b) if bias else None

    def forward(self, x):
        self.x = self._check_input(x, self.fan_in, self.W.dtype)
        y = self.x @ self.W
        if self.b is not None:
            y += self.b
        return y

    def backward(self, dy, need_dx=True):
        """dW = xᵀ dy, db = Σ_n dy, dx = dy Wᵀ (skipped for the first layer: nothing needs it)."""
        check_grad_shape(dy, (len(self.x), self.fan_out))
        np.matmul(self.x.T, dy, out=self.dW)      # written in place: no 784×100 temporary
        if self.b is not None:
            dy.sum(axis=0, out=self.db)
        return dy @ self.W.T if need_dx else None

    def __repr__(self):
        return f"Linear({self.fan_in}, {self.fan_out}{'' if self.b is not None else ', bias=False'})"


class Conv2d(Layer):
    """2-D convolution (PyTorch's Conv2d, square kernel), x: (N, C_in, H, W) → y: (N, C_out, H_out, W_out).

        y[n, f, i, j] = b[f] + Σ_c Σ_a Σ_b  W[f, c, a, b] · x_pad[n, c, s·i + a, s·j + b]
        H_out = ⌊(H + 2·padding − k) / stride⌋ + 1      (W_out likewise)

    W: (C_out, C_in, k, k), b: (C_out,); x_pad is x with `padding` zeros on every side. Computed
    with im2col and one matrix product (bnlib.conv). init as for Linear, with fan_in = C_in·k·k
    and fan_out = C_out·k·k: "he" (std √(2/fan_in)) suits ReLU. Biases start at 0.
    """
    params = ("W", "b")

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, init="he", bias=True,
                 seed=0, dtype=np.float32):
        check_size(in_channels, "in_channels")
        check_size(out_channels, "out_channels")
        check_size(kernel_size, "kernel_size")
        conv.check_integer(stride, "stride", 1)
        conv.check_integer(padding, "padding", 0)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding, self.init = stride, padding, init
        k2 = kernel_size * kernel_size
        std = _init_std(init, in_channels * k2, out_channels * k2)
        rng = np.random.default_rng(seed)
        self.W = (rng.standard_normal((out_channels, in_channels, kernel_size, kernel_size)) * std).astype(dtype)
        self.b = np.zeros(out_channels, dtype=dtype) if bias else None
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b) if bias else None

    def output_shape(self, H, W):
        """(H_out, W_out) for H × W input images."""
        return (conv.output_size(H, self.kernel_size, self.stride, self.padding),
                conv.output_size(W, self.kernel_size, self.stride, self.padding))

    def forward(self, x):
        x = self._check_channels(conv.check_images(x), self.in_channels, self.W.dtype, 4, "(N, C, H, W)")
        conv.check_window(x.shape[2], x.shape[3], self.kernel_size, self.kernel_size, self.padding)
        y, self.cache = conv.convolve(x, self.W, self.b, self.stride, self.padding)
        return y

    def backward(self, dy, need_dx=True):
        """dW, db and (unless need_dx=False: the first layer, whose input needs no gradient) dx."""
        N, H, W = self.cache.x_shape[0], self.cache.x_shape[2], self.cache.x_shape[3]
        check_grad_shape(dy, (N, self.out_channels) + self.output_shape(H, W))
        dx, self.dW[...], db = conv.convolve_backward(dy, self.cache, need_dx)
        if self.b is not None:
            self.db[...] = db
        return dx

    def __repr__(self):
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}{'' if self.b is not None else ', bias=False'})")


class MaxPool2d(Layer):
    """Max pooling over non-overlapping k × k windows (stride k, PyTorch's MaxPool2d(k)):
    x: (N, C, H, W) → y: (N, C, ⌊H/k⌋, ⌊W/k⌋), y[n, c, i, j] = max of x[n, c, k·i + a, k·j + b]
    over a, b < k. backward sends each dy to its window's maximum (the first, if several tie)."""

    def __init__(self, kernel_size=2):
        check_size(kernel_size, "kernel_size")
        self.kernel_size = kernel_size

    def forward(self, x):
        x = conv.check_images(x)
        conv.check_window(x.shape[2], x.shape[3], self.kernel_size, self.kernel_size, 0, pooling=True)
        y, self.cache = conv.max_pool(x, self.kernel_size)
        return y

    def backward(self, dy):
        N, C, H, W = self.cache.x_shape
        check_grad_shape(dy, (N, C, H // self.kernel_size, W // self.kernel_size))
        return conv.max_pool_backward(dy, self.cache)

    def __repr__(self):
        return f"MaxPool2d(kernel_size={self.kernel_size})"


class Flatten(Layer):
    """(N, C, H, W) → (N, C·H·W), each image's values in a row (C first, then rows, then columns),
    as PyTorch's Flatten: what a Linear layer after the convolutions needs."""

    def forward(self, x):
        x = as_float_array(x)
        check_ndim(x, 2, "(N, ...)")
        self.shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dy):
        check_grad_shape(dy, (self.shape[0], int(np.prod(self.shape[1:]))))
        return dy.reshape(self.shape)

    def __repr__(self):
        return "Flatten()"


class Sigmoid(Layer):
    """σ(z) = 1 / (1 + e^(−z)); σ'(z) = σ(z)(1 − σ(z)). Saturated where σ < 0.05 or σ > 0.95."""

    def forward(self, z):
        with np.errstate(over="ignore"):          # e^(−z) → inf for z ≪ 0 gives σ = 0, as it should
            self.y = 1.0 / (1.0 + np.exp(-z))
        return self.y

    def backward(self, dy):
        check_grad_shape(dy, self.y.shape)
        return dy * self.y * (1.0 - self.y)

    def saturated(self, y):
        return (y < 0.05) | (y > 0.95)

    def __repr__(self):
        return "Sigmoid()"


class Tanh(Layer):
    """tanh(z); derivative 1 − tanh². Saturated where |tanh| > 0.95."""

    def forward(self, z):
        self.y = np.tanh(z)
        return self.y

    def backward(self, dy):
        check_grad_shape(dy, self.y.shape)
        return dy * (1.0 - self.y * self.y)

    def saturated(self, y):
        return np.abs(y) > 0.95

    def __repr__(self):
        return "Tanh()"


class ReLU(Layer):
    """max(0, z); derivative 1 where z > 0. "Saturated" here means switched off (output 0)."""

    def forward(self, z):
        self.mask = z > 0
        return z * self.mask

    def backward(self, dy):
        check_grad_shape(dy, self.mask.shape)
        return dy * self.mask

    def saturated(self, y):
        return y <= 0

    def __repr__(self):
        return "ReLU()"


ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU}


def _check_momentum(momentum):
    if momentum is not None and not (isinstance(momentum, (int, float)) and 0 <= momentum <= 1):
        raise ValueError(_("momentum must be in [0, 1] (the weight of the newest batch, PyTorch "
                           "convention) or None for a cumulative average, got {value!r}").format(value=momentum))


class Affine(Layer):
    """Base of the normalisation layers: the learned scale γ and shift β of y = γ x̂ + β."""
    params = ("gamma", "beta")

    def __init__(self, num_features, eps, dtype):
        for n in num_features if isinstance(num_features, tuple) else (num_features,):   # LayerNorm: a shape
            check_size(n, "num_features")
        check_eps(eps)
        self.num_features, self.eps = num_features, eps
        self.gamma = np.ones(num_features, dtype=dtype)
        self.beta = np.zeros(num_features, dtype=dtype)
        self.dgamma = np.zeros_like(self.gamma)
        self.dbeta = np.zeros_like(self.beta)


class BatchNorm(Affine):
    """Batch normalisation layer for x: (N, D) or (N, C, ...), with running statistics.

    Training:   y = γ (x − μ_B)/√(σ²_B + ε) + β     with this batch's μ_B and biased σ²_B, and
                running = (1 − momentum)·running + momentum·batch_stat
                (the running variance takes the unbiased σ²_B · m/(m − 1), as in PyTorch).
    Evaluation: y = γ (x − running_mean)/√(running_var + ε) + β   — no batch statistics at all.
    momentum=None keeps a cumulative average of all batches seen (PyTorch's convention).

    frozen = True freezes the statistics while the layer trains: training mode then normalises
    with the running estimates too, as evaluation does, and leaves them unchanged; γ and β still
    learn. Backward is that of a fixed affine map per feature (PyTorch: bn.eval() inside a model
    in training mode; Keras: bn.trainable = False, which also freezes γ and β):
        x̂ = (x − running_mean)/√(running_var + ε),   dγ = Σ dy·x̂,   dβ = Σ dy,
        dx = dy · γ/√(running_var + ε)
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float32):
        super().__init__(num_features, eps, dtype)
        _check_momentum(momentum)
        self.momentum = momentum
        self.running_mean = np.zeros(num_features, dtype=dtype)
        self.running_var = np.ones(num_features, dtype=dtype)
        self.num_batches_tracked = 0
        self.track_running_stats = True   # False: normalise with batch stats but leave running ones
        self.frozen = False               # True: running stats in training mode too, never updated

    def reset_running_stats(self):
        """Back to the start: running_mean 0, running_var 1, no batches counted (PyTorch's name)."""
        self.running_mean[...] = 0
        self.running_var[...] = 1
        self.num_batches_tracked = 0

    def forward(self, x):
        x = as_float_array(x)
        check_ndim(x, 2, "(N, D) or (N, C, ...)")
        if x.shape[1] != self.num_features:
            raise ValueError(_("{layer} expects {features} features in axis 1, got x of "
                               "shape {shape}; check the layer sizes")
                             .format(layer=repr(self), features=self.num_features, shape=x.shape))
        check_dtype(x, self, self.gamma.dtype)
        if self.training and not self.frozen:
            return self._forward_batch(x)
        check_finite(x)
        bshape = (1, -1) + (1,) * (x.ndim - 2)
        if self.training:                         # frozen statistics: keep x̂ and 1/σ for backward
            inv_std = (1.0 / np.sqrt(self.running_var + self.eps)).reshape(bshape)
            self.cache = (x - self.running_mean.reshape(bshape)) * inv_std, inv_std
            return self.gamma.reshape(bshape) * self.cache[0] + self.beta.reshape(bshape)
        scale = self.gamma / np.sqrt(self.running_var + self.eps)
        return (x - self.running_mean.reshape(bshape)) * scale.reshape(bshape) + self.beta.reshape(bshape)

    def _forward_batch(self, x):
        """Training mode: normalise with this batch's statistics and update the running ones."""
        axes = (0,) + tuple(range(2, x.ndim))
        norm.check_batch_size(x, axes)
        y, self.cache = norm.normalize_forward(x, self.gamma, self.beta, axes, axes, self.eps)
        check_finite(self.cache.var, "x (its batch variance)")   # NaN/inf anywhere in x shows here, cheaply
        if self.track_running_stats:
            self._update_running(x)
        return y

    def _update_running(self, x):
        m = x.size // x.shape[1]                  # values per feature in this batch
        batch_mean = self.cache.mean.reshape(-1)
        batch_var = self.cache.var.reshape(-1)    # biased σ²_B, as used to normalise
        self.num_batches_tracked += 1
        w = 1.0 / self.num_batches_tracked if self.momentum is None else self.momentum
        # running = (1 − w)·running + w·batch, in place (keeps the dtype and the array)
        self.running_mean *= 1 - w
        self.running_mean += w * batch_mean
        self.running_var *= 1 - w
        self.running_var += (w * m / (m - 1)) * batch_var       # unbiased: σ²_B · m/(m − 1)

    def backward(self, dy):
        if not self.training:
            raise RuntimeError(_("BatchNorm.backward after an eval-mode forward: call .train() first"))
        if self.frozen:
            return self._backward_frozen(dy)
        dx, self.dgamma[...], self.dbeta[...] = norm.batchnorm_backward(dy, self.cache)
        return dx

    def _backward_frozen(self, dy):
        """Backward of y = γ x̂ + β with x̂ = (x − running_mean)/√(running_var + ε): a fixed affine map."""
        x_hat, inv_std = self.cache
        check_grad_shape(dy, x_hat.shape)
        axes = (0,) + tuple(range(2, dy.ndim))
        self.dgamma[...] = np.sum(dy * x_hat, axis=axes)
        self.dbeta[...] = dy.sum(axis=axes)
        return dy * (self.gamma.reshape(inv_std.shape) * inv_std)

    def __repr__(self):
        mode = "train" if self.training else "eval"
        frozen = ", frozen statistics" if self.frozen else ""
        return f"BatchNorm({self.num_features}, eps={self.eps:g}, momentum={self.momentum}, mode={mode}{frozen})"


class GhostBatchNorm(BatchNorm):
    """Batch norm over parts of the batch ("ghost batches", Hoffer et al. 2017, Algorithm 1): in
    training mode the N samples are cut into N/n consecutive groups of n = virtual_batch_size, and
    each group is normalised with its own μ and σ² — what per-device BN does on each of N/n
    devices (the batch sharded in order, as a distributed data-parallel run splits it). γ, β and
    the running statistics are shared. x: (N, D) or (N, C, ...), N a multiple of n; internally x
    is viewed as (N/n, n, D), one normalisation per group g:

        μ_g = (1/n) Σ_{i in g} x_i,   σ²_g = (1/n) Σ_{i in g} (x_i − μ_g)²,   y = γ (x − μ_g)/√(σ²_g + ε) + β

    The running statistics take one update per batch, with the mean over the groups of μ_g and of
    the unbiased σ²_g · m/(m − 1) (m values per feature in a group), as Keras's
    BatchNormalization(virtual_batch_size=n) does; Hoffer et al. update once per group instead.
    virtual_batch_size = N is BatchNorm. Evaluation and frozen statistics are BatchNorm's.
    """

    def __init__(self, num_features, virtual_batch_size, eps=1e-5, momentum=0.1, dtype=np.float32):
        super().__init__(num_features, eps=eps, momentum=momentum, dtype=dtype)
        check_size(virtual_batch_size, "virtual_batch_size")
        self.virtual_batch_size = virtual_batch_size

    def _forward_batch(self, x):
        N, n = x.shape[0], self.virtual_batch_size
        if N % n:
            raise ValueError(_("{layer} splits each batch into groups of {size}, but this batch has {n} samples; "
                               "use a batch size that is a multiple of {size}")
                             .format(layer=repr(self), size=n, n=N))
        group_shape = (N // n, n) + x.shape[1:]
        axes = (1,) + tuple(range(3, len(group_shape)))            # within a group: its samples (and H, W)
        norm.check_batch_size(x.reshape(group_shape)[0], tuple(a - 1 for a in axes))
        param_axes = (0,) + tuple(range(2, x.ndim))
        y, self.cache = norm.normalize_forward(x, self.gamma, self.beta, axes, param_axes, self.eps, group_shape)
        check_finite(self.cache.var, "x (its batch variance)")
        if self.track_running_stats:
            self._update_running(x)
        return y

    def _update_running(self, x):
        c = self.cache                                              # mean, var: (groups, 1, C, 1, ...)
        m = x.size // x.shape[1] // c.mean.shape[0]                 # values per feature in one group
        batch_mean = c.mean.reshape(c.mean.shape[0], -1).mean(axis=0)
        batch_var = c.var.reshape(c.var.shape[0], -1).mean(axis=0)
        self.num_batches_tracked += 1
        w = 1.0 / self.num_batches_tracked if self.momentum is None else self.momentum
        self.running_mean *= 1 - w
        self.running_mean += w * batch_mean
        self.running_var *= 1 - w
        self.running_var += (w * m / (m - 1)) * batch_var       # unbiased within each group

    def backward(self, dy):
        if not self.training:
            raise RuntimeError(_("BatchNorm.backward after an eval-mode forward: call .train() first"))
        if self.frozen:
            return self._backward_frozen(dy)
        dx, self.dgamma[...], self.dbeta[...] = norm.normalize_backward(dy, self.cache)
        return dx

    def __repr__(self):
        mode = "train" if self.training else "eval"
        frozen = ", frozen statistics" if self.frozen else ""
        return (f"GhostBatchNorm({self.num_features}, virtual_batch_size={self.virtual_batch_size}, "
                f"eps={self.eps:g}, momentum={self.momentum}, mode={mode}{frozen})")


class BatchRenorm(BatchNorm):
    """Batch renormalisation (Ioffe 2017): batch norm that stays close to its inference form.

    Training, with σ_B = √(σ²_B + ε) and σ = √(running_var + ε):
        r = clip(σ_B / σ, 1/r_max, r_max),   d = clip((μ_B − running_mean) / σ, −d_max, d_max)
        x̂ = (x − μ_B)/σ_B · r + d,           y = γ x̂ + β
    r and d are treated as constants in the backward pass. With r = 1, d = 0 this is batch
    norm; with r, d unclipped, x̂ = (x − running_mean)/σ, the eval-mode output. r_max and d_max
    grow linearly from 1 and 0 over the first `warmup` batches. The paper (Ioffe 2017, §4) keeps
    r_max = 1, d_max = 0 for 5,000 steps and then relaxes them to 3 and 5 over tens of thousands,
    and keeps a moving average of σ_B; bnlib, for runs of a few hundred steps, relaxes both over
    `warmup` steps and keeps the running variance, as BatchNorm does.
    Eval mode is BatchNorm's.
    """

    def __init__(self, num_features, r_max=3.0, d_max=5.0, warmup=100, eps=1e-5, momentum=0.1,
                 dtype=np.float32):
        super().__init__(num_features, eps=eps, momentum=momentum, dtype=dtype)
        self.r_max, self.d_max, self.warmup = r_max, d_max, warmup

    def limits(self):
        """(r_max, d_max) now: relaxed linearly from (1, 0) over the warm-up."""
        t = min(1.0, self.num_batches_tracked / self.warmup) if self.warmup else 1.0
        return 1.0 + t * (self.r_max - 1.0), t * self.d_max

    def forward(self, x):
        if not self.training or self.frozen:
            return super().forward(x)
        x = self._check_input(x, self.num_features, self.gamma.dtype)
        norm.check_batch_size(x, (0,))
        r_max, d_max = self.limits()
        mu_b, var_b = x.mean(axis=0), x.var(axis=0)
        sigma = np.sqrt(self.running_var + self.eps)
        self.r = np.clip(np.sqrt(var_b + self.eps) / sigma, 1.0 / r_max, r_max).astype(x.dtype)
        self.d = np.clip((mu_b - self.running_mean) / sigma, -d_max, d_max).astype(x.dtype)
        # γ x̂ + β with x̂ = r·x̂_B + d is batch norm with scale γ·r and shift γ·d + β
        y, self.cache = norm.normalize_forward(x, self.gamma * self.r, self.gamma * self.d + self.beta,
                                               (0,), (0,), self.eps)
        check_finite(self.cache.var, "x (its batch variance)")
        if self.track_running_stats:
            self._update_running(x)
        return y

    def backward(self, dy):
        if not self.training:
            raise RuntimeError(_("BatchNorm.backward after an eval-mode forward: call .train() first"))
        if self.frozen:
            return self._backward_frozen(dy)
        dx, sum_dy_xhat_b, sum_dy = norm.batchnorm_backward(dy, self.cache)
        self.dgamma[...] = self.r * sum_dy_xhat_b + self.d * sum_dy     # ∂y/∂γ = r·x̂_B + d
        self.dbeta[...] = sum_dy
        return dx

    def __repr__(self):
        return (f"BatchRenorm({self.num_features}, r_max={self.r_max:g}, d_max={self.d_max:g}, "
                f"warmup={self.warmup}, momentum={self.momentum})")


class LayerNorm(Affine):
    """Layer normalisation over all the values of each sample. Same in train and eval.

    x: (N, D) with num_features = D, or (N, C, H, W) with num_features = (C, H, W), PyTorch's
    LayerNorm([C, H, W]): one μ and σ² per image over its C·H·W values, and γ, β of shape
    (C, H, W) — one pair per value of an image, not per channel.
    """

    def __init__(self, num_features, eps=1e-5, dtype=np.float32):
        if isinstance(num_features, list):
            num_features = tuple(num_features)
        super().__init__(num_features, eps, dtype)

    def forward(self, x):
        if isinstance(self.num_features, tuple):
            x = as_float_array(x)
            if x.shape[1:] != self.num_features:
                raise ValueError(_("{layer} expects x of shape (N, {shape}) — each sample's values in the "
                                   "normalized shape — got {got}; check the layer sizes")
                                 .format(layer=repr(self), shape=", ".join(map(str, self.num_features)),
                                         got=x.shape))
            check_dtype(x, self, self.gamma.dtype)
        else:
            x = self._check_input(x, self.num_features, self.gamma.dtype)
        y, self.cache = norm.layernorm_forward(x, self.gamma, self.beta, self.eps)
        return y

    def backward(self, dy):
        dx, self.dgamma[...], self.dbeta[...] = norm.layernorm_backward(dy, self.cache)
        return dx

    def __repr__(self):
        return f"LayerNorm({self.num_features}, eps={self.eps:g})"


class GroupNorm(LayerNorm):
    """Group normalisation of x: (N, C) or (N, C, H, W): the C channels split into `groups` groups of
    C/G neighbouring channels; one μ and σ² per sample and group (over (C/G)·H·W values); γ, β per
    channel (C,). Same in train and eval."""

    def __init__(self, num_features, groups, eps=1e-5, dtype=np.float32):
        super().__init__(num_features, eps, dtype)
        self.groups = groups
        # validates groups now, not mid-training (2 positions per channel: G = C is fine for images)
        norm.groupnorm_forward(np.arange(2 * num_features, dtype=dtype).reshape(1, num_features, 2),
                               self.gamma, self.beta, groups, eps)

    def forward(self, x):
        x = self._check_channels(x, self.num_features, self.gamma.dtype, 2, "(N, C) or (N, C, H, W)")
        y, self.cache = norm.groupnorm_forward(x, self.gamma, self.beta, self.groups, self.eps)
        return y

    def __repr__(self):
        return f"GroupNorm({self.num_features}, groups={self.groups}, eps={self.eps:g})"


class InstanceNorm(LayerNorm):
    """Instance normalisation of images x: (N, C, H, W): one μ and σ² per image and channel, over
    its H·W values; γ, β per channel (C,). Same in train and eval (backward: LayerNorm's, the same
    closed form over other axes).

        μ[n, c] = mean over h, w of x[n, c, h, w],   σ²[n, c] likewise,
        y = γ[c] (x − μ[n, c]) / √(σ²[n, c] + ε) + β[c]

    PyTorch's InstanceNorm2d leaves out γ and β by default (affine=False); this is
    InstanceNorm2d(C, affine=True), like bnlib's other norms.
    """

    def forward(self, x):
        x = self._check_channels(x, self.num_features, self.gamma.dtype, 3, "(N, C, H, W)")
        y, self.cache = norm.instancenorm_forward(x, self.gamma, self.beta, self.eps)
        return y

    def __repr__(self):
        return f"InstanceNorm({self.num_features}, eps={self.eps:g})"


def softmax_cross_entropy(logits, y):
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    logits: (N, K); y: (N,) integers in 0..K−1.
        p = softmax(logits),   loss = −(1/N) Σ log p[n, y_n],   dlogits = (p − onehot(y)) / N
    Returns (loss, dlogits).
    """
    logits = as_float_array(logits, "logits")
    check_ndim(logits, 2, "(N, K)", "logits")
    y = np.asarray(y)
    N, K = logits.shape
    if y.shape != (N,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(_("labels must be integers of shape ({n},), got {dtype} of shape {shape}")
                         .format(n=N, dtype=y.dtype, shape=y.shape))
    if y.min() < 0 or y.max() >= K:
        raise ValueError(_("labels must lie in 0..{last} for {classes} classes, got values from {low} to {high}")
                         .format(last=K - 1, classes=K, low=y.min(), high=y.max()))
    shifted = logits - logits.max(axis=1, keepdims=True)     # avoids overflow in exp
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(N)
    loss = -log_p[rows, y].sum() / N                         # (.mean() costs 3× more at this size)
    dlogits = np.exp(log_p)
    dlogits[rows, y] -= 1
    return float(loss), dlogits / N


def fold_batchnorm(linear, bn):
    """A Linear layer equal to `bn` (in eval mode) applied after `linear`, for deployment.

    BN in eval mode is an affine map per feature, so it merges into the weights:
        s  = γ / √(running_var + ε)
        W' = W · s   (each output column scaled),     b' = (b − running_mean) · s + β
    """
    if not isinstance(linear, Linear) or not isinstance(bn, BatchNorm):
        raise TypeError(_("fold_batchnorm takes (Linear, BatchNorm), got ({first}, {second})")
                        .format(first=type(linear).__name__, second=type(bn).__name__))
    if linear.fan_out != bn.num_features:
        raise ValueError(_("{linear} has {outputs} outputs but {bn} normalises {features} features")
                         .format(linear=repr(linear), outputs=linear.fan_out, bn=repr(bn), features=bn.num_features))
    s = bn.gamma / np.sqrt(bn.running_var + bn.eps)
    b = linear.b if linear.b is not None else np.zeros(linear.fan_out, dtype=linear.W.dtype)
    folded = Linear(linear.fan_in, linear.fan_out, init=0.0, dtype=linear.W.dtype)
    folded.W[...] = linear.W * s
    folded.b[...] = (b - bn.running_mean) * s + bn.beta
    return folded
