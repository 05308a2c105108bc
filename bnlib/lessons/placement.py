"""Lesson 07 — before or after the activation: both placements trained with sigmoid and ReLU,
what the activation receives, and why the bias of a Linear layer before BN does nothing.

    runs = placement.train_placements()                     # {(activation, position): Run}
    placement.accuracy_figure(runs)                         # test accuracy against step
    placement.histogram_dashboard(runs).show()              # what each activation receives
    placement.stability_figure(runs)                        # BN paper Fig. 1(b, c) style bands
    demo = placement.bias_shift_demo()                      # Linear + BN: b does nothing

Notation (the notebook's), for hidden layer l with input h (the previous layer's output):
    BN before the activation (the BN paper):   z = BN(h W + b),   h' = act(z)
    BN after the activation:                   z = h W + b,       h' = BN(act(z))
z is the pre-activation: what the activation receives (History.layers[l].pre records it).
A sigmoid unit is saturated where σ(z) < 0.05 or σ(z) > 0.95 (|z| > ln 19 ≈ 2.94); a ReLU
unit is dead on a data set if it outputs 0 for every image in it.
"""
import copy
from dataclasses import dataclass
from functools import lru_cache

import ipywidgets as widgets
import numpy as np

from ..checks import check
from ..data import load_mnist5k
from ..i18n import _, N_, pad
from ..layers import BatchNorm, Linear
from ..model import MLP
from ..plots import COLORS, CYCLE, MAX_WIDTH, new_figure
from ..train import train
from ..widgets import Dashboard

SIZES = [784, 100, 100, 100, 10]
ACTIVATIONS = ("sigmoid", "relu")
POSITIONS = ("before", "after", "none")            # "none": the plain network, no BN
INIT = {"sigmoid": "xavier", "relu": "he"}
POSITION_COLORS = {"before": COLORS["bn"], "after": CYCLE[2], "none": COLORS["plain"]}
POSITION_LABELS = {"before": N_("BN before the activation"), "after": N_("BN after the activation"),
                   "none": N_("no BN")}
ACTIVATION_LABELS = {"sigmoid": N_("sigmoid"), "relu": N_("relu")}
SATURATED = float(np.log(19.0))                     # |z| > ln 19 ⇔ σ(z) < 0.05 or σ(z) > 0.95


def position_label(position):
    """What a learner reads for a placement: "BN before the activation", … in the current language."""
    return _(POSITION_LABELS[position])


def activation_label(activation):
    return _(ACTIVATION_LABELS[activation])





@dataclass
class Run:
    model: MLP
    history: object
    activation: str
    position: str

    @property
    def label(self):
        return _("{activation}, {position}").format(activation=activation_label(self.activation),
                                                    position=position_label(self.position))


@lru_cache(maxsize=2)
def _train_all(steps, lr, batch_size, record_every, seed, baselines):
    data = load_mnist5k()
    runs = {}
    for act in ACTIVATIONS:
        for pos in POSITIONS if baselines else POSITIONS[:2]:
            model = MLP(SIZES, activation=act, norm=None if pos == "none" else "batch",
                        norm_position="before" if pos == "none" else pos, init=INIT[act], seed=seed)
            history = train(model, data, steps=steps, batch_size=batch_size, lr=lr,
                            record_every=record_every, seed=seed, progress=False)
            runs[act, pos] = Run(model.eval(), history, act, pos)
    return runs, data


def train_placements(steps=400, lr=0.5, batch_size=60, record_every=50, seed=0, baselines=True):
    """Train the 784-100-100-100-10 network on MNIST-5k with sigmoid (Xavier init) and with ReLU
    (He init), each with BN before the activation, BN after it, and (baselines=True) without BN.
    Same seed, data order, learning rate and steps for all. Returns ({(activation, position): Run},
    Dataset). Cached within the Python process; each call gets copies of the models."""
    runs, data = _train_all(steps, lr, batch_size, record_every, seed, baselines)
    return {key: Run(copy.deepcopy(r.model), r.history, r.activation, r.position) for key, r in runs.items()}, data


def final_accuracy(run, last=3):
    """Mean test accuracy of the last `last` records (reduces the random ups and downs between records)."""
    return float(np.mean(run.history.test_acc[-last:]))


# Notebook 07 §5 quotes these (it trains seed 0 only): final test accuracy of "BN after" minus
# "BN before", in points, for seeds 1–4 (400 steps, lr 0.5, batch size 60). One place for the
# numbers: tests/test_lesson_placement.py measures them again and checks both editions quote them.
OTHER_SEEDS = {"sigmoid": {1: 2.9, 2: 2.7, 3: 1.9, 4: 2.3},
               "relu": {1: -0.7, 2: -0.4, 3: -0.3, 4: -1.2}}
# the same on another processor (numpy's BLAS rounds differently there); sigmoid within 0.1
OTHER_MACHINE_RELU = {1: -0.3, 2: 0.0, 3: -0.9, 4: -1.6}


def placement_gaps(seed, steps=400, lr=0.5):
    """{activation: final test accuracy of BN after minus BN before, in points} for one seed."""
    runs, _data = train_placements(steps=steps, lr=lr, baselines=False, seed=seed)
    return {act: 100 * (final_accuracy(runs[act, "after"]) - final_accuracy(runs[act, "before"]))
            for act in ACTIVATIONS}


# --------------------------------------------------------------------------- curves
def accuracy_figure(runs):
    """Test accuracy against training step: sigmoid (left), ReLU (right)."""
    fig, axes = new_figure(1, 2, width=MAX_WIDTH, height=3.4, sharey=True)
    for ax, act in zip(axes, ACTIVATIONS):
        for pos in POSITIONS:
            if (act, pos) not in runs:
                continue
            h = runs[act, pos].history
            ax.plot(h.record_steps, h.test_acc, color=POSITION_COLORS[pos], lw=1.4 if pos == "none" else 2,
                    ls=":" if pos == "none" else "-", label=position_label(pos))
        ax.set(title=activation_label(act), xlabel=_("training step"), ylim=(0.6, 1.0))
        ax.legend(loc="lower center", fontsize=8)
    axes[0].set_ylabel(_("test accuracy (axis starts at 0.6)"))
    fig.suptitle(_("Where to put BN: test accuracy while training (MNIST-5k, lr 0.5, batch size N = 60)"))
    return fig


def layer_table(runs, data):
    """Print per run: final test accuracy (mean of the last 3 records), and per hidden layer the
    standard deviation of z and the fraction of saturated sigmoid values / dead ReLU units, all
    measured at the end of training on the whole test set in eval mode (running averages)."""
    print(pad(_("run"), 44) + pad(_("test acc."), 10, ">") + "   " + pad(_("std of z (layers 1, 2, 3)"), 26)
          + " " + _("saturated / dead units"))
    for (act, pos), run in runs.items():
        std = ", ".join(f"{z.std():.2f}" for z in activations(run.model, data.x_test)[0])
        if act == "sigmoid":
            tail = _("saturated {values}").format(
                values=", ".join(f"{s:.1%}" for s in saturated_fraction(run.model, data.x_test)))
        else:
            tail = _("dead units {values}").format(
                values=", ".join(f"{s:.0%}" for s in dead_fraction(run.model, data.x_test)))
        print(f"{pad(run.label, 44)}{final_accuracy(run):>10.1%}   {std:<26} {tail}")


def pre_std(run, record=-1):
    """Standard deviation of z (what the activation receives) per hidden layer at one record."""
    return np.array([layer.pre.std[record] for layer in run.history.layers])


def activations(model, x):
    """(pre-activations z, activation outputs) per hidden layer, in eval mode."""
    modes = [layer.training for layer in model.layers]
    model.eval()
    try:
        _, pre, act = model.forward(x, keep=True)
    finally:
        for layer, mode in zip(model.layers, modes):
            layer.training = mode
    return pre, act


def saturated_fraction(model, x):
    """Per hidden layer: the fraction of sigmoid outputs below 0.05 or above 0.95 on x."""
    _, act = activations(model, x)
    return np.array([np.mean((h < 0.05) | (h > 0.95)) for h in act])


def dead_fraction(model, x):
    """Per hidden layer: the fraction of ReLU units that output 0 for EVERY image in x."""
    _, act = activations(model, x)
    return np.array([np.mean(np.all(h <= 0, axis=0)) for h in act])


def zero_fraction(model, x):
    """Per hidden layer: the fraction of ReLU outputs that are 0 (any unit, any image)."""
    _, act = activations(model, x)
    return np.array([np.mean(h <= 0) for h in act])


def stability(run):
    """Per hidden layer: how much the spread of z moved during training — the range (max − min)
    of the std of z over the records after step 0."""
    return np.array([np.ptp(layer.pre.std[1:]) for layer in run.history.layers])


# --------------------------------------------------------------------------- histograms
def _record_index(history, step):
    return int(np.clip(np.searchsorted(history.record_steps, step, side="right") - 1, 0,
                       len(history.record_steps) - 1))


XLIM = {"sigmoid": (-8.0, 8.0), "relu": (-8.0, 8.0)}   # the whole bin range (ReLU after BN-less layer 1 is wide)
HIST_STYLE = {"before": dict(fill=True, alpha=0.45, lw=0),            # filled
              "after": dict(fill=False, lw=2.0),                       # solid outline: no mixed third color
              "none": dict(fill=False, lw=1.5, ls="--")}               # dashed outline


def histogram_dashboard(runs, xlim=XLIM):
    """What the activation receives, per hidden layer: histograms of z over the 500 recorded test
    images for BN before (blue, filled), BN after (green outline) and no BN (orange, dashed
    outline), at a chosen training step. Controls: the activation and the step. The shaded band
    marks the flat part of the activation: the saturated tails of the sigmoid, or z ≤ 0 where a
    ReLU outputs 0. The x-range follows the activation (`xlim`: {activation: (lo, hi)}; both the
    whole bin range by default, so the toggle redraws no axis); values beyond the bins (±8) are
    counted in the outermost bins. The y-range is fixed (the tallest bar of any step, activation
    and placement), so the steps can be compared and a move only redraws the histograms."""
    positions = [p for p in POSITIONS if ("sigmoid", p) in runs]
    first = runs["sigmoid", positions[0]].history
    n_layers = len(first.layers)
    fig, axes = new_figure(1, n_layers, width=MAX_WIDTH, height=3.6, sharey=True,
                           margins=(0.08, 0.98, 0.14, 0.76, 0.1, 0))            # fixed: fast redraws
    edges = first.layers[0].pre.bin_edges
    stairs = {}
    for l, ax in enumerate(axes):
        for pos in positions:
            stairs[l, pos] = ax.stairs(np.zeros(len(edges) - 1), edges, color=POSITION_COLORS[pos],
                                       label=position_label(pos), **HIST_STYLE[pos])
        ax.set(title=_("hidden layer {number}").format(number=l + 1), xlabel=_("z, the activation's input"))
    axes[0].set_ylabel(_("fraction of values"))
    fig.legend(handles=[stairs[0, pos] for pos in positions], loc="upper center", bbox_to_anchor=(0.5, 0.925),
               ncols=len(positions), fontsize=8, frameon=False)
    shades = {"sigmoid": [ax.axvspan(lo, hi, color=COLORS["grey"], alpha=0.15, lw=0)
                          for ax in axes for lo, hi in ((-8, -SATURATED), (SATURATED, 8))],
              "relu": [ax.axvspan(-8, 0, color=COLORS["grey"], alpha=0.15, lw=0) for ax in axes]}
    title = fig.suptitle("")
    shown = [(act, pos) for act in ACTIVATIONS for pos in positions if (act, pos) in runs]
    top = max(runs[key].history.layers[l].pre.hist.max() for key in shown for l in range(n_layers))
    axes[0].set_ylim(0, 1.15 * top)                 # shared y, fixed: the tallest bar of any step

    def update(activation, step):
        parts = []
        for l in range(n_layers):
            for pos in positions:
                h = runs[activation, pos].history
                stairs[l, pos].set_data(values=h.layers[l].pre.hist[_record_index(h, step)])
        for act, spans in shades.items():
            for span in spans:
                span.set_visible(act == activation)
        for ax in axes:
            if ax.get_xlim() != tuple(xlim[activation]):
                ax.set_xlim(*xlim[activation])
        what = _("saturated (σ < 0.05 or > 0.95)") if activation == "sigmoid" else _("≤ 0 (ReLU outputs 0)")
        shaded = _("the saturated tails") if activation == "sigmoid" else _("z ≤ 0, where ReLU outputs 0")
        title.set_text(_("{activation}: what the activation receives at step {step} (shaded: {shaded})")
                       .format(activation=activation_label(activation), step=step, shaded=shaded))
        for pos in positions:
            h = runs[activation, pos].history
            r = _record_index(h, step)
            parts.append(_("{position}: {values}").format(
                position=position_label(pos), values="/".join(f"{lay.saturated[r]:.0%}" for lay in h.layers)))
        return _("{activation}, step {step} · fraction {what}, layers 1/2/3 — {parts}").format(
            activation=activation_label(activation), step=step, what=what, parts=" · ".join(parts))

    act_control = widgets.ToggleButtons(options=[(activation_label(a), a) for a in ACTIVATIONS], value="sigmoid",
                                        description=_("activation"))
    steps = [int(s) for s in first.record_steps]
    step_control = widgets.SelectionSlider(options=steps, value=steps[-1], description=_("step"),
                                           continuous_update=True, layout=widgets.Layout(width="50%"))
    changing = [*stairs.values(), *(span for spans in shades.values() for span in spans), title]
    return Dashboard(fig, update, animated=changing, activation=act_control, step=step_control)


def stability_figure(runs, activation="sigmoid", layer=1, unit=0):
    """The BN paper's Figure 1(b, c) view: 15th/50th/85th percentiles of one unit's input z
    during training, BN before (left) and BN after (right) the activation."""
    fig, axes = new_figure(1, 2, width=MAX_WIDTH, height=3.2, sharey=True)
    for ax, pos in zip(axes, ("before", "after")):
        h = runs[activation, pos].history
        p = h.layers[layer].pre.unit_percentiles[:, unit, :]
        ax.fill_between(h.record_steps, p[:, 0], p[:, 2], color=POSITION_COLORS[pos], alpha=0.25,
                        label=_("15th–85th percentile"))
        ax.plot(h.record_steps, p[:, 1], color=POSITION_COLORS[pos], lw=2, label=_("median"))
        ax.set(title=position_label(pos), xlabel=_("training step"))
        ax.legend(loc="lower left", fontsize=8)
    axes[0].set_ylabel(_("z of unit {unit}, hidden layer {layer}").format(unit=unit, layer=layer + 1))
    fig.suptitle(_("{activation}: one unit's input during training (500 test images)")
                 .format(activation=activation_label(activation)))
    return fig


# --------------------------------------------------------------------------- the redundant bias
def bias_shift_demo(shift=5.0, n=60, seed=0):
    """Linear(784, 100) followed by BatchNorm(100) in training mode, float64, on n MNIST images.
    Forward, then backward with a random upstream gradient dL/dy; then add `shift` to every
    bias b_j, and a random vector (std `shift`) on top, and forward again. Returns a dict:
    y_change  max |y_after − y_before|        (BN subtracts the batch mean: b cancels)
    db, dW, dbeta  the largest |gradient| of b, W and β."""
    data = load_mnist5k(dtype=np.float64)
    x = data.x_train[:n]
    rng = np.random.default_rng(seed)
    linear = Linear(784, 100, seed=seed, dtype=np.float64)
    linear.b[...] = rng.normal(0.0, 0.1, size=100)
    bn = BatchNorm(100, dtype=np.float64)
    y_before = bn.forward(linear.forward(x))
    linear.backward(bn.backward(rng.standard_normal(y_before.shape)))
    grads = {"db": float(np.abs(linear.db).max()), "dW": float(np.abs(linear.dW).max()),
             "dbeta": float(np.abs(bn.dbeta).max())}
    linear.b += shift + shift * rng.standard_normal(100)
    y_after = bn.forward(linear.forward(x))
    return {"y_change": float(np.abs(y_after - y_before).max()), "y_size": float(np.abs(y_before).max()), **grads}


def linear_biases(run):
    """Largest |b| of each hidden layer's Linear (they all start at 0)."""
    return np.array([np.abs(linear.b).max() for linear, _, _ in run.model.hidden])


# --------------------------------------------------------------------------- exercises
def check_removable_biases(answer):
    """Exercise 1: how many numbers does bias=False save in 784-100-100-100-10, BN before?"""
    check(answer, 300, _("exercise 1 — biases that BN makes useless"),
          wrong=[(310, _("the output layer (100 → 10) has no BN after it: its 10 biases do matter")),
                 (100, _("there are three hidden layers, each with a BN: 3 × 100")),
                 (600, _("γ and β stay: only the Linear biases b become useless (β does their job)")),
                 (900, _("count only the biases b of the Linear layers that feed a BN")),
                 (3, _("count numbers, not layers: each bias vector has 100 numbers"))])


def check_saturated(answer, h):
    """Exercise 2: the fraction of saturated sigmoid outputs in h (any shape)."""
    h = np.asarray(h, dtype=np.float64)
    expected = np.mean((h < 0.05) | (h > 0.95))
    wrong = [(np.mean(h > 0.95), _("you counted only the top tail; add the values below 0.05")),
             (np.mean(h < 0.05), _("you counted only the bottom tail; add the values above 0.95")),
             (np.mean((h < 0.1) | (h > 0.9)), _("the limits are 0.05 and 0.95, not 0.1 and 0.9")),
             (np.sum((h < 0.05) | (h > 0.95)), _("that is a count; divide by the number of values (use np.mean)")),
             (np.mean((h > 0.05) & (h < 0.95)), _("that is the fraction NOT saturated"))]
    check(answer, expected, _("exercise 2 — fraction of saturated sigmoid outputs"),
          wrong=[(v, hint) for v, hint in wrong if not np.isclose(v, expected)])


def check_dead(answer, a):
    """Exercise 3: the fraction of dead ReLU units in a: (images, units) ReLU outputs."""
    a = np.asarray(a, dtype=np.float64)
    expected = np.mean(np.all(a <= 0, axis=0))
    wrong = [(np.mean(a <= 0), _("that is the fraction of zero OUTPUTS; a unit is dead only if it is 0 for "
                                 "every image: np.all(..., axis=0)")),
             (np.sum(np.all(a <= 0, axis=0)), _("that is the number of dead units; divide by the number of units")),
             (np.mean(np.all(a <= 0, axis=1)), _("wrong axis: axis=0 runs over the images, giving one answer per unit")),
             (np.mean(np.any(a <= 0, axis=0)), _("np.any counts units that are 0 for at least one image; "
                                                 "dead means 0 for all images"))]
    check(answer, expected, _("exercise 3 — fraction of dead ReLU units"),
          wrong=[(v, hint) for v, hint in wrong if not np.isclose(v, expected)])


EX4 = dict(b=np.array([0.2, -0.5, 1.0]), running_mean=np.array([1.5, 0.3, -0.8]), c=2.0)


def check_eval_shift(answer):
    """Exercise 4: in eval mode, after b ← b + c, which running_mean keeps the output unchanged?"""
    p = EX4
    check(answer, p["running_mean"] + p["c"], _("exercise 4 — the running mean after shifting b"),
          wrong=[(p["running_mean"], _("in eval mode BN subtracts the stored running mean, not the batch mean, "
                                       "so the shift c passes through unless the running mean moves with it")),
                 (p["running_mean"] - p["c"], _("wrong direction: z grew by c, so the mean subtracted from it "
                                                "must grow by c")),
                 (p["b"] + p["c"], _("that is the new bias; the question asks for the new running mean"))])
