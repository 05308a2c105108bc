"""MLP: Linear → [norm] → activation, repeated, then a Linear that gives the logits.

    MLP([784, 100, 100, 100, 10], activation="sigmoid", norm="batch")

norm_position="before" puts the normalisation between Linear and activation (the BN paper's
choice: the activation sees normalised inputs); "after" puts it after the activation.
"""
from contextlib import contextmanager

import numpy as np

from .i18n import _
from .layers import ACTIVATIONS, BatchNorm, BatchRenorm, GroupNorm, LayerNorm, Linear
from .validate import as_float_array, check_choice, check_finite, check_ndim

NORMS = (None, "batch", "layer", "group", "renorm")
POSITIONS = ("before", "after")


class MLP:
    """A multilayer perceptron whose hidden layers may be normalised.

    sizes: [inputs, hidden..., classes]. activation: "sigmoid", "tanh" or "relu".
    norm: None, "batch", "layer", "group" (with `groups`) or "renorm" (batch renormalisation).
    init: see `Linear`.
    Hidden layer l computes, with norm_position="before",
        z = Norm(h W + b),   h' = act(z)          ("pre-activation" z is what act receives)
    and with "after":  z = h W + b,  h' = Norm(act(z)).
    """

    def __init__(self, sizes, activation="sigmoid", norm=None, norm_position="before",
                 init="xavier", seed=0, groups=4, momentum=0.1, eps=1e-5, dtype=np.float32):
        if len(sizes) < 2 or any(not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
            raise ValueError(_("sizes must list at least two positive integers [inputs, ..., classes], got {value!r}")
                             .format(value=sizes))
        check_choice(activation, tuple(ACTIVATIONS), "activation")
        check_choice(norm, NORMS, "norm")
        check_choice(norm_position, POSITIONS, "norm_position")
        self.sizes, self.activation, self.norm, self.norm_position = list(sizes), activation, norm, norm_position
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

    def _make_norm(self, features, groups, momentum, eps, dtype):
        if self.norm == "batch":
            return BatchNorm(features, eps=eps, momentum=momentum, dtype=dtype)
        if self.norm == "renorm":
            return BatchRenorm(features, eps=eps, momentum=momentum, dtype=dtype)
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
        x = x.astype(self.dtype, copy=False)
        pre, act = [], []
        for layer in self.layers:
            if keep and isinstance(layer, tuple(ACTIVATIONS.values())):
                pre.append(x)
                x = layer.forward(x)
                act.append(x)
            else:
                x = layer.forward(x)
        return (x, pre, act) if keep else x

    __call__ = forward

    def backward(self, dlogits):
        """Backpropagate dL/dlogits through every layer; fills each layer's gradients."""
        d = dlogits
        for layer in reversed(self.layers[1:]):
            d = layer.backward(d)
        self.layers[0].backward(d, need_dx=False)   # the input pixels need no gradient

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

    def predict(self, x):
        """Class predictions in eval mode (the mode the model was in is restored)."""
        with self.evaluation():
            return self.forward(x).argmax(axis=1)

    def num_parameters(self):
        return sum(p.size for p in self.parameters())

    def __repr__(self):
        inner = "\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return (f"MLP({self.sizes}, activation={self.activation!r}, norm={self.norm!r}, "
                f"norm_position={self.norm_position!r}, init={self.init!r}, seed={self.seed}, "
                f"dtype={self.dtype.name}) — {self.num_parameters():,} parameters\n{inner}")
