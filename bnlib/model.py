"""MLP: Linear → [norm] → activation, repeated, then a Linear that gives the logits.
CNN: Conv 3×3 → [norm] → activation → max-pool 2, repeated, then Flatten and a Linear.

    MLP([784, 100, 100, 100, 10], activation="sigmoid", norm="batch")
    MLP([784] + [64] * 12 + [10], activation="relu", norm="batch", init="he", skip=True)   # residual blocks
    CNN(channels=(1, 8, 16), norm="batch")

norm_position="before" puts the normalisation between Linear and activation (the BN paper's
choice: the activation sees normalised inputs); "after" puts it after the activation.
Both share `Network`: the same members, so `bnlib.train` trains either and records each hidden
layer (MLP) or stage (CNN) the same way.
"""
import copy
from contextlib import contextmanager

import numpy as np

from .i18n import _
from .layers import (ACTIVATIONS, BatchNorm, BatchRenorm, Conv2d, Flatten, GhostBatchNorm, GroupNorm, InstanceNorm,
                     Layer, LayerNorm, Linear, MaxPool2d)
from .validate import as_float_array, check_choice, check_finite, check_ndim, check_size

NORMS = (None, "batch", "layer", "group", "renorm", "ghost")
CNN_NORMS = (None, "batch", "layer", "group", "instance")
POSITIONS = ("before", "after")


class Network:
    """What MLP and CNN share: a list of layers run in order, and `hidden`, one (layer, norm or
    None, activation) triple per hidden layer or stage. Subclasses build them and check inputs."""

    layers = ()
    hidden = ()

    def _run(self, x, keep):
        """Every layer in order on a checked x of the model's dtype; keep=True also returns, per
        hidden layer, the pre-activation z (what the activation receives) and the activation output."""
        pre, act = [], []
        for layer in self.layers:
            if keep and isinstance(layer, tuple(ACTIVATIONS.values())):
                pre.append(x)
                x = layer.forward(x)
                act.append(x)
            else:
                x = layer.forward(x)
        return (x, pre, act) if keep else x

    def __call__(self, x, keep=False):
        return self.forward(x, keep)

    def backward(self, dlogits):
        """Backpropagate dL/dlogits through every layer; fills each layer's gradients."""
        d = dlogits
        for layer in reversed(self.layers[1:]):
            d = layer.backward(d)
        self.layers[0].backward(d, need_dx=False)   # the input pixels need no gradient

    def _pack_parameters(self):
        """Move every parameter into one flat array and every gradient into another. The layers
        keep their W, b, γ, β … as views into them, so nothing else changes, and SGD updates the
        whole model with one p −= η·g instead of one per array (for the BN paper's MLP: 2 numpy
        calls per step instead of 28)."""
        slots = [(layer, name) for layer in self.layers for name in layer.params if getattr(layer, name) is not None]
        for prefix in ("", "d"):                      # the parameters, then their gradients
            arrays = [getattr(layer, prefix + name) for layer, name in slots]
            flat = np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0, self.dtype)
            start = 0
            for (layer, name), a in zip(slots, arrays):
                setattr(layer, prefix + name, flat[start:start + a.size].reshape(a.shape))
                start += a.size

    def __deepcopy__(self, memo):
        # copy.deepcopy copies each view on its own array: pack the copy again
        twin = copy.copy(self)
        memo[id(self)] = twin
        twin.__dict__.update(copy.deepcopy(self.__dict__, memo))
        twin._pack_parameters()
        return twin

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def gradients(self):
        return [g for layer in self.layers for g in layer.gradients()]

    def norm_layers(self):
        return [nrm for _, nrm, _ in self.hidden if nrm is not None]

    def train(self):
        for layer in self.layers:
            layer.train()
        return self

    def eval(self):
        for layer in self.layers:
            layer.eval()
        return self

    @contextmanager
    def evaluation(self):
        """`with model.evaluation():` runs in eval mode (BN uses its running averages); the
        mode each layer had is restored afterwards."""
        modes = [layer.training for layer in self.layers]
        self.eval()
        try:
            yield self
        finally:
            for layer, mode in zip(self.layers, modes):
                layer.training = mode

    @contextmanager
    def batch_statistics(self):
        """`with model.batch_statistics():` runs in training mode — each batch normalised with
        its own μ_B and σ²_B — but batch norm leaves its running averages untouched, so looking
        at the model does not change it. Modes are restored afterwards."""
        modes = [layer.training for layer in self.layers]
        bns = [layer for layer in self.layers if isinstance(layer, BatchNorm)]
        tracking = [bn.track_running_stats for bn in bns]
        self.train()
        for bn in bns:
            bn.track_running_stats = False
        try:
            yield self
        finally:
            for layer, mode in zip(self.layers, modes):
                layer.training = mode
            for bn, track in zip(bns, tracking):
                bn.track_running_stats = track

    @contextmanager
    def frozen_statistics(self):
        """`with model.frozen_statistics(): bnlib.train(model, ...)` trains the weights, γ and β
        while every batch norm layer normalises with its running averages and leaves them as they
        are (BatchNorm.frozen). PyTorch: call bn.eval() on each BN layer after every model.train();
        Keras: bn.trainable = False, which runs BN in inference mode and also freezes γ and β.
        Each layer's frozen flag is restored afterwards."""
        bns = [layer for layer in self.layers if isinstance(layer, BatchNorm)]
        frozen = [bn.frozen for bn in bns]
        for bn in bns:
            bn.frozen = True
        try:
            yield self
        finally:
            for bn, was in zip(bns, frozen):
                bn.frozen = was

    def predict(self, x):
        """Class predictions in eval mode (the mode the model was in is restored)."""
        with self.evaluation():
            return self.forward(x).argmax(axis=1)

    def num_parameters(self):
        return sum(p.size for p in self.parameters())

    def _layer_lines(self):
        return "\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers))

    def _parameter_count(self):
        return _("{count:,} parameters").format(count=self.num_parameters())


class SkipStart(Layer):
    """Where a skip connection leaves the chain: passes u on unchanged and keeps it for its
    SkipAdd. Backward: the gradient of u is the branch's plus the one that came along the skip."""

    def forward(self, u):
        self.u = u
        return u

    def backward(self, du):
        return du + self.du_skip            # ∂L/∂u = (through f) + (along the identity)

    def __repr__(self):
        return "SkipStart(u)"


class SkipAdd(Layer):
    """Where the skip connection rejoins: u' = f(u) + u, with u kept by its SkipStart.
    Backward: ∂L/∂u' flows on into f and, unchanged, along the skip (∂u'/∂u = 1 + ∂f/∂u)."""

    def __init__(self, start):
        self.start = start

    def forward(self, f_u):
        return f_u + self.start.u

    def backward(self, du_out):
        self.start.du_skip = du_out
        return du_out

    def __repr__(self):
        return "SkipAdd(u + f(u))"


class MLP(Network):
    """A multilayer perceptron whose hidden layers may be normalised.

    sizes: [inputs, hidden..., classes]. activation: "sigmoid", "tanh" or "relu".
    norm: None, "batch", "layer", "group" (with `groups`), "renorm" (batch renormalisation) or
    "ghost" (GhostBatchNorm: batch norm over groups of `virtual_batch_size` samples, as per-device
    BN on several devices does). init: see `Linear`.
    Hidden layer l computes, with norm_position="before",
        z = Norm(h W + b),   h' = act(z)          ("pre-activation" z is what act receives)
    and with "after":  z = h W + b,  h' = Norm(act(z)).

    skip=True adds skip connections (residual blocks). Write u for the output of a Linear
    layer. Every hidden Linear after the first that keeps the width (the first changes it, and
    the output layer is not hidden) becomes a block with the norm and activation before it:
        u' = u + f(u),   f(u) = act(Norm(u)) W + b      (norm_position="before")
                         f(u) = Norm(act(u)) W + b      (norm_position="after")
    The layers and their order are those of skip=False (SkipStart/SkipAdd mark where u leaves
    and rejoins), so skip=True against skip=False changes one thing only. Norm and activation
    sit at the start of the branch f, the "full pre-activation" block of He, Zhang, Ren & Sun
    (2016, "Identity Mappings in Deep Residual Networks", §4, Fig. 4(e)): nothing but the
    addition lies on the path from u to u', so ∂u'/∂u = 1 + ∂f/∂u and the gradient reaches every
    block directly. Inside f the BN paper's order (norm right before the activation) is kept.
    Elsewhere the block works worse in their §4: an activation after the addition (the original
    ResNet) sits on the identity path, and a ReLU at the end of f makes f ≥ 0, so u can only grow.
    zero_init_residual=True starts every block as the identity: the last layer of each branch —
    here its Linear — starts at W = 0, b = 0, so f(u) = 0 at step 0. (Goyal et al. 2017 set γ = 0
    in the BN that ends each of their ResNet blocks. In this block the norm comes before a ReLU,
    and γ = 0 there would give relu(0·x̂ + 0) = 0 with derivative 0: the branch would never learn.)
    """

    def __init__(self, sizes, activation="sigmoid", norm=None, norm_position="before",
                 init="xavier", seed=0, groups=4, momentum=0.1, eps=1e-5, dtype=np.float32,
                 skip=False, zero_init_residual=False, virtual_batch_size=None):
        if len(sizes) < 2 or any(not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
            raise ValueError(_("sizes must list at least two positive integers [inputs, ..., classes], got {value!r}")
                             .format(value=sizes))
        check_choice(activation, tuple(ACTIVATIONS), "activation")
        check_choice(norm, NORMS, "norm")
        check_choice(norm_position, POSITIONS, "norm_position")
        check_choice(skip, (False, True), "skip")
        check_choice(zero_init_residual, (False, True), "zero_init_residual")
        if zero_init_residual and not skip:
            raise ValueError(_("zero_init_residual=True starts each residual block as the identity, "
                               "so it needs skip=True"))
        if (norm == "ghost") != (virtual_batch_size is not None):
            raise ValueError(_("norm=\"ghost\" and virtual_batch_size go together: norm=\"ghost\", "
                               "virtual_batch_size=n normalises groups of n samples; got norm={norm!r}, "
                               "virtual_batch_size={size!r}").format(norm=norm, size=virtual_batch_size))
        self.virtual_batch_size = virtual_batch_size
        self.sizes, self.activation, self.norm, self.norm_position = list(sizes), activation, norm, norm_position
        self.skip, self.zero_init_residual = skip, zero_init_residual
        self.init, self.seed, self.dtype = init, seed, np.dtype(dtype)
        seeds = np.random.SeedSequence(seed).generate_state(len(sizes) - 1)
        self.layers = []        # every layer, in order
        self.hidden = []        # per hidden layer: (linear, norm or None, activation)
        for l, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            linear = Linear(fan_in, fan_out, init=init, seed=int(seeds[l]), dtype=dtype)
            self.layers.append(linear)
            if l == len(sizes) - 2:
                break                               # the output layer: logits, no activation
            act = ACTIVATIONS[activation]()
            nrm = self._make_norm(fan_out, groups, momentum, eps, dtype)
            block = [nrm, act] if norm_position == "before" else [act, nrm]
            self.layers += [layer for layer in block if layer is not None]
            self.hidden.append((linear, nrm, act))
        if skip:
            self._add_skips()
        self._pack_parameters()

    def _add_skips(self):
        """Put a SkipStart after each Linear whose next Linear is a residual block, and a SkipAdd
        after that block's Linear; with zero_init_residual, the block's Linear starts at 0."""
        linears = [layer for layer in self.layers if isinstance(layer, Linear)]
        blocks = {id(lin) for lin in linears[1:-1] if lin.fan_in == lin.fan_out}
        if not blocks:
            raise ValueError(_("skip=True needs hidden layers of equal width after the first, e.g. "
                               "[784, 64, 64, 64, 10]; got sizes {sizes}").format(sizes=self.sizes))
        after = dict(zip(map(id, linears), linears[1:]))     # each Linear → the Linear after it
        layers, start = [], None
        for layer in self.layers:
            layers.append(layer)
            if not isinstance(layer, Linear):
                continue
            if id(layer) in blocks:                    # the block's branch ends with this Linear
                layers.append(SkipAdd(start))
                if self.zero_init_residual:
                    layer.W[...] = 0
                    layer.b[...] = 0
            if id(after.get(id(layer))) in blocks:     # the next Linear is a block: u leaves here
                start = SkipStart()
                layers.append(start)
        self.layers = layers

    def residual_blocks(self):
        """How many residual blocks (skip connections) the network has."""
        return sum(isinstance(layer, SkipAdd) for layer in self.layers)

    def _make_norm(self, features, groups, momentum, eps, dtype):
        if self.norm == "batch":
            return BatchNorm(features, eps=eps, momentum=momentum, dtype=dtype)
        if self.norm == "renorm":
            return BatchRenorm(features, eps=eps, momentum=momentum, dtype=dtype)
        if self.norm == "ghost":
            return GhostBatchNorm(features, self.virtual_batch_size, eps=eps, momentum=momentum, dtype=dtype)
        if self.norm == "layer":
            return LayerNorm(features, eps=eps, dtype=dtype)
        if self.norm == "group":
            return GroupNorm(features, groups, eps=eps, dtype=dtype)
        return None

    def forward(self, x, keep=False):
        """Logits (N, classes) for x (N, inputs). keep=True also returns, per hidden layer,
        the pre-activation z (what the activation receives) and the activation output."""
        x = as_float_array(x)
        check_ndim(x, 2, "(N, inputs)")
        if x.shape[1] != self.sizes[0]:
            raise ValueError(_("this MLP takes {inputs} inputs per sample, got x of shape {shape}; "
                               "flatten images first, e.g. x.reshape(len(x), -1)")
                             .format(inputs=self.sizes[0], shape=x.shape))
        check_finite(x)
        return self._run(x.astype(self.dtype, copy=False), keep)

    @property
    def input_shape(self):
        """The shape of one sample: (inputs,)."""
        return (self.sizes[0],)

    @property
    def classes(self):
        return self.sizes[-1]

    def label(self):
        """A one-line name, for History and tables."""
        ghost = f" of {self.virtual_batch_size}" if self.norm == "ghost" else ""
        return f"MLP({self.sizes}, {self.activation}, norm={self.norm}{ghost}{', skip' if self.skip else ''})"

    def __repr__(self):
        skip = ""
        if self.skip:
            skip = f", skip=True{', zero_init_residual=True' if self.zero_init_residual else ''}"
        ghost = f", virtual_batch_size={self.virtual_batch_size}" if self.norm == "ghost" else ""
        return (f"MLP({self.sizes}, activation={self.activation!r}, norm={self.norm!r}{ghost}, "
                f"norm_position={self.norm_position!r}, init={self.init!r}, seed={self.seed}{skip}, "
                f"dtype={self.dtype.name}) — {self._parameter_count()}\n{self._layer_lines()}")


class CNN(Network):
    """A small convolutional network whose stages may be normalised.

        CNN(channels=(1, 8, 16), classes=10, image_shape=(28, 28), norm="batch")

    One stage per pair of consecutive channel counts; stage s turns h: (N, C_s, H, W) into
        u = Conv3×3(h)   (C_{s+1} filters, padding 1: H × W kept)
        z = Norm(u),  a = act(z),  h' = MaxPool2(a)        (h': (N, C_{s+1}, H/2, W/2))
    then Flatten and a Linear layer give the logits (N, classes). norm:
        None        no normalisation
        "batch"     BatchNorm per channel: one μ, σ² per channel over the N·H·W values
        "layer"     LayerNorm([C, H, W]): one μ, σ² per image over its C·H·W values
        "group"     GroupNorm with `groups` groups: per image over (C/G)·H·W values
        "instance"  InstanceNorm: one μ, σ² per image and channel over its H·W values
    init: see `Linear` ("he" suits ReLU). x: (N, channels[0], H, W) with (H, W) = image_shape.
    """

    def __init__(self, channels=(1, 8, 16), classes=10, image_shape=(28, 28), norm=None, activation="relu",
                 groups=4, init="he", seed=0, momentum=0.1, eps=1e-5, dtype=np.float32):
        channels, image_shape = tuple(channels), tuple(image_shape)
        if len(channels) < 2 or len(image_shape) != 2:
            raise ValueError(_("channels must list at least two channel counts (input, stage 1, ...) and "
                               "image_shape must be (H, W), got channels={channels!r}, image_shape={shape!r}")
                             .format(channels=channels, shape=image_shape))
        for n in channels:
            check_size(n, "channels")
        for n in image_shape + (classes,):
            check_size(n, "image_shape and classes")
        stages = len(channels) - 1
        if min(image_shape) < 2 ** stages:
            raise ValueError(_("{stages} stages halve the image {stages} times, but image_shape {shape} is "
                               "smaller than {size}×{size}; use fewer channel counts or larger images")
                             .format(stages=stages, shape=image_shape, size=2 ** stages))
        check_choice(activation, tuple(ACTIVATIONS), "activation")
        check_choice(norm, CNN_NORMS, "norm")
        self.channels, self.image_shape, self.norm, self.activation = channels, image_shape, norm, activation
        self.groups, self.init, self.seed, self.dtype = groups, init, seed, np.dtype(dtype)
        seeds = np.random.SeedSequence(seed).generate_state(stages + 1)
        self.layers, self.hidden = [], []       # every layer; per stage (conv, norm or None, activation)
        H, W = image_shape
        for s, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            conv = Conv2d(c_in, c_out, 3, padding=1, init=init, seed=int(seeds[s]), dtype=dtype)
            nrm = self._make_norm(c_out, (H, W), momentum, eps, dtype)
            act = ACTIVATIONS[activation]()
            self.layers += [layer for layer in (conv, nrm, act, MaxPool2d(2)) if layer is not None]
            self.hidden.append((conv, nrm, act))
            H, W = H // 2, W // 2
        self.layers += [Flatten(), Linear(channels[-1] * H * W, classes, init=init, seed=int(seeds[-1]),
                                          dtype=dtype)]
        self._pack_parameters()

    def _make_norm(self, c, hw, momentum, eps, dtype):
        if self.norm == "batch":
            return BatchNorm(c, eps=eps, momentum=momentum, dtype=dtype)
        if self.norm == "layer":
            return LayerNorm((c,) + hw, eps=eps, dtype=dtype)
        if self.norm == "group":
            return GroupNorm(c, self.groups, eps=eps, dtype=dtype)
        if self.norm == "instance":
            return InstanceNorm(c, eps=eps, dtype=dtype)
        return None

    @property
    def input_shape(self):
        """The shape of one sample: (C, H, W)."""
        return (self.channels[0],) + self.image_shape

    @property
    def classes(self):
        return self.layers[-1].fan_out

    def label(self):
        """A one-line name, for History and tables."""
        return f"CNN({self.channels}, {self.activation}, norm={self.norm})"

    def forward(self, x, keep=False):
        """Logits (N, classes) for images x (N, C, H, W). keep=True also returns, per stage, the
        pre-activation z (what the activation receives: (N, C_s, H_s, W_s)) and the activation output."""
        x = as_float_array(x)
        shape = self.input_shape
        if x.shape[1:] != shape:
            if x.ndim == 2 and x.shape[1] == np.prod(shape):
                hint = _("flat pixels? reshape them: x.reshape(len(x), {shape})").format(shape=", ".join(map(str, shape)))
            elif x.shape == shape:
                hint = _("a single image needs a batch axis: x[None]")
            else:
                hint = _("check the channels and image_shape the CNN was built with")
            raise ValueError(_("this CNN takes images of shape (N, {shape}), got x of shape {got}; {hint}")
                             .format(shape=", ".join(map(str, shape)), got=x.shape, hint=hint))
        check_finite(x)
        return self._run(x.astype(self.dtype, copy=False), keep)

    def predict(self, x, chunk=100):
        """Class predictions in eval mode, `chunk` images at a time (which bounds the memory the
        convolutions take: about 20 MB per 100 images of 28×28; in eval mode each image is computed
        on its own, so chunks change nothing)."""
        with self.evaluation():
            return np.concatenate([self.forward(part).argmax(axis=1)
                                   for part in np.split(x, range(chunk, len(x), chunk))])

    def __repr__(self):
        return (f"CNN(channels={self.channels}, classes={self.classes}, image_shape={self.image_shape}, "
                f"norm={self.norm!r}, activation={self.activation!r}, groups={self.groups}, init={self.init!r}, "
                f"seed={self.seed}, dtype={self.dtype.name}) — {self._parameter_count()}\n"
                f"{self._layer_lines()}")
