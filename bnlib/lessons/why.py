"""Lesson 09 — why does batch norm work? Internal covariate shift, and the evidence against it.

    runs = why.run_ics()                         # plain, BN and "noisy BN" (sigmoid, lr 0.5)
    why.print_accuracies(runs)                   # test accuracy of each at a few steps
    why.ics_dashboard(runs).show()               # one unit's percentiles over training, per network
    why.distribution_change(runs["noisy"])       # how much the distributions move, per hidden layer
    land = why.run_landscape()                   # plain vs BN (ReLU): the loss along the gradient
    why.landscape_dashboard(land).show()         # a slider over the training checkpoints
    why.landscape_figure(land)                   # loss range, gradient change, effective β over training
    why.scale_dashboard().show()                 # scale W by c: BN's output stays, the gradient shrinks
    growth = why.weight_growth()                 # ‖W‖ and the effective learning rate η/‖W‖² over training

Notation. θ: all parameters of a network, L(θ): the loss on a fixed batch, g = ∇L(θ) its gradient,
η: a step size. W: the weights of one Linear layer, ‖W‖ = √(sum of the squares of its entries).
"""
from dataclasses import dataclass, field
from functools import lru_cache

import ipywidgets as widgets
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter
import numpy as np

from .. import plots
from ..checks import check
from ..data import load_mnist5k, minibatches
from ..i18n import _, N_, columns
from ..layers import BatchNorm, Layer, Linear, ReLU, softmax_cross_entropy
from ..model import MLP
from ..train import SGD, train
from ..widgets import Dashboard

SIZES = [784, 100, 100, 100, 10]
LABELS = {"plain": N_("without BN"), "bn": N_("with BN"), "noisy": N_("noisy BN")}
COLOR = {"plain": plots.COLORS["plain"], "bn": plots.COLORS["bn"],
         "noisy": "#CC79A7"}      # Okabe–Ito reddish purple: clearly apart from "plain" orange #E69F00
ETAS = np.linspace(0.05, 0.4, 8)        # step sizes along the gradient (training lr 0.1: ½× to 4×)


def label(kind):
    """The network's name in the learner's language: label("plain") -> "without BN"."""
    return _(LABELS[kind])


def _join(items):
    """Items of a list in a sentence: "a, b, c" in English, 「a、b、c」 in Japanese."""
    return _(", ").join(items)



# ---------------------------------------------------------------- 1. noisy BN (Santurkar et al. 2018, §2.1)
class BatchNoise(Layer):
    """Noise with a non-zero mean and a non-unit variance, put after a BatchNorm layer.

        y = s · x + a          (s: scale, a: shift; one value per unit, shape (D,))
        a ~ uniform(−max_shift, max_shift),   s ~ uniform(1/max_scale, max_scale)

    BN's output γx̂ + β has, over the batch, mean β and standard deviation |γ| in each unit; after
    this layer it has mean s·β + a and standard deviation s·|γ|, and (s, a) are drawn anew after
    every backward pass, that is, for every training step. So the distribution the next layer
    sees changes at every step.
    Recording (a forward pass without backward) sees the noise of the next step and draws nothing.
    In eval mode the layer applies the average noise instead: y = s̄ · x with s̄ the mean of s
    (and the mean of a is 0), as dropout does with its average mask.
    """

    def __init__(self, num_features, max_shift=1.0, max_scale=2.0, seed=0):
        self.num_features, self.max_shift, self.max_scale = num_features, max_shift, max_scale
        self.rng = np.random.default_rng(seed)
        self.draw()

    def draw(self):
        self.a = self.rng.uniform(-self.max_shift, self.max_shift, self.num_features).astype(np.float32)
        self.s = self.rng.uniform(1 / self.max_scale, self.max_scale, self.num_features).astype(np.float32)

    def forward(self, x):
        if not self.training:
            return x * np.float32((1 / self.max_scale + self.max_scale) / 2)
        return x * self.s + self.a

    def backward(self, dy):
        dx = dy * self.s
        self.draw()                               # the next step gets a new distribution
        return dx

    def __repr__(self):
        return f"BatchNoise({self.num_features}, max_shift={self.max_shift:g}, max_scale={self.max_scale:g})"


def insert_noise(model, max_shift=1.0, max_scale=2.0, seed=0):
    """Put a BatchNoise layer right after every BatchNorm of `model` (in place); returns the model."""
    layers, k = [], 0
    for layer in model.layers:
        layers.append(layer)
        if isinstance(layer, BatchNorm):
            layers.append(BatchNoise(layer.num_features, max_shift, max_scale, seed=seed + 1000 * (k + 1)))
            k += 1
    model.layers = layers
    return model


@lru_cache(maxsize=4)
def run_ics(steps=400, lr=0.5, batch_size=60, record_every=40, max_shift=1.0, max_scale=2.0, probe_size=250,
            seed=0):
    """Train the BN paper's MNIST network (784-100-100-100-10, sigmoid, Xavier init) three ways:
    without BN, with BN, and with BN followed by BatchNoise. Same seed, batches and lr.
    Records every `record_every` steps on the first `probe_size` test images.
    Returns {"plain": History, "bn": History, "noisy": History}. Cached in this process only."""
    data = load_mnist5k()
    models = {"plain": MLP(SIZES, "sigmoid", seed=seed),
              "bn": MLP(SIZES, "sigmoid", norm="batch", seed=seed),
              "noisy": insert_noise(MLP(SIZES, "sigmoid", norm="batch", seed=seed), max_shift, max_scale, seed)}
    return {k: train(m, data, steps=steps, batch_size=batch_size, lr=lr, record_every=record_every,
                     seed=seed, probe_size=probe_size, progress=False) for k, m in models.items()}


def distribution_change(history):
    """How much each hidden layer's input distribution moves between records, shape (layers,):

        mean over units, over the 15th/50th/85th percentiles and over consecutive records r of
        |p_r − p_(r−1)|,  with p the percentile of one unit's activation input over the probe images.
    """
    return np.array([np.abs(np.diff(layer.pre.unit_percentiles, axis=0)).mean() for layer in history.layers])


def accuracy_at(history, step):
    """Test accuracy at the last record at or before `step`."""
    r = int(np.searchsorted(history.record_steps, step, side="right") - 1)
    return float(history.test_acc[max(r, 0)])


def print_accuracies(runs, steps=(120, 200, 400)):
    """One line per network: its test accuracy at each of `steps` (names right-aligned)."""
    width = max(columns(label(kind)) for kind in runs)
    for kind, h in runs.items():
        at = _join(_("{acc:.0%} at step {step}").format(acc=accuracy_at(h, s), step=s) for s in steps)
        print(" " * (width - columns(label(kind))) + _("{name}: test accuracy {values}").format(name=label(kind), values=at))


def ics_dashboard(runs, layer=3, unit=0):
    """Left: test accuracy against step. Then, per network, the 15th, 50th and 85th percentiles
    of one unit's sigmoid input over training (the BN paper's Figure 1(b, c) for three networks).
    Sliders choose the hidden layer and the unit. One y range holds every layer and unit, so
    heights compare across moves (and no axis is redrawn per move)."""
    # accuracy across the top, the three networks' bands side by side below (one y axis)
    fig, ax_acc = plots.new_figure(1, 1, plots.MAX_WIDTH, 5.0, (0.09, 0.98, 0.1, 0.86, 0, 0))
    grid = fig.add_gridspec(2, 3, left=0.1, right=0.98, bottom=0.1, top=0.86, wspace=0.08, hspace=0.75,
                            height_ratios=[1, 1.3])
    ax_acc.set_subplotspec(grid[0, :])
    bands = [fig.add_subplot(grid[1, 0])]
    bands += [fig.add_subplot(grid[1, k], sharey=bands[0]) for k in (1, 2)]
    for ax in bands[1:]:
        ax.tick_params(labelleft=False)
    for kind, h in runs.items():
        ax_acc.plot(h.record_steps, h.test_acc, color=COLOR[kind], label=label(kind), marker=".")
    ax_acc.set(xlabel=_("training step"), ylabel=_("test accuracy"), ylim=(0, 1), title=_("test accuracy"))
    ax_acc.legend(loc="lower right", fontsize=8)
    lines = {}
    for ax, (kind, h) in zip(bands, runs.items()):
        steps = h.record_steps
        lines[kind] = [ax.plot(steps, np.zeros(len(steps)), color=COLOR[kind], lw=lw, ls=ls, label=lab)[0]
                       for lw, ls, lab in ((1, "--", _("15th / 85th percentile")), (2, "-", _("median")),
                                           (1, "--", None))]
        ax.set(xlabel=_("training step"), title=label(kind))
    top = bands[0].get_position().y1                 # between the accuracy panel and the band titles
    fig.legend(handles=lines[next(iter(runs))][:2], loc="lower right", bbox_to_anchor=(0.98, top + 0.055), ncols=2,
               fontsize=8, frameon=False)
    bands[0].set_ylabel(_("sigmoid input z\nof one unit"))
    z = np.concatenate([layer.pre.unit_percentiles.ravel() for h in runs.values() for layer in h.layers])
    bands[0].set_ylim(np.floor(z.min()), np.ceil(z.max()))       # shared by the three panels
    title = fig.suptitle("")

    def update(layer, unit):
        for kind, h in runs.items():
            p = h.layers[layer - 1].pre.unit_percentiles[:, unit, :]
            for line, col in zip(lines[kind], p.T):
                line.set_ydata(col)
        title.set_text(_("Hidden layer {layer}, unit {unit}: how its input distribution moves during training")
                       .format(layer=layer, unit=unit))
        change = {k: np.abs(np.diff(h.layers[layer - 1].pre.unit_percentiles[:, unit, :], axis=0)).mean()
                  for k, h in runs.items()}
        values = _join(_("{name} {value:.3f}").format(name=label(k), value=v) for k, v in change.items())
        return _("layer {layer}, unit {unit} — mean change of its percentiles between records: {values}").format(
            layer=layer, unit=unit, values=values)

    controls = dict(layer=widgets.IntSlider(value=layer, min=1, max=len(SIZES) - 2, description=_("layer")),
                    unit=widgets.IntSlider(value=unit, min=0, max=SIZES[1] - 1, description=_("unit")))
    changing = [line for group in lines.values() for line in group] + [title]
    return Dashboard(fig, update, animated=changing, **controls)


def change_figure(runs):
    """Bars: `distribution_change` per hidden layer for the three networks."""
    fig, ax = plots.new_figure(1, 1, 6.5, 3.2, (0.12, 0.98, 0.16, 0.88, 0, 0))
    layers = np.arange(1, len(SIZES) - 1)
    for i, (kind, h) in enumerate(runs.items()):
        ax.bar(layers + (i - 1) * 0.27, distribution_change(h), 0.27, color=COLOR[kind], label=label(kind))
    ax.set_xticks(layers, [_("hidden layer {layer}").format(layer=l) for l in layers])
    every = int(np.diff(next(iter(runs.values())).record_steps[:2])[0])
    ax.set_ylabel(_("mean change of a unit's percentiles\nbetween records (every {every} steps)").format(every=every))
    ax.set_title(_("How much the sigmoid inputs' distributions move"))
    ax.legend(loc="upper left", fontsize=8)
    return fig


# ---------------------------------------------------------------- 2. the loss landscape along the gradient
def _flat(arrays):
    return np.concatenate([a.ravel() for a in arrays]).astype(np.float64)


def loss_and_gradient(model, x, y):
    """L(θ) on (x, y) and ∇L(θ) as one flat float64 vector. BN uses this batch's statistics and
    its running averages are left untouched."""
    with model.batch_statistics():
        loss, dlogits = softmax_cross_entropy(model.forward(x), y)
        model.backward(dlogits)
    return loss, _flat(model.gradients())


def along_gradient(model, x, y, etas=ETAS):
    """Walk from θ along −g: for each η, L(θ − η g) and ‖∇L(θ) − ∇L(θ − η g)‖. θ is restored.
    Returns (L(θ), ‖g‖, losses (E,), gradient changes (E,))."""
    params = model.parameters()
    saved = [p.copy() for p in params]
    loss0, g = loss_and_gradient(model, x, y)
    pieces = np.split(g, np.cumsum([p.size for p in params])[:-1])
    losses, changes = np.empty(len(etas)), np.empty(len(etas))
    try:
        for i, eta in enumerate(etas):
            for p, s, gp in zip(params, saved, pieces):
                p[...] = s - eta * gp.reshape(p.shape)
            losses[i], g_eta = loss_and_gradient(model, x, y)
            changes[i] = np.linalg.norm(g_eta - g)
    finally:
        for p, s in zip(params, saved):
            p[...] = s
    return loss0, float(np.linalg.norm(g)), losses, changes


@dataclass
class Landscape:
    """Measurements along the gradient direction at checkpoints of two training runs."""
    steps: np.ndarray                               # (K,) checkpoint steps
    etas: np.ndarray                                # (E,) step sizes
    loss0: dict = field(default_factory=dict)       # kind -> (K,) L(θ)
    grad_norm: dict = field(default_factory=dict)   # kind -> (K,) ‖g‖
    loss: dict = field(default_factory=dict)        # kind -> (K, E) L(θ − η g)
    change: dict = field(default_factory=dict)      # kind -> (K, E) ‖∇L(θ) − ∇L(θ − η g)‖
    config: dict = field(default_factory=dict)

    def loss_range(self, kind):
        """(K,) max − min of the loss over the points θ − η g, η ∈ {0} ∪ etas."""
        values = np.column_stack([self.loss0[kind], self.loss[kind]])
        return values.max(axis=1) - values.min(axis=1)

    def max_change(self, kind):
        """(K,) the largest ‖∇L(θ) − ∇L(θ − η g)‖ over the step sizes."""
        return self.change[kind].max(axis=1)

    def overshoots(self, kind):
        """(K,) True where the longest step ends higher than it started: L(θ − η_max g) > L(θ)."""
        return self.loss[kind][:, -1] > self.loss0[kind]

    def keeps_falling(self, kind):
        """(K,) True where L(θ − ηg) falls at every larger η of the grid (from η = 0 on)."""
        values = np.column_stack([self.loss0[kind], self.loss[kind]])
        return (np.diff(values, axis=1) < 0).all(axis=1)

    def beta(self, kind):
        """(K,) effective β-smoothness: max over η of ‖∇L(θ) − ∇L(θ − η g)‖ / ‖η g‖."""
        return (self.change[kind] / (self.etas * self.grad_norm[kind][:, None])).max(axis=1)


@lru_cache(maxsize=4)
def run_landscape(steps=400, every=40, lr=0.1, batch_size=60, activation="relu", probe=250, seed=0):
    """Train 784-100-100-100-10 networks without and with BN (He init for ReLU) with plain SGD, and
    every `every` steps walk along the gradient of a fixed batch (the first `probe` training
    images) with the step sizes ETAS. Returns a Landscape. Cached in this process only."""
    data = load_mnist5k()
    x_probe, y_probe = data.x_train[:probe], data.y_train[:probe]
    init = "he" if activation == "relu" else "xavier"
    checkpoints = np.arange(0, steps + 1, every)
    result = Landscape(checkpoints, ETAS, config=dict(steps=steps, lr=lr, activation=activation, probe=probe))
    for kind, norm in (("plain", None), ("bn", "batch")):
        model = MLP(SIZES, activation, norm=norm, init=init, seed=seed)
        opt = SGD(model.parameters(), model.gradients(), lr)
        batches = minibatches(len(data.x_train), batch_size, seed)
        rows = []
        for step in range(steps + 1):
            if step % every == 0:
                rows.append(along_gradient(model, x_probe, y_probe))
            if step == steps:
                break
            model.train()
            idx = next(batches)
            _, dlogits = softmax_cross_entropy(model.forward(data.x_train[idx]), data.y_train[idx])
            model.backward(dlogits)
            opt.step()
        result.loss0[kind] = np.array([r[0] for r in rows])
        result.grad_norm[kind] = np.array([r[1] for r in rows])
        result.loss[kind] = np.array([r[2] for r in rows])
        result.change[kind] = np.array([r[3] for r in rows])
    return result


def landscape_dashboard(land):
    """A slider over the checkpoints. Left: the change of the loss, L(θ − η g) − L(θ), against the
    step size η. Right: the change of the gradient, ‖∇L(θ) − ∇L(θ − η g)‖, against η."""
    fig, (ax_l, ax_g) = plots.new_figure(1, 2, plots.MAX_WIDTH, 3.8, (0.1, 0.98, 0.13, 0.76, 0.34, 0))
    etas = np.concatenate([[0.0], land.etas])
    curves = {}
    for kind in ("plain", "bn"):
        (l_line,) = ax_l.plot(etas, np.zeros(len(etas)), marker="o", ms=4, color=COLOR[kind], label=label(kind))
        (g_line,) = ax_g.plot(etas, np.zeros(len(etas)), marker="o", ms=4, color=COLOR[kind], label=label(kind))
        curves[kind] = (l_line, g_line)
    ax_l.set(xlabel=_("step size η along −g"), title=_("change of the loss"))
    ax_g.set(xlabel=_("step size η along −g"), title=_("change of the gradient"))
    for ax, ylabel in ((ax_l, "L(θ − ηg) − L(θ)"), (ax_g, "‖∇L(θ) − ∇L(θ − ηg)‖")):
        # the y axes are redrawn at every step (their range follows the step): few ticks, and
        # the label as a text of its own, drawn once
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.text(-0.2, 0.5, ylabel, rotation=90, ha="center", va="center", transform=ax.transAxes)
    zero = ax_l.axhline(0, color=plots.COLORS["grey"], lw=0.8)
    fig.legend(handles=[curves[kind][0] for kind in curves], loc="upper center", bbox_to_anchor=(0.5, 0.905),
               ncols=2, fontsize=8, frameon=False)         # above the panels: the curves start at the top left
    title = fig.suptitle("")

    def update(step):
        k = int(np.searchsorted(land.steps, step))
        lo, hi, top = 0.0, 0.0, 0.0
        for kind, (l_line, g_line) in curves.items():
            dl = land.loss[kind][k] - land.loss0[kind][k]
            l_line.set_ydata(np.concatenate([[0.0], dl]))
            g_line.set_ydata(np.concatenate([[0.0], land.change[kind][k]]))
            lo, hi, top = min(lo, dl.min()), max(hi, dl.max()), max(top, land.change[kind][k].max())
        pad = 0.08 * (hi - lo) + 1e-4
        ax_l.set_ylim(lo - pad, hi + pad)              # each step on its own scale: the two
        ax_g.set_ylim(0, 1.1 * top)                    # networks are compared within a step
        title.set_text(_("Walking along the gradient of a fixed batch, at training step {step}").format(step=step))
        return _("step {step}: loss range plain {range_plain:.3f} vs BN {range_bn:.3f}; max gradient change "
                 "plain {change_plain:.2f} vs BN {change_bn:.2f}; effective β plain {beta_plain:.1f} vs BN "
                 "{beta_bn:.1f}").format(
            step=step, range_plain=land.loss_range("plain")[k], range_bn=land.loss_range("bn")[k],
            change_plain=land.max_change("plain")[k], change_bn=land.max_change("bn")[k],
            beta_plain=land.beta("plain")[k], beta_bn=land.beta("bn")[k])

    steps = [int(s) for s in land.steps]
    slider = widgets.SelectionSlider(options=steps, value=steps[len(steps) // 2], description=_("step"),
                                     continuous_update=True, layout=widgets.Layout(width="60%"))
    # each step on its own y scale: the y axes are redrawn with the curves
    changing = [line for pair in curves.values() for line in pair] + [zero, ax_l.yaxis, ax_g.yaxis, title]
    return Dashboard(fig, update, animated=changing, step=slider)


def landscape_figure(land):
    """The three measures of Santurkar et al.'s Figure 4 over training, without and with BN."""
    fig, axes = plots.new_figure(1, 3, plots.MAX_WIDTH, 3.6, (0.095, 0.98, 0.15, 0.8, 0.48, 0))
    measures = ((_("loss range (log scale)"), land.loss_range, _("max − min of L(θ − ηg)"), "log"),
                (_("gradient change (log scale)"), land.max_change, _("max ‖∇L(θ) − ∇L(θ − ηg)‖"), "log"),
                (_("effective β-smoothness"), land.beta, _("max ‖∇L(θ) − ∇L(θ − ηg)‖ / ‖ηg‖"), "linear"))
    for ax, (name, fn, ylabel, scale) in zip(axes, measures):
        for kind in ("plain", "bn"):
            ax.plot(land.steps, fn(kind), marker="o", ms=4, color=COLOR[kind], label=label(kind))
        ax.set(xlabel=_("training step"), ylabel=ylabel, title=name, yscale=scale)
        if scale == "log":                     # plain-number labels (no slow math text) at 1, 3, 10, 30 …
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 3.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            low = min(fn(kind).min() for kind in ("plain", "bn"))
            decade = 10.0 ** np.floor(np.log10(low))      # so a labeled tick lies below the lowest point
            ax.set_ylim(bottom=3 * decade if 3 * decade <= low else decade)
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.legend(loc="upper right", fontsize=8)
    axes[2].set_ylim(0, None)
    fig.suptitle(_("Along the gradient direction, at each checkpoint (lower = smoother)"))
    return fig


# ---------------------------------------------------------------- 3. scale invariance and the effective learning rate
@lru_cache(maxsize=1)
def _scale_setup(n=60, seed=0):
    data = load_mnist5k(dtype=np.float64)
    return data.x_train[:n], data.y_train[:n]


def scale_experiment(c, eps=1e-12, n=60, seed=0):
    """Linear(784, 100) → BatchNorm → ReLU → Linear(100, 10) in float64 on n MNIST images.
    Multiplies the first layer's W and b by c and compares with c = 1. Returns a dict:
    out_change   max |BN output(c) − BN output(1)|
    loss_change  |L(c) − L(1)|
    grad_ratio   ‖∂L/∂W at c‖ / ‖∂L/∂W at 1‖                 (1/c if the claim holds)
    grad_error   ‖∂L/∂W at c − (1/c)·∂L/∂W at 1‖ / ‖(1/c)·∂L/∂W at 1‖
    cosine       max over units j of |W_j · ∂L/∂W_j| / (‖W_j‖ ‖∂L/∂W_j‖)   (W_j: unit j's column)
    bias_grad    max |∂L/∂b|
    """
    x, y = _scale_setup(n, seed)
    lin = Linear(784, 100, seed=seed, dtype=np.float64)
    bn, relu, head = BatchNorm(100, eps=eps, dtype=np.float64), ReLU(), Linear(100, 10, seed=seed + 1, dtype=np.float64)

    def run():
        z = bn.forward(lin.forward(x))
        loss, dlogits = softmax_cross_entropy(head.forward(relu.forward(z)), y)
        lin.backward(bn.backward(relu.backward(head.backward(dlogits))), need_dx=False)
        return z, loss, lin.dW.copy(), lin.db.copy()

    z1, loss1, g1, _ = run()
    lin.W *= c
    lin.b *= c
    zc, lossc, gc, dbc = run()
    cos = np.abs((lin.W * gc).sum(axis=0)) / np.maximum(np.linalg.norm(lin.W, axis=0) * np.linalg.norm(gc, axis=0), 1e-300)
    return dict(out_change=float(np.abs(zc - z1).max()), loss_change=abs(lossc - loss1),
                grad_ratio=float(np.linalg.norm(gc) / np.linalg.norm(g1)),
                grad_error=float(np.linalg.norm(gc - g1 / c) / np.linalg.norm(g1 / c)),
                cosine=float(cos.max()), bias_grad=float(np.abs(dbc).max()),
                W_norm=float(np.linalg.norm(lin.W)), z1=z1, zc=zc)


def scale_dashboard(eps=1e-12):
    """A slider for c (0.1 … 10, log scale). Left: BN's output for c against the output for c = 1
    (all 60 × 100 values; on the diagonal = unchanged). Right: ‖W‖ and ‖∂L/∂W‖ relative to c = 1."""
    fig, (ax_z, ax_n) = plots.new_figure(1, 2, plots.MAX_WIDTH, 3.7, (0.08, 0.98, 0.14, 0.8, 0.3, 0))
    base = scale_experiment(1.0, eps)
    results = {}                               # c → scale_experiment(c): each slider value computed once
    (dots,) = ax_z.plot(base["z1"].ravel(), base["z1"].ravel(), ".", ms=2, color=plots.COLORS["bn"],
                        label=_("BN output, one dot per value"))
    lim = np.abs(base["z1"]).max() * 1.05
    ax_z.plot([-lim, lim], [-lim, lim], color=plots.COLORS["grey"], lw=0.8, label=_("unchanged (diagonal)"))
    ax_z.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel=_("BN output with W (c = 1)"),
             ylabel=_("BN output with c·W"), title=_("the output does not change"))
    ax_z.legend(loc="upper left", fontsize=8)
    bars = ax_n.bar([0, 1], [1, 1], color=[plots.COLORS["bn"], plots.CYCLE[2]])   # orange means "without BN"
    ax_n.set_xticks([0, 1], ["‖c·W‖ / ‖W‖", "‖∂L/∂(cW)‖ / ‖∂L/∂W‖"])
    ax_n.set(yscale="log", ylim=(0.05, 20), ylabel=_("ratio to c = 1 (log scale)"),
             title=_("the weights grow, their gradient shrinks"))
    ax_n.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax_n.yaxis.set_minor_formatter(NullFormatter())
    ax_n.axhline(1, color=plots.COLORS["grey"], lw=0.8)
    title = fig.suptitle("")

    def update(c):
        r = results.get(c) or results.setdefault(c, scale_experiment(c, eps))
        dots.set_ydata(r["zc"].ravel())
        bars[0].set_height(c)
        bars[1].set_height(r["grad_ratio"])
        title.set_text(_("Linear → BN → ReLU → Linear, the first layer's W and b multiplied by c = {c:.2f}").format(c=c))
        return _("c = {c:.2f}: max |output change| = {change:.1e}; ‖W‖ × {c:.2f}; ‖∂L/∂W‖ × {ratio:.3f} "
                 "(1/c = {inverse:.3f})").format(c=c, change=r["out_change"], ratio=r["grad_ratio"], inverse=1 / c)

    slider = widgets.FloatLogSlider(value=2.0, base=10, min=-1, max=1, step=0.1, description="c",
                                    continuous_update=True)
    return Dashboard(fig, update, animated=[dots, *bars, title], c=slider)


@dataclass
class Growth:
    """Per training step (0 … steps): ‖W‖ of each hidden Linear layer, for each learning rate."""
    lrs: tuple
    norms: dict            # lr -> (steps + 1, hidden layers) ‖W‖
    test_acc: dict         # lr -> final test accuracy (eval mode)

    def effective_lr(self, lr, layer=0):
        """(steps + 1,) η / ‖W‖² of one hidden layer."""
        return lr / self.norms[lr][:, layer] ** 2


@lru_cache(maxsize=2)
def weight_growth(lrs=(0.1, 0.5), steps=200, batch_size=60, seed=0):
    """Train the ReLU BN network (784-100-100-100-10, He init, plain SGD, no weight decay) at each
    learning rate and record ‖W‖ of every hidden Linear layer after every step."""
    data = load_mnist5k()
    norms, accs = {}, {}
    for lr in lrs:
        model = MLP(SIZES, "relu", norm="batch", init="he", seed=seed)
        linears = [lin for lin, _, _ in model.hidden]
        opt = SGD(model.parameters(), model.gradients(), lr)
        batches = minibatches(len(data.x_train), batch_size, seed)
        rows = [[np.linalg.norm(lin.W) for lin in linears]]
        model.train()
        for _ in range(steps):
            idx = next(batches)
            _, dlogits = softmax_cross_entropy(model.forward(data.x_train[idx]), data.y_train[idx])
            model.backward(dlogits)
            opt.step()
            rows.append([np.linalg.norm(lin.W) for lin in linears])
        norms[lr] = np.array(rows)
        accs[lr] = float(np.mean(model.predict(data.x_test) == data.y_test))
    return Growth(tuple(lrs), norms, accs)


def growth_figure(growth, layer=0):
    """Left: ‖W‖ of one hidden layer over training, relative to its start. Right: the effective
    learning rate η/‖W‖², relative to its start."""
    fig, (ax_w, ax_e) = plots.new_figure(1, 2, plots.MAX_WIDTH, 3.5, (0.09, 0.98, 0.15, 0.8, 0.32, 0))
    for i, lr in enumerate(growth.lrs):
        color = (plots.CYCLE[2], plots.COLORS["black"], plots.CYCLE[5])[i % 3]   # not pink: that is noisy BN here
        n = growth.norms[lr][:, layer]
        steps = np.arange(len(n))
        ax_w.plot(steps, n / n[0], color=color, label=f"η = {lr:g}")
        eff = growth.effective_lr(lr, layer)
        ax_e.plot(steps, eff / eff[0], color=color, label=f"η = {lr:g}")
    ax_w.set(xlabel=_("training step"), ylabel=_("‖W‖ / ‖W at step 0‖"),
             title=_("hidden layer {layer}: ‖W‖ grows").format(layer=layer + 1))
    ax_e.set(xlabel=_("training step"), ylabel=_("(η/‖W‖²) / (its value at step 0)"),
             title=_("so the effective learning rate shrinks"))
    ax_w.legend(loc="upper left", fontsize=8)
    ax_e.legend(loc="lower left", fontsize=8)
    fig.suptitle(_("The BN network (ReLU), plain SGD without weight decay"))
    return fig


# ---------------------------------------------------------------- exercises
EXERCISE_PERCENTILES = np.array([[[-1.0, 0.0, 1.0], [0.5, 1.0, 1.5]],
                                 [[-0.5, 0.5, 1.5], [0.5, 1.0, 2.5]],
                                 [[-0.5, 0.0, 2.5], [1.0, 2.0, 3.0]]])    # (records 3, units 2, percentiles 3)


def check_change(answer, p=EXERCISE_PERCENTILES):
    """Exercise 1: distribution_change's formula for p of shape (records, units, 3)."""
    check(answer, np.abs(np.diff(p, axis=0)).mean(), _("exercise 1 — mean change between records"),
          wrong=[(np.diff(p, axis=0).mean(), _("take the absolute value |p_r − p_(r−1)| before the mean: "
                                               "moves up and down must not cancel")),
                 (np.abs(p[-1] - p[0]).mean(), _("that compares the last record with the first; compare each "
                                                 "record with the one just before it (np.diff along axis 0)")),
                 (np.abs(np.diff(p, axis=1)).mean(), _("axis 0 is the records (time); you took differences "
                                                       "between units")),
                 (np.abs(np.diff(p, axis=2)).mean(), _("axis 0 is the records (time); you took differences "
                                                       "between percentiles")),
                 (np.abs(np.diff(p, axis=0)).sum(), _("take the mean, not the sum"))])


STEP_W_NORM, STEP_GRAD_NORM, STEP_LR = 2.0, 0.8, 0.5     # exercise 2: ‖W‖, ‖∂L/∂W‖, η


def step_length_expected(w=STEP_W_NORM, g=STEP_GRAD_NORM, lr=STEP_LR):
    """‖W − η g‖ when g is perpendicular to W (Pythagoras): √(‖W‖² + (η‖g‖)²)."""
    return float(np.sqrt(w ** 2 + (lr * g) ** 2))


def check_step_length(answer, w=STEP_W_NORM, g=STEP_GRAD_NORM, lr=STEP_LR):
    """Exercise 2: ‖W‖ after one SGD step W ← W − η ∂L/∂W, with the gradient perpendicular to W.
    Three decimals are enough (relative tolerance 1e-3)."""
    check(answer, step_length_expected(w, g, lr), _("exercise 2 — ‖W‖ after one step"),
          wrong=[(w + lr * g, _("the gradient is perpendicular to W, so the lengths do not simply add: add "
                                "their squares (Pythagoras), ‖W − ηg‖² = ‖W‖² + (η‖g‖)²")),
                 (w - lr * g, _("the gradient is perpendicular to W, so a step along −g cannot make W shorter: "
                                "use Pythagoras, ‖W − ηg‖² = ‖W‖² + (η‖g‖)²")),
                 (np.sqrt(w ** 2 + g ** 2), _("the step is η·g, not g: multiply ‖g‖ by η before squaring")),
                 (w ** 2 + (lr * g) ** 2, _("that is ‖W‖² after the step; take the square root")),
                 (np.sqrt(w ** 2 + lr * g ** 2), _("square the whole step: (η‖g‖)² = η²‖g‖², not η‖g‖²")),
                 (w, _("the step adds a piece perpendicular to W, so ‖W‖ grows a little"))],
          rtol=1e-3, atol=0)


def check_effective_lr(answer, lr=0.1, start=2.0, end=2.5):
    """Exercise 3: how many times smaller η/‖W‖² is when ‖W‖ grows from `start` to `end`."""
    check(answer, (end / start) ** 2, _("exercise 3 — how much the effective learning rate shrank"),
          wrong=[(end / start, _("the effective learning rate is η/‖W‖²: square the ratio of the norms")),
                 (start / end, _("η/‖W‖² gets smaller as ‖W‖ grows: the factor is (‖W_end‖/‖W_start‖)², "
                                 "a number above 1")),
                 ((start / end) ** 2, _("that is the new effective rate divided by the old one; the question "
                                        "asks how many times smaller it is (old ÷ new)")),
                 (lr / end ** 2, _("that is the new effective learning rate itself; the question asks for "
                                   "the factor old ÷ new"))])


BETA_ETAS = np.array([0.1, 0.2, 0.4])
BETA_CHANGES = np.array([0.4, 0.5, 1.2])        # ‖∇L(θ) − ∇L(θ − ηg)‖ at each η
BETA_GRAD_NORM = 2.0                            # ‖g‖


def check_beta(answer, etas=BETA_ETAS, changes=BETA_CHANGES, g=BETA_GRAD_NORM):
    """Exercise 4: effective β-smoothness from three measurements along the gradient."""
    ratios = changes / (etas * g)
    check(answer, ratios.max(), _("exercise 4 — the effective β-smoothness"),
          wrong=[((changes / etas).max(), _("the step length is ‖η g‖ = η · ‖g‖, not η: divide by ‖g‖ too")),
                 (ratios.mean(), _("β is the worst case: take the maximum of the ratios, not their mean")),
                 (changes.max() / (etas.max() * g), _("take the maximum of the ratios, not the ratio of the "
                                                      "maxima")),
                 (ratios.min(), _("β is the worst case: take the maximum"))])
