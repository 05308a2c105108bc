"""Lesson 11 — going deeper: what depth does to a network with and without batch norm (BN) and
skip connections, why (the gradient of every layer at initialization), and what BN changes
about the learning rate (warm-up, decay, the linear scaling rule).

    sweep = deeper.depth_sweep(data)                  # {(activation, kind, depth): History}: 32 runs
    deeper.print_first_steps(deeper.first_steps(data))  # the gradient ratio over the first 5 steps
    deeper.sweep_table(sweep)                         # test accuracy after the same 150 steps
    deeper.sweep_figure(sweep)                        # accuracy against depth, sigmoid and ReLU
    deeper.gradient_figure(sweep)                     # ‖∂L/∂W_l‖ against l at step 0, 24 hidden layers
    deeper.gradient_ratio(sweep[("relu", "bn", 24)])  # first hidden layer's ‖∂L/∂W‖ ÷ the last one's
    deeper.depth_dashboard(sweep).show()              # depth slider; kind, activation and time toggles
    share = deeper.branch_share()                     # ‖f(u)‖ / ‖u‖ per residual block at step 0
    deeper.stream_growth("relu")                      # how much the skip path grows over 23 blocks
    rates = deeper.constant_rates(data)               # BN + skip (6 hidden layers) at η = 1, 3, 10
    runs = deeper.schedule_runs(data, reuse=rates)    # 4 schedules × η = 3, 6 × 3 seeds
    deeper.schedule_table(runs); deeper.schedule_figure(runs)
    scaling = deeper.scaling_runs(data)               # batch sizes 25 … 200, η fixed or × N/50
    deeper.scaling_figure(scaling)

The networks: [784] + [64] × depth + [10], one of four kinds, with sigmoid (Xavier initial
weights) or ReLU (He initial weights):
    "plain"     u' = f(u),        f(u) = act(u) W + b            (z = u enters the activation)
    "bn"        u' = f(u),        f(u) = act(BN(u)) W + b
    "skip"      u' = u + f(u),    f(u) = act(u) W + b
    "bn_skip"   u' = u + f(u),    f(u) = act(BN(u)) W + b
with u the output of a Linear layer: the same layers in the same order for all four, the skip
connections (bnlib.MLP(skip=True)) around every hidden Linear that keeps the width.
Everything is seeded: the same call gives the same numbers.
"""
import ipywidgets as widgets
import numpy as np
from matplotlib import colormaps
from matplotlib.colors import PowerNorm

from .. import plots
from ..checks import check
from ..data import load_mnist5k
from ..i18n import N_, _, columns, pad
from ..model import MLP, SkipAdd
from ..schedules import Cosine, Warmup
from ..train import PRE_RANGE, train
from ..widgets import Dashboard

WIDTH = 64                                   # units in every hidden layer
DEPTHS = (3, 6, 12, 24)                      # hidden layers
KINDS = ("plain", "bn", "skip", "bn_skip")
ACTIVATIONS = ("sigmoid", "relu")
LABELS = {"plain": N_("plain"), "bn": N_("BN"), "skip": N_("skip"), "bn_skip": N_("BN + skip")}
ACT_NAMES = {"sigmoid": N_("sigmoid"), "relu": N_("ReLU")}
COLOR = {"plain": plots.COLORS["plain"], "bn": plots.COLORS["bn"], "skip": plots.COLORS["layer"],
         "bn_skip": plots.COLORS["group"]}
MARKER = {"plain": "o", "bn": "s", "skip": "^", "bn_skip": "D"}
INIT = {"sigmoid": "xavier", "relu": "he"}
# The rate of each activation: the one of 0.1, 0.3, 1 and 3 at which the shallowest plain network
# (3 hidden layers) does best in this budget (sigmoid 15%, 21%, 42%, 23%; ReLU 90%, 90%, 10%, 10%
# after 150 steps); every kind and depth of that activation then gets the same rate.
SWEEP_LR = {"sigmoid": 1.0, "relu": 0.1}
BATCH = 60
SWEEP_STEPS = 150
SWEEP_PROBE = 200                            # test images whose distributions each record keeps
CHANCE = 0.1
STALLED_BELOW = 0.2                          # a run that ends under 20% test accuracy did not learn


def label(kind):
    """The kind's name in the learner's language: label("bn_skip") -> "BN + skip"."""
    return _(LABELS[kind])


def act_name(activation):
    return _(ACT_NAMES[activation])


def network(activation, kind, depth, seed=0):
    """[784] + [64] × depth + [10] with the activation's usual initial weights; BN before each
    activation for "bn" kinds, skip connections for "skip" kinds (see the module docstring)."""
    if kind not in KINDS or activation not in ACTIVATIONS:
        raise ValueError(_("kind must be one of {kinds} and activation one of {activations}, got {kind!r}, "
                           "{activation!r}").format(kinds=", ".join(KINDS), activations=", ".join(ACTIVATIONS),
                                                    kind=kind, activation=activation))
    return MLP([784] + [WIDTH] * depth + [10], activation=activation, norm="batch" if "bn" in kind else None,
               init=INIT[activation], skip="skip" in kind, seed=seed)


# ---------------------------------------------------------------- 1. the depth sweep
def depth_sweep(data, depths=DEPTHS, steps=SWEEP_STEPS, seed=0):
    """Every kind × activation × depth, `steps` steps of SGD at batch size 60 with the
    activation's rate SWEEP_LR, the same seed (same batches) for all: {(activation, kind, depth):
    History}. Each History has two records, at step 0 and at the end: test accuracy, the
    distributions entering every activation (over SWEEP_PROBE test images) and ‖∂L/∂W_l‖."""
    sweep = {}
    for activation in ACTIVATIONS:
        for kind in KINDS:
            for depth in depths:
                sweep[(activation, kind, depth)] = train(
                    network(activation, kind, depth, seed), data, steps=steps, batch_size=BATCH,
                    lr=SWEEP_LR[activation], record_every=steps, seed=seed, probe_size=SWEEP_PROBE,
                    eval_size=100, progress=False)
    return sweep


def _depths(sweep):
    return sorted({d for _a, _k, d in sweep})


def final_accuracy(history):
    """Test accuracy at the end of the run; NaN for a run that diverged (it has no end)."""
    return np.nan if history.diverged else history.final_test_acc


def accuracies(sweep, activation, kind):
    """Final test accuracy per depth (NaN where the run diverged)."""
    return np.array([final_accuracy(sweep[(activation, kind, d)]) for d in _depths(sweep)])


def sweep_table(sweep):
    """Print the test accuracy after the sweep's steps: one row per activation and kind, one
    column per depth; "diverged" where bnlib.train stopped the run."""
    depths = _depths(sweep)
    steps = next(iter(sweep.values())).config["steps"]
    head = _("test accuracy after {steps} steps").format(steps=steps)
    rows = [(_("{activation}, {kind} (lr {lr:g})").format(activation=act_name(a), kind=label(k), lr=SWEEP_LR[a]),
             [_("diverged") if np.isnan(x) else f"{x:.1%}" for x in accuracies(sweep, a, k)])
            for a in ACTIVATIONS for k in KINDS]
    width = max(columns(text) for text in [head] + [name for name, _c in rows]) + 2
    print(pad(head, width) + "".join(pad(_("{depth} layers").format(depth=d), 11, ">") for d in depths))
    for name, cells in rows:
        print(pad(name, width) + "".join(pad(c, 11, ">") for c in cells))


def sweep_figure(sweep):
    """Test accuracy against depth: one panel per activation, one line per kind (✕ at the
    bottom: the run diverged)."""
    depths = _depths(sweep)
    fig, axes = plots.new_figure(1, 2, 8.2, 3.3, (0.08, 0.99, 0.15, 0.84, 0.18, 0), sharey=True)
    for ax, activation in zip(axes, ACTIVATIONS):
        for kind in KINDS:
            acc = accuracies(sweep, activation, kind)
            ax.plot(depths, acc, marker=MARKER[kind], color=COLOR[kind], label=label(kind))
            bad = np.isnan(acc)
            if bad.any():
                ax.plot(np.array(depths)[bad], np.full(bad.sum(), 0.03), "x", ms=9, mew=2, color=COLOR[kind])
        ax.axhline(CHANCE, color=plots.COLORS["grey"], ls=":", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.set(xlabel=_("hidden layers (64 units each)"), ylim=(0, 1),
               title=_("{activation}, learning rate {lr:g}").format(activation=act_name(activation),
                                                                   lr=SWEEP_LR[activation]))
    axes[0].set_ylabel(_("test accuracy after {steps} steps").format(
        steps=next(iter(sweep.values())).config["steps"]))
    axes[1].legend(loc="lower left", fontsize=8)      # ReLU panel: the sigmoid one has the plain line there
    fig.suptitle(_("Deeper networks, the same budget (✕: diverged; dotted: chance)"))
    return fig


# ---------------------------------------------------------------- 2. gradients per layer
def gradient_norms(history, when=0):
    """‖∂L/∂W_l‖ for every weight layer l = 1 (784 → 64) … L + 1 (64 → 10), at record `when`
    (0: step 0; −1: the end)."""
    return history.grad_norms[when]


def gradient_ratio(history, when=0):
    """‖∂L/∂W_2‖ ÷ ‖∂L/∂W_L‖: the first 64 × 64 weight layer's gradient norm over the last one's
    (L = the number of hidden layers; W_{L+1} is the output layer). Above 1 the gradient grows on
    its way back to the input (explodes); far below 1 it vanishes. W_1 (784 → 64) sees pixels
    rather than hidden units, and the output layer has 10 units, so both are left out."""
    g = gradient_norms(history, when)
    return float(g[1] / g[-2])


def growth_per_layer(history, when=0):
    """The average factor by which ‖∂L/∂W‖ grows per layer between the last hidden layer and the
    first: gradient_ratio ** (1 / (layers between them))."""
    g = gradient_norms(history, when)
    return float((g[1] / g[-2]) ** (1 / (len(g) - 3)))


def gradient_figure(sweep, depth=24):
    """‖∂L/∂W_l‖ against the layer l at step 0, log scale: one panel per activation, one line per
    kind, for the networks with `depth` hidden layers."""
    fig, axes = plots.new_figure(1, 2, 8.2, 3.4, (0.09, 0.98, 0.15, 0.85, 0.22, 0))
    for ax, activation in zip(axes, ACTIVATIONS):
        for kind in KINDS:
            g = gradient_norms(sweep[(activation, kind, depth)])
            ax.plot(np.arange(1, len(g) + 1), g, marker=MARKER[kind], ms=3, color=COLOR[kind], label=label(kind))
        ax.set_yscale("log")
        ax.set(xlabel=_("weight layer l (1: input side, {last}: output)").format(last=depth + 1),
               title=act_name(activation))
    axes[0].set_ylabel(_("‖∂L/∂W_l‖ at step 0"))
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(_("How large each layer's gradient is before training ({depth} hidden layers, one batch of {n})")
                 .format(depth=depth, n=BATCH))
    return fig


def first_steps(data, activation="relu", kind="bn", depth=24, steps=5, seed=0):
    """The sweep's network (same seed, same batches) trained for `steps` steps with a record after
    every step: how fast its step-0 gradient ratio changes once training starts."""
    return train(network(activation, kind, depth, seed), data, steps=steps, batch_size=BATCH,
                 lr=SWEEP_LR[activation], record_every=1, seed=seed, probe_size=20, eval_size=10, progress=False)


def print_first_steps(history):
    """One line: ‖∂L/∂W_2‖ ÷ ‖∂L/∂W_L‖ at every record of `first_steps`."""
    values = _(", ").join(_("step {step}: {ratio:.3g}").format(step=s, ratio=gradient_ratio(history, r))
                          for r, s in enumerate(history.record_steps))
    print(_("‖∂L/∂W_2‖ ÷ ‖∂L/∂W_L‖ — {values}").format(values=values))


def branch_share(activation="relu", depth=24, images=200, seed=0):
    """At initialization, for every residual block l of the "skip" and "bn_skip" networks:
    ‖f(u_l)‖ / ‖u_l‖, the size of what the branch adds relative to what the skip carries (each
    ‖·‖ is the root mean square over the first `images` test images and all units). Returns
    {kind: array over the blocks}. De & Smith (2020) show that BN makes this share fall like
    1/√l: the skip path's variance grows by about 1 per block while BN keeps the branch's at 1."""
    x = load_mnist5k().x_test[:images]
    out = {}
    for kind in ("skip", "bn_skip"):
        model = network(activation, kind, depth, seed)
        shares, h = [], x
        with model.batch_statistics():
            for layer in model.layers:
                if isinstance(layer, SkipAdd):
                    shares.append(np.sqrt(np.mean(h ** 2) / np.mean(layer.start.u ** 2)))
                h = layer.forward(h)
        out[kind] = np.array(shares)
    return out


def stream_growth(activation, kind="skip", depth=24, images=200, seed=0):
    """‖u‖ after the last residual block ÷ ‖u‖ after the first Linear layer, at initialization
    (root mean squares over the first `images` test images): how much the skip path has grown."""
    x = load_mnist5k().x_test[:images]
    model = network(activation, kind, depth, seed)
    with model.batch_statistics():
        h = first = model.layers[0].forward(x)
        for layer in model.layers[1:]:
            h = layer.forward(h)
            if isinstance(layer, SkipAdd):
                last = h
    return float(np.sqrt(np.mean(last ** 2) / np.mean(first ** 2)))


def branch_figure(share):
    """‖f(u_l)‖ / ‖u_l‖ against the block l (log–log), with the 1/√l line."""
    fig, ax = plots.new_figure(1, 1, 6.0, 3.2, (0.14, 0.97, 0.16, 0.88, 0, 0))
    for kind, s in share.items():
        blocks = np.arange(1, len(s) + 1)
        ax.plot(blocks, s, marker=MARKER[kind], ms=4, color=COLOR[kind], label=label(kind))
    ax.plot(blocks, 1 / np.sqrt(blocks), color=plots.COLORS["grey"], ls="--", label="1/√l")
    ax.set(xscale="log", yscale="log", xlabel=_("residual block l"), ylabel=_("‖f(u)‖ / ‖u‖ at step 0"),
           title=_("What each block adds, relative to what the skip carries (ReLU)"))
    ax.set_yticks([0.2, 0.5, 1, 2], ["0.2", "0.5", "1", "2"])
    ax.set_xticks([1, 2, 5, 10, 20], ["1", "2", "5", "10", "20"])
    ax.minorticks_off()
    ax.legend(loc="lower left", fontsize=8)
    return fig


# ---------------------------------------------------------------- 3. the interactive view
WHEN = {0: N_("step 0"), -1: N_("after training")}


def depth_dashboard(sweep, depth=24, kind="bn", activation="relu"):
    """Left: the distribution entering every activation (one row per hidden layer: a histogram of
    z over the recorded test images, values beyond ±8 counted at the edges). Right: ‖∂L/∂W_l‖ of
    every layer for all four kinds, the chosen one bold. A depth slider and toggles for the
    kind, the activation and the record (step 0 / after training). Everything was computed by
    `depth_sweep`: moving a control only swaps pictures."""
    depths, top = _depths(sweep), max(_depths(sweep))
    steps = next(iter(sweep.values())).config["steps"]
    fig, (ax_z, ax_g) = plots.new_figure(1, 2, 8.2, 3.9, (0.07, 0.98, 0.13, 0.84, 0.42, 0))
    blank = np.full((top, len(next(iter(sweep.values())).layers[0].pre.hist[0])), np.nan)
    image = ax_z.imshow(blank, aspect="auto", origin="lower", extent=(*PRE_RANGE, 0.5, top + 0.5),
                        cmap=colormaps["viridis"].with_extremes(bad="white"), norm=PowerNorm(0.5, vmin=0, vmax=0.25),
                        interpolation="nearest")                     # white: no such layer at this depth
    fig.colorbar(image, ax=ax_z, pad=0.02, label=_("share of the values"), ticks=[0, 0.01, 0.05, 0.1, 0.2])
    ax_z.set(xlabel=_("z, the input of the activation"), ylabel=_("hidden layer"), ylim=(0.5, top + 0.5))
    lines = {k: ax_g.plot([], [], marker=MARKER[k], ms=3, color=COLOR[k], label=label(k))[0] for k in KINDS}
    finite = np.concatenate([h.grad_norms[np.isfinite(h.grad_norms)] for h in sweep.values()])
    ax_g.set(yscale="log", xlim=(0.5, top + 1.5), ylim=(finite[finite > 0].min() / 3, finite.max() * 3),
             xlabel=_("layer l (1 = next to the input)"), ylabel="‖∂L/∂W_l‖")
    # above the panel: every corner inside it holds a curve in some setting of the controls
    ax_g.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, fontsize=8, frameon=False,
                handlelength=1.5, columnspacing=1.0, borderaxespad=0.2)
    title = fig.suptitle(" ")

    def record(h, when):
        """The record to show, or None: a run that diverged has no record after training."""
        return None if (h.diverged and when == -1) else when

    def update(depth, kind, activation, when):
        h = sweep[(activation, kind, depth)]
        hist = blank.copy()
        if record(h, when) is not None:
            hist[:depth] = [layer.pre.hist[when] for layer in h.layers]
        image.set_data(hist)
        for k, line in lines.items():
            hk = sweep[(activation, k, depth)]
            g = hk.grad_norms[when] if record(hk, when) is not None else np.full(depth + 1, np.nan)
            line.set_data(np.arange(1, len(g) + 1), g)
            line.set_linewidth(2.5 if k == kind else 0.8)
            line.set_alpha(1.0 if k == kind else 0.5)
        title.set_text(_("{activation}, {depth} hidden layers, {kind}: {when}").format(
            activation=act_name(activation), depth=depth, kind=label(kind), when=_(WHEN[when])))
        if h.diverged:
            return _("{activation}, {depth} layers, {kind}: the run diverged, so there is no record after training; "
                     "at step 0 ‖∂L/∂W_2‖ ÷ ‖∂L/∂W_{last}‖ = {ratio:.3g}").format(
                activation=act_name(activation), depth=depth, kind=label(kind), last=depth,
                ratio=gradient_ratio(h, 0))
        return _("{activation}, {depth} layers, {kind}, {when}: ‖∂L/∂W_2‖ ÷ ‖∂L/∂W_{last}‖ = {ratio:.3g}; "
                 "test accuracy after {steps} steps: {acc:.1%}").format(
            activation=act_name(activation), depth=depth, kind=label(kind), when=_(WHEN[when]), last=depth,
            ratio=gradient_ratio(h, when), steps=steps, acc=h.final_test_acc)

    def buttons(options, value, description):
        # wide enough for the longest label in the current language (a kana or kanji is two columns)
        width = 7 * max(columns(text) for text, _v in options) + 24
        return widgets.ToggleButtons(options=options, value=value, description=description,
                                     style={"button_width": f"{width}px", "description_width": "initial"})

    controls = dict(                           # "initial": a description as wide as its text (80 px cut it off)
        depth=widgets.SelectionSlider(options=depths, value=depth, description=_("hidden layers"),
                                      style={"description_width": "initial"}),
        kind=buttons([(label(k), k) for k in KINDS], kind, _("network")),
        activation=buttons([(act_name(a), a) for a in ACTIVATIONS], activation, _("activation")),
        when=buttons([(_(WHEN[w]), w) for w in WHEN], 0, _("record")))
    return Dashboard(fig, update, animated=[image, title, *lines.values()], **controls)


# ---------------------------------------------------------------- 4. the learning rate with BN
LR_DEPTH = 6                               # the BN + skip ReLU network of the learning-rate experiments
LR_STEPS = 150
CONSTANT_RATES = (1.0, 3.0, 10.0)
PEAK_RATES = (3.0, 6.0)                    # the largest constant rate that learns, and twice it
SEEDS = (0, 1, 2)
WARMUP_STEPS = 30                          # a fifth of the run (0.45 epochs at N = 60)
SCHEDULES = ("constant", "warmup", "decay", "warmup_decay")
SCHEDULE_NAMES = {"constant": N_("constant"), "warmup": N_("warm-up"), "decay": N_("cosine decay"),
                  "warmup_decay": N_("warm-up + decay")}
SCHEDULE_COLOR = {"constant": plots.COLORS["plain"], "warmup": plots.COLORS["layer"],
                  "decay": plots.COLORS["renorm"], "warmup_decay": plots.COLORS["bn"]}


def schedule_name(schedule):
    return _(SCHEDULE_NAMES[schedule])


def make_schedule(schedule, peak, steps=None, warmup=None):
    """The learning rate of each schedule as a function of the step, reaching `peak`: constant η;
    Warmup from 0.1·η to η over `warmup` steps (default WARMUP_STEPS); Cosine from η to 0 over the
    `steps` of the run (default LR_STEPS); both."""
    steps = LR_STEPS if steps is None else steps
    warmup = WARMUP_STEPS if warmup is None else warmup
    if schedule == "constant":
        return peak
    if schedule == "warmup":
        return Warmup(peak, steps=warmup)
    if schedule == "decay":
        return Cosine(peak, total=steps)
    if schedule == "warmup_decay":
        return Warmup(Cosine(peak, total=steps), steps=warmup)
    raise ValueError(_("schedule must be one of {choices}, got {value!r}").format(choices=", ".join(SCHEDULES),
                                                                               value=schedule))


def lr_network(seed=0):
    return network("relu", "bn_skip", LR_DEPTH, seed)


def _lr_run(data, lr, seed, records=1):
    return train(lr_network(seed), data, steps=LR_STEPS, batch_size=BATCH, lr=lr, record_every=LR_STEPS // records,
                 seed=seed, probe_size=20, eval_size=100, progress=False)


def outcome(history):
    """"diverged" (bnlib.train stopped it), "stalled" (ended under 20% test accuracy) or "learned"."""
    if history.diverged:
        return "diverged"
    return "stalled" if history.final_test_acc < STALLED_BELOW else "learned"


OUTCOMES = {"diverged": N_("diverged"), "stalled": N_("stalled"), "learned": N_("learned")}


def constant_rates(data, rates=CONSTANT_RATES, seed=0):
    """The BN + skip ReLU network (6 hidden layers), 150 steps at each constant rate: {η: History}."""
    return {lr: _lr_run(data, lr, seed) for lr in rates}


def rates_table(rates):
    """Print each constant rate's final test accuracy and outcome."""
    for lr, h in rates.items():
        acc = "—" if h.diverged else f"{h.final_test_acc:.1%}"
        print(_("constant learning rate {lr:>4g}: test accuracy {acc:>6} ({outcome})").format(
            lr=lr, acc=acc, outcome=_(OUTCOMES[outcome(h)])))


def largest_learning_rate(rates):
    """The largest of the constant rates whose run learned (ended at 20% or more)."""
    return max(lr for lr, h in rates.items() if outcome(h) == "learned")


def schedule_runs(data, peaks=PEAK_RATES, seeds=SEEDS, reuse=None):
    """Every schedule at every peak rate and seed: {(peak, schedule, seed): History}. reuse: the
    runs of `constant_rates` (seed 0): the constant run at a peak is taken from there."""
    runs = {}
    for peak in peaks:
        for schedule in SCHEDULES:
            for seed in seeds:
                if schedule == "constant" and seed == 0 and reuse is not None and peak in reuse:
                    runs[(peak, schedule, seed)] = reuse[peak]
                else:
                    runs[(peak, schedule, seed)] = _lr_run(data, make_schedule(schedule, peak), seed)
    return runs


def _grid(runs):
    peaks = sorted({p for p, _s, _d in runs})
    seeds = sorted({d for _p, _s, d in runs})
    return peaks, seeds


def schedule_accuracies(runs, peak, schedule):
    """Final test accuracy of each seed (NaN where diverged)."""
    return np.array([final_accuracy(runs[(peak, schedule, seed)]) for seed in _grid(runs)[1]])


def schedule_table(runs):
    """Print, per schedule and peak rate, the mean test accuracy over the seeds and its range."""
    peaks, seeds = _grid(runs)
    head = _("test accuracy ({n} seeds)").format(n=len(seeds))
    width = max(columns(text) for text in [head] + [schedule_name(s) for s in SCHEDULES]) + 2
    print(pad(head, width) + "".join(pad(_("peak η = {peak:g}").format(peak=p), 26, ">") for p in peaks))
    for schedule in SCHEDULES:
        cells = []
        for peak in peaks:
            acc = schedule_accuracies(runs, peak, schedule)
            cells.append(_("{mean:.1%} ({low:.1%}–{high:.1%})").format(
                mean=np.nanmean(acc), low=np.nanmin(acc), high=np.nanmax(acc)))
        print(pad(schedule_name(schedule), width) + "".join(pad(c, 26, ">") for c in cells))


def _smooth(loss, window=10):
    if len(loss) < window:
        return np.arange(len(loss)), loss
    return np.arange(window - 1, len(loss)), np.convolve(loss, np.ones(window) / window, mode="valid")


def schedule_figure(runs):
    """(a) η_t of the four schedules at the larger peak; (b) their training loss there (seed 0,
    10-step average); (c) final test accuracy of every seed, per schedule and peak."""
    peaks, seeds = _grid(runs)
    high = max(peaks)
    fig, (ax_s, ax_l, ax_a) = plots.new_figure(1, 3, 8.2, 3.4, (0.07, 0.99, 0.22, 0.83, 0.36, 0))
    for schedule in SCHEDULES:
        color = SCHEDULE_COLOR[schedule]
        h = runs[(high, schedule, seeds[0])]
        ax_s.plot(np.arange(len(h.lr)), h.lr, color=color, label=schedule_name(schedule))
        ax_l.plot(*_smooth(h.loss), color=color)
    ax_s.set(xlabel=_("training step"), ylabel=_("learning rate η"), title=_("(a) schedules, peak {peak:g}")
             .format(peak=high))
    ax_l.set(xlabel=_("training step"), ylabel=_("training loss"), ylim=(0, 3),
             title=_("(b) loss at peak {peak:g}").format(peak=high))
    fig.legend(*ax_s.get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=8, frameon=False)
    width = 0.8 / len(SCHEDULES)
    for i, schedule in enumerate(SCHEDULES):
        for j, peak in enumerate(peaks):
            acc = schedule_accuracies(runs, peak, schedule)
            x = j + (i - 1.5) * width
            ax_a.bar(x, np.nanmean(acc), width * 0.9, color=SCHEDULE_COLOR[schedule], alpha=0.45)
            ax_a.plot(np.full(len(acc), x), acc, ".", color=SCHEDULE_COLOR[schedule], ms=6)
    ax_a.set_xticks(range(len(peaks)), [_("peak {peak:g}").format(peak=p) for p in peaks])
    ax_a.set(ylim=(0, 1), ylabel=_("test accuracy"), title=_("(c) {n} seeds each").format(n=len(seeds)))
    fig.suptitle(_("BN + skip, {depth} hidden layers (ReLU), {steps} steps: how the rate moves over the run")
                 .format(depth=LR_DEPTH, steps=LR_STEPS))
    return fig


# ---------------------------------------------------------------- the linear scaling rule
SCALING_BATCHES = (25, 50, 100, 200)           # every one divides the 4,000 training images
SCALING_BASE_BATCH, SCALING_BASE_LR = 50, 0.2
SCALING_EPOCHS = 2
TRAIN_IMAGES = 4000


def scaling_lr(batch, rule, base_lr=SCALING_BASE_LR, base_batch=SCALING_BASE_BATCH):
    """The learning rate for batch size N: "scaled" multiplies η by N / base_batch (Goyal et al.
    2017, §2.1), "fixed" keeps it."""
    return base_lr * batch / base_batch if rule == "scaled" else base_lr


def scaling_runs(data, batches=SCALING_BATCHES, epochs=SCALING_EPOCHS, seed=0):
    """The BN + skip network at every batch size N for the same `epochs` (so the same images),
    with η fixed and with η scaled by N / 50: {(N, rule): History}, a record every quarter epoch
    (the base batch size's run is shared: both rules give it the same rate)."""
    runs = {}
    for batch in batches:
        per_epoch = TRAIN_IMAGES // batch
        for rule in ("fixed", "scaled"):
            if rule == "scaled" and scaling_lr(batch, "scaled") == scaling_lr(batch, "fixed"):
                runs[(batch, rule)] = runs[(batch, "fixed")]
                continue
            runs[(batch, rule)] = train(lr_network(seed), data, steps=epochs * per_epoch, batch_size=batch,
                                        lr=scaling_lr(batch, rule), record_every=per_epoch // 4, seed=seed,
                                        probe_size=20, eval_size=100, progress=False)
    return runs


def epochs_of(history):
    """The record steps as epochs: images seen ÷ 4,000."""
    return history.record_steps * history.config["batch_size"] / TRAIN_IMAGES


def accuracy_at_epoch(history, epoch):
    """Test accuracy at the record taken after `epoch` epochs."""
    where = np.flatnonzero(np.isclose(epochs_of(history), epoch))
    if not len(where):
        raise ValueError(_("no record after {epoch:g} epochs").format(epoch=epoch))
    return float(history.test_acc[where[0]])


def scaling_figure(runs):
    """Test accuracy against epochs for every batch size: (a) η fixed, (b) η × N / 50."""
    batches = sorted({b for b, _r in runs})
    fig, axes = plots.new_figure(1, 2, 8.2, 3.3, (0.08, 0.99, 0.15, 0.84, 0.18, 0), sharey=True)
    for ax, rule, tag in zip(axes, ("fixed", "scaled"), ("(a)", "(b)")):
        for i, batch in enumerate(batches):
            h = runs[(batch, rule)]
            ax.plot(epochs_of(h), h.test_acc, marker=".", color=plots.CYCLE[i],
                    label=_("N = {n}, η = {lr:g}").format(n=batch, lr=scaling_lr(batch, rule)))
        ax.set(xlabel=_("epochs (passes over the 4,000 training images)"), ylim=(0, 1))
        ax.legend(loc="lower right", fontsize=8)
    axes[0].set_title(_("(a) the same η = {lr:g} for every N").format(lr=SCALING_BASE_LR))
    axes[1].set_title(_("(b) linear scaling: η = {lr:g} · N / {n}").format(lr=SCALING_BASE_LR, n=SCALING_BASE_BATCH))
    axes[0].set_ylabel(_("test accuracy"))
    fig.suptitle(_("Larger batches, the same images: does η × N keep the curves together?"))
    return fig


# ---------------------------------------------------------------- exercises
def check_warmup(answer, peak=3.0, steps=40, start_factor=0.1, t=10):
    """Exercise 1: η at step t of Warmup(peak, steps, start_factor)."""
    right = peak * (start_factor + (1 - start_factor) * t / steps)
    check(answer, right, _("exercise 1 — the warm-up rate at step {t}").format(t=t),
          wrong=[(peak * t / steps, _("the warm-up does not start at 0: at step 0 the rate is start_factor · η")),
                 (peak * start_factor * t / steps, _("the rate grows from start_factor · η to η: the part that "
                                                     "grows is (1 − start_factor) · η, spread over the steps")),
                 (peak, _("step {t} is still inside the warm-up (it lasts {steps} steps)").format(t=t, steps=steps)),
                 (peak * start_factor, _("that is the rate at step 0; by step {t} it has grown").format(t=t))])


# ‖∂L/∂W_l‖ at step 0 of the "bn" ReLU network with 12 hidden layers (depth_sweep's seed, first
# batch), rounded: entry 0 is the 784 → 64 layer, entries 1 … 11 the 64 × 64 hidden layers, the last
# entry the 64 → 10 output layer
EXERCISE_NORMS = np.array([20.11, 5.028, 3.879, 3.397, 2.875, 2.122, 1.953, 1.651, 1.405, 1.211, 0.959, 0.79, 0.939])


def check_growth(answer, norms=EXERCISE_NORMS):
    """Exercise 2: the average growth factor per layer between the last hidden layer (norms[-2])
    and the first hidden 64 × 64 layer (norms[1]): (norms[1] / norms[-2]) ** (1 / steps between)."""
    between = len(norms) - 3
    ratio = norms[1] / norms[-2]
    check(answer, ratio ** (1 / between), _("exercise 2 — growth per layer"),
          wrong=[(ratio, _("that is the growth over all the layers; the question asks for the factor per layer: "
                           "take the root")),
                 (ratio ** (1 / (between + 1)), _("count the steps between the two layers, not the layers: from "
                                                  "entry 1 to entry {last} is {n} steps").format(
                     last=len(norms) - 2, n=between)),
                 (ratio / between, _("the growth multiplies from layer to layer: take the {n}-th root, do not "
                                     "divide").format(n=between)),
                 ((1 / ratio) ** (1 / between), _("the gradient is larger near the input: divide the first "
                                                  "hidden layer's norm by the last one's")),
                 ((norms[0] / norms[-1]) ** (1 / (len(norms) - 1)), _("leave out the 784 → 64 layer and the "
                                                                     "output layer: compare entries 1 and {last}")
                  .format(last=len(norms) - 2))],
          rtol=1e-3, atol=0)


def check_scaled_lr(answer, base_lr=0.2, base_batch=50, batch=200):
    """Exercise 3: the linear scaling rule's rate for batch size `batch`."""
    check(answer, base_lr * batch / base_batch, _("exercise 3 — the scaled learning rate"),
          wrong=[(base_lr, _("the rule changes η with the batch size: multiply it by N / {base}").format(base=base_batch)),
                 (base_lr * base_batch / batch, _("a larger batch gets a larger rate, not a smaller one")),
                 (base_lr * np.sqrt(batch / base_batch), _("that is square-root scaling; the linear rule "
                                                           "multiplies η by N / {base} itself").format(base=base_batch))])


def check_skip_product(answer, a=0.5, blocks=10):
    """Exercise 4: the factor by which ∂L/∂u grows back through `blocks` residual blocks when each
    branch has ∂f/∂u = a (one number, for the sketch): (1 + a) ** blocks."""
    check(answer, (1 + a) ** blocks, _("exercise 4 — the gradient through {n} blocks").format(n=blocks),
          wrong=[(a ** blocks, _("that is the chain without skip connections; with one, each block's factor is "
                                 "∂u'/∂u = 1 + ∂f/∂u")),
                 (1 + a ** blocks, _("the factor 1 + a comes once per block: multiply it {n} times").format(n=blocks)),
                 (1 + a * blocks, _("the factors multiply, they do not add: (1 + a) · (1 + a) · …")),
                 ((1 + a) * blocks, _("multiply the {n} factors together: a power, not a product with {n}")
                  .format(n=blocks))],
          rtol=1e-4, atol=0)
