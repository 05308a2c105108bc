"""Lesson 04 — with and without batch norm: the BN paper's Figure 1 on MNIST-5k, then the three
merits the source article claims, each as a small experiment.

    runs = compare.figure1_runs(data)        # {"plain": History, "bn": History}: lr 0.1, 1,000 steps
    compare.figure1(runs)                    # (a) test accuracy, (b)/(c) percentile bands
    compare.start_band_widths(runs["plain"]) # how much z differs between images at step 0, per layer
    grid = compare.lr_grid(data, reuse=runs) # {(lr, kind): History} for LRS × KINDS, 300 steps each
    compare.sweep_table(grid)                # accuracy after 300 steps, and how each run ended
    compare.label("bn")                      # "with BN" (in the learner's language, see bnlib.set_language)
    compare.stuck_units(grid[(10.0, "plain")])   # share of last-layer units that send one value for all images
    compare.lr_dashboard(grid).show()        # lr slider + BN on/off: the sweep and swapped curves
    sweep = compare.init_sweep(data)         # {(std, kind): History} for INIT_STDS × KINDS
    compare.gap_figure(runs)                 # train and test accuracy: the generalization gap

The two networks ("kinds") are the BN paper's MNIST network, 784-100-100-100-10 with sigmoid:
    "plain":  z = h W + b,                                h' = sigmoid(z)
    "bn":     u = h W + b,  z = γ (u − μ_B)/√(σ²_B + ε) + β,  h' = sigmoid(z)
where μ_B and σ²_B are the mean and (biased) variance of u over the batch of N = 60 images.
Everything is seeded: the same call gives the same numbers.
"""
from dataclasses import fields, replace

import ipywidgets as widgets
import numpy as np
from matplotlib.lines import Line2D

from .. import plots
from ..checks import NotYet, check
from ..i18n import N_, _, pad
from ..model import MLP
from ..train import train
from ..widgets import Dashboard

SIZES = [784, 100, 100, 100, 10]     # the BN paper's MNIST network
BATCH = 60                           # the BN paper's batch size
KINDS = ("plain", "bn")
LABELS = {"plain": N_("without BN"), "bn": N_("with BN")}          # shown through label(kind)
OUTCOMES = {"learned": N_("learned"), "stalled": N_("stalled"), "diverged": N_("diverged")}
LRS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)   # half-decade steps on a log axis
INIT_STDS = (0.01, 0.3, 1.0)                # std of the N(0, std²) initial weights
GRID_STEPS = 300                             # steps per run of the learning-rate grid
GRID_PROBE = 100                             # test images whose per-unit percentiles each record keeps
INIT_STEPS = 200                             # steps per run of the initialization sweep
CHANCE = 0.1                                 # 10 classes
STALLED_BELOW = 0.2                          # a run that ends under 20% test accuracy "stalled"
STUCK_WIDTH = 0.01                           # a unit whose output band is narrower than this is "stuck"
LEGEND = 9                                   # legend font size (points)


def label(kind):
    """What a learner reads for a network kind: "without BN" / "with BN" (or the same in Japanese)."""
    return _(LABELS[kind])




def network(kind, init="xavier", seed=0):
    """The BN paper's MNIST network without ("plain") or with ("bn") batch norm before each sigmoid."""
    if kind not in KINDS:
        raise ValueError(_("kind must be one of {kinds}, got {kind!r}").format(kinds=KINDS, kind=kind))
    return MLP(SIZES, activation="sigmoid", norm=None if kind == "plain" else "batch", init=init, seed=seed)


def run_pair(data, lr, steps, record_every, probe_size=10, init="xavier", seed=0):
    """Train both networks with the same data order, learning rate and steps: {kind: History}.
    Each History also keeps its trained network as `.network` (to look at γ and β afterwards)."""
    pair = {}
    for kind in KINDS:
        net = network(kind, init, seed)
        pair[kind] = train(net, data, steps=steps, batch_size=BATCH, lr=lr, record_every=record_every,
                           seed=seed, probe_size=probe_size, progress=False)
        pair[kind].network = net
    return pair


# ---------------------------------------------------------------- Figure 1
def figure1_runs(data, lr=0.1, steps=1000, record_every=50, probe_size=200, seed=0):
    """The pair for Figure 1: plain SGD, batch 60, learning rate `lr`. Every `record_every` steps
    each History stores test accuracy and, per hidden layer, percentiles of the sigmoid input z
    over `probe_size` test images (for the bands of Figure 1(b, c))."""
    return run_pair(data, lr, steps, record_every, probe_size, seed=seed)


def record_index(history, step):
    """Index of the record taken at `step` (raises if there is none)."""
    where = np.flatnonzero(history.record_steps == step)
    if not len(where):
        raise ValueError(_("no record at step {step}; records: {records}").format(
            step=step, records=history.record_steps.tolist()))
    return int(where[0])


def accuracy_at(history, step):
    """Test accuracy recorded at `step`."""
    return float(history.test_acc[record_index(history, step)])


def figure1(runs, layer=-1, unit=0):
    """(a) test accuracy against step, both networks; (b) without BN and (c) with BN: the 15th,
    50th and 85th percentiles of one sigmoid input z (last hidden layer, one unit), same y axis."""
    fig, ax_a = plots.new_figure(1, 1, width=plots.MAX_WIDTH, height=5.8)
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 1.25])
    ax_a.set_subplotspec(grid[0, :])                     # (a) across the top; (b) and (c) side by side below
    ax_b, ax_c = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    plots.accuracy_curves(ax_a, {label(k): h for k, h in runs.items()})
    for line, kind in zip(ax_a.get_lines(), runs):
        line.set_color(plots.COLORS[kind])
    ax_a.axhline(CHANCE, color=plots.COLORS["grey"], ls=":", label=_("chance (10 classes)"))
    ax_a.legend(loc="center right", bbox_to_anchor=(1.0, 0.68), fontsize=LEGEND)
    ax_a.set_title(_("(a) test accuracy"))
    for ax, kind, tag in ((ax_b, "plain", "(b)"), (ax_c, "bn", "(c)")):
        plots.percentile_bands(ax, runs[kind], layer=layer, unit=unit, color=plots.COLORS[kind])
        ax.set_title(_("{tag} {label}: one sigmoid input z").format(tag=tag, label=label(kind)))
        ax.set_ylabel(_("z (last hidden layer, unit {unit})").format(unit=unit))
        ax.legend(loc="lower left", fontsize=LEGEND, ncol=2, handlelength=1.5, columnspacing=1.0)
    low = min(ax_b.get_ylim()[0], ax_c.get_ylim()[0])
    high = max(ax_b.get_ylim()[1], ax_c.get_ylim()[1])
    for ax in (ax_b, ax_c):
        ax.set_ylim(low - 0.4 * (high - low), high)        # room below the bands for the legend
    lr = runs["plain"].config.get("lr")
    fig.suptitle(_("The BN paper's Figure 1 on MNIST-5k (sigmoid, batch {batch}, SGD, learning rate {lr:g})")
                 .format(batch=BATCH, lr=lr))
    return fig


def band_numbers(history, layer=-1, unit=0):
    """How one unit's band moves. width = 85th − 15th percentile of z at each record.
    Returns width_start, width_min, width_max (after step 0), median_start, median_end, median_range."""
    p = history.layers[layer].pre.unit_percentiles[:, unit, :]      # (R, 3)
    width, median = p[:, 2] - p[:, 0], p[:, 1]
    return dict(width_start=float(width[0]), width_min=float(width[1:].min()), width_max=float(width[1:].max()),
                median_start=float(median[0]), median_end=float(median[-1]),
                median_range=float(median.max() - median.min()))


def start_band_widths(history):
    """Per hidden layer: the median over its units of the band width (85th − 15th percentile of z
    over the recorded test images) at the first record, step 0. It measures how much the sigmoid
    inputs of a layer differ from image to image before any training."""
    return np.array([float(np.median(layer.pre.unit_percentiles[0, :, 2] - layer.pre.unit_percentiles[0, :, 0]))
                     for layer in history.layers])


def band_growth_all_units(history, layer=-1):
    """Per unit of the layer: (largest band width after step 0) / (band width at step 0)."""
    p = history.layers[layer].pre.unit_percentiles                  # (R, units, 3)
    width = p[:, :, 2] - p[:, :, 0]
    return width[1:].max(axis=0) / width[0]


# ---------------------------------------------------------------- merit 1: larger learning rates
def truncate(history, steps):
    """The first `steps` steps of a run, as a History of its own.

    Training is seeded and recording never changes it, so the first 300 steps of a 1,000-step
    run ARE the 300-step run with the same settings: no need to train them twice."""
    if steps not in history.record_steps:
        raise ValueError(_("the run has no record at step {steps}; records: {records}").format(
            steps=steps, records=history.record_steps.tolist()))
    keep = history.record_steps <= steps

    def cut_stats(stats):
        return replace(stats, **{f.name: getattr(stats, f.name)[keep] for f in fields(stats) if f.name != "bin_edges"})

    layers = [replace(layer, pre=cut_stats(layer.pre), act=cut_stats(layer.act), saturated=layer.saturated[keep])
              for layer in history.layers]
    return replace(history, steps=history.steps[:steps], loss=history.loss[:steps],
                   record_steps=history.record_steps[keep], train_acc=history.train_acc[keep],
                   test_acc=history.test_acc[keep], layers=layers, config={**history.config, "steps": steps})


def lr_grid(data, lrs=LRS, steps=GRID_STEPS, record_every=50, probe_size=GRID_PROBE, seed=0, reuse=None):
    """Both networks at every learning rate in `lrs`, `steps` steps each: {(lr, kind): History}.

    Computed once, so the dashboard only swaps curves. A run stops early (History.diverged)
    only when its loss becomes NaN/inf or stays above 10·ln 10 ≈ 23 for 20 steps in a row
    (see bnlib.train): a run whose loss jumps and comes back keeps going. reuse: a longer pair
    of runs from `run_pair` (e.g. Figure 1's) with the same seed and batch size; its learning
    rate is then cut out of it with `truncate` instead of trained again."""
    reused_lr = None if reuse is None else reuse["plain"].config["lr"]
    grid = {}
    for lr in lrs:
        if lr == reused_lr and reuse["plain"].config["seed"] == seed:
            pair = {kind: truncate(reuse[kind], steps) for kind in KINDS}
        else:
            pair = run_pair(data, lr, steps, record_every, probe_size=probe_size, seed=seed)
        for kind, h in pair.items():
            grid[(lr, kind)] = h
    return grid


def grid_lrs(grid):
    return sorted({lr for lr, _ in grid})


def outcome(history):
    """"diverged" (bnlib.train stopped it), "stalled" (ended under 20% test accuracy) or "learned"."""
    if history.diverged:
        return "diverged"
    return "stalled" if history.final_test_acc < STALLED_BELOW else "learned"


def final_accuracy(history):
    """Test accuracy at the end of the run; NaN for a run that diverged (it has no end)."""
    return np.nan if history.diverged else history.final_test_acc


def sweep_arrays(grid):
    """(lrs, {kind: final test accuracy per lr (NaN where diverged)})."""
    lrs = grid_lrs(grid)
    return np.array(lrs), {kind: np.array([final_accuracy(grid[(lr, kind)]) for lr in lrs]) for kind in KINDS}


def sweep_table(grid):
    """Print, per learning rate, each network's test accuracy at the end and its outcome."""
    lrs = grid_lrs(grid)
    steps = grid[(lrs[0], "plain")].config["steps"]
    head = _("test accuracy after {steps} steps").format(steps=steps)
    print(pad(head, 30) + "".join(pad(label(k), 22, ">") for k in KINDS))
    for lr in lrs:
        cells = []
        for kind in KINDS:
            h = grid[(lr, kind)]
            acc = "—" if h.diverged else f"{h.final_test_acc:.1%}"
            cells.append(pad(acc, 9, ">") + " " + pad(_(OUTCOMES[outcome(h)]), 12, ">"))
        print(pad(_("learning rate {lr:g}").format(lr=lr), 30) + "".join(cells))


def first_loss_peak(history, steps=10):
    """The largest training loss of the first `steps` steps (the jump a large learning rate makes)."""
    return float(history.loss[:steps].max())


def stuck_units(history, layer=-1, width=STUCK_WIDTH):
    """Share of the layer's units that send (almost) the same value for every image at the end
    of the run: the 15th–85th percentile band of the unit's sigmoid output, over the recorded
    test images, is narrower than `width`. Such a unit cannot tell the images apart, and its
    sigmoid is flat there, so almost no gradient flows back through it."""
    p = history.layers[layer].act.unit_percentiles[-1]               # (units, 3) at the last record
    return float(np.mean(p[:, 2] - p[:, 0] < width))


def beta_gamma_ratio(history, layer=-1, width=STUCK_WIDTH):
    """For a BN run: the median of |β|/|γ| over the layer's stuck units and over its other units.

    The sigmoid's input is z = γ x̂ + β, and x̂ stays within about ±3 (BN standardizes it over
    the batch). When |β| is many times |γ|, z stays far from 0 for every image: the unit sits in
    the sigmoid's flat tail. Needs the trained network (`.network`, kept by `run_pair`)."""
    if not hasattr(history, "network"):
        raise ValueError(_("this History has no trained network: use a run made by run_pair or lr_grid "
                           "(a run cut out of a longer one with truncate keeps none)"))
    _linear, bn, _act = history.network.hidden[layer]
    ratio = np.abs(bn.beta.ravel()) / np.abs(bn.gamma.ravel())
    p = history.layers[layer].act.unit_percentiles[-1]
    stuck = p[:, 2] - p[:, 0] < width
    return (float(np.median(ratio[stuck])) if stuck.any() else np.nan,
            float(np.median(ratio[~stuck])) if (~stuck).any() else np.nan)


def _smooth(loss, window=10):
    """Moving average over `window` steps (the per-batch loss is noisy)."""
    if len(loss) < window:
        return np.arange(len(loss)), loss
    kernel = np.ones(window) / window
    return np.arange(window - 1, len(loss)), np.convolve(loss, kernel, mode="valid")


def lr_dashboard(grid):
    """A learning-rate slider and a BN on/off toggle over the precomputed grid.

    Left: the sweep — test accuracy after the last step against the learning rate (log axis),
    both networks, × for runs that diverged; the chosen run is circled. Middle: test accuracy
    against step. Right: training loss, per step (thin) and as a moving average of 10 steps
    (thick), log axis, with bnlib's stop line 10·ln 10. In the middle and right panels the
    chosen network is drawn in its color, the other one (same lr) gray dashed.
    """
    lrs = grid_lrs(grid)
    lr_arr, acc = sweep_arrays(grid)
    steps = grid[(lrs[0], "plain")].config["steps"]
    grey, black = plots.COLORS["grey"], plots.COLORS["black"]
    fig, (ax_sw, ax_acc, ax_loss) = plots.new_figure(1, 3, width=plots.MAX_WIDTH, height=4.3,
                                                     margins=(0.08, 0.975, 0.31, 0.86, 0.38, 0))
    for kind in KINDS:
        color = plots.COLORS[kind]
        ax_sw.plot(lr_arr, acc[kind], "o-", color=color)
        bad = np.isnan(acc[kind])
        if bad.any():
            ax_sw.plot(lr_arr[bad], np.full(bad.sum(), 0.03 if kind == "plain" else 0.07), "x", ms=8, mew=2,
                       color=color)
    ax_sw.axhline(CHANCE, color=grey, ls=":", lw=1)
    ring, = ax_sw.plot([], [], "o", ms=15, mfc="none", mec=black, mew=1.5)
    ax_sw.set_xscale("log")
    ax_sw.set_xticks(lr_arr, [f"{lr:g}" for lr in lr_arr])
    ax_sw.minorticks_off()
    ax_sw.set(xlabel=_("learning rate (log scale)"), ylabel=_("test accuracy after {steps} steps").format(steps=steps),
              ylim=(0, 1))
    ax_sw.set_title(_("the sweep (× = stopped)"), fontsize=10)

    other_acc, = ax_acc.plot([], [], color=grey, lw=1.2, ls="--")
    main_acc, = ax_acc.plot([], [], lw=2.2, marker="o", ms=3)
    ax_acc.axhline(CHANCE, color=grey, ls=":", lw=1)
    note = ax_acc.text(0.5, 0.88, "", transform=ax_acc.transAxes, ha="center", va="center", color=black,
                       fontsize=LEGEND)
    ax_acc.set(xlim=(0, steps), ylim=(0, 1), xlabel=_("training step"), ylabel=_("test accuracy"))
    ax_acc.set_title(_("test accuracy"), fontsize=10)
    raw_loss, = ax_loss.plot([], [], lw=1.0, alpha=0.5)
    other_loss, = ax_loss.plot([], [], color=grey, lw=1.2, ls="--")
    main_loss, = ax_loss.plot([], [], lw=2.2)
    peak, = ax_loss.plot([], [], "v", ms=7, color=black)
    ax_loss.axhline(np.log(10), color=grey, ls=":", lw=1)
    ax_loss.axhline(10 * np.log(10), color=black, ls="--", lw=1)
    ax_loss.set(xlim=(-0.03 * steps, steps), ylim=(0.05, 150), yscale="log", xlabel=_("training step"),
                ylabel=_("training loss (log scale)"))
    ax_loss.set_title(_("training loss"), fontsize=10)

    # one legend under the panels (inside them it would sit under the moving curves)
    handles = [_legend_line(plots.COLORS["plain"], "-", "o"), _legend_line(plots.COLORS["bn"], "-", "o"),
               _legend_line(grey, "--"), _legend_line(grey, ":"), _legend_line(black, "--"),
               _legend_line("none", "", "o", mec=black, ms=11), _legend_line(black, lw=1.0, alpha=0.5),
               _legend_line(black, lw=2.2), _legend_line(black, "", "v", ms=7)]
    labels = [label("plain"), label("bn"), _("the other network, same learning rate"),
              _("chance: accuracy 10%, loss ln 10 ≈ 2.3"), _("loss 10·ln 10 ≈ 23: bnlib's stop line"),
              _("the run shown"), _("loss: each step"), _("loss: 10-step average"), _("loss: highest")]
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=LEGEND, frameon=False)
    title = fig.suptitle(" ")

    def update(lr, bn):
        kind = "bn" if bn else "plain"
        other = "plain" if bn else "bn"
        h, g = grid[(lr, kind)], grid[(lr, other)]
        y = final_accuracy(h)
        ring.set_data([lr], [(0.03 if kind == "plain" else 0.07) if np.isnan(y) else y])
        ring.set_markeredgecolor(plots.COLORS[kind])
        main_acc.set_data(h.record_steps, h.test_acc)
        other_acc.set_data(g.record_steps, g.test_acc)
        raw_loss.set_data(np.arange(len(h.loss)), h.loss)
        top = int(np.argmax(h.loss)) if len(h.loss) else None
        peak.set_data(([top], [h.loss[top]]) if top is not None else ([], []))
        main_loss.set_data(*_smooth(h.loss))
        other_loss.set_data(*_smooth(g.loss))
        for line, run in ((main_loss, h), (other_loss, g)):
            line.set_marker("o" if run.diverged else "None")     # a stopped run has only a few points
        note.set_text(_("stopped at step {step}:\nthe loss stayed too high").format(step=len(h.loss))
                      if h.diverged else "")
        for line in (main_acc, main_loss, raw_loss):
            line.set_color(plots.COLORS[kind])
        title.set_text(_("learning rate {lr:g}, {label}").format(lr=lr, label=label(kind)))
        if h.diverged:
            what = _("diverged: bnlib stopped the run at step {step}").format(step=len(h.loss))
        else:
            what = _("{outcome}: test accuracy {acc:.0%} after {steps} steps").format(
                outcome=_(OUTCOMES[outcome(h)]), acc=h.final_test_acc, steps=steps)
        there = _(OUTCOMES["diverged"]) if g.diverged else f"{g.final_test_acc:.0%}"
        return _("lr {lr:g}, {label} — {what} (the network {other}: {there})").format(
            lr=lr, label=label(kind), what=what, other=label(other), there=there)

    lr_slider = widgets.SelectionSlider(options=[(f"{lr:g}", lr) for lr in lrs], value=lrs[len(lrs) // 2],
                                        description=_("learning rate"), continuous_update=True,
                                        style={"description_width": "initial"},
                                        layout=widgets.Layout(width="45%"))
    toggle = widgets.ToggleButton(value=True, description=_("batch norm on"), icon="check",
                                  tooltip=_("switch batch norm on or off"))

    def relabel(change):
        toggle.description = _("batch norm on") if change["new"] else _("batch norm off")
        toggle.icon = "check" if change["new"] else ""
    toggle.observe(relabel, names="value")
    changing = [ring, main_acc, other_acc, raw_loss, main_loss, other_loss, peak, note, title]
    return Dashboard(fig, update, animated=changing, lr=lr_slider, bn=toggle)   # redraw only what changes


def _legend_line(color, ls="-", marker="None", **kwargs):
    """A line artist that is not drawn anywhere: a legend entry."""
    return Line2D([], [], color=color, ls=ls, marker=marker, **kwargs)


# ---------------------------------------------------------------- merit 2: initialization
def init_sweep(data, stds=INIT_STDS, lr=0.3, steps=INIT_STEPS, seed=0):
    """Both networks with every weight drawn from N(0, std²), for each std: {(std, kind): History}.
    Only the start and the end are recorded."""
    sweep = {}
    for std in stds:
        for kind in KINDS:
            sweep[(std, kind)] = train(network(kind, init=float(std), seed=seed), data, steps=steps,
                                       batch_size=BATCH, lr=lr, record_every=steps, seed=seed,
                                       probe_size=10, progress=False)
    return sweep


def init_arrays(sweep):
    """(stds, {kind: final test accuracy per std (NaN where diverged)})."""
    stds = np.array(sorted({s for s, _ in sweep}))
    return stds, {kind: np.array([final_accuracy(sweep[(s, kind)]) for s in stds]) for kind in KINDS}


def init_figure(sweep):
    """Test accuracy after the same training against the std of the initial weights (log axis)."""
    stds, acc = init_arrays(sweep)
    any_run = next(iter(sweep.values()))
    fig, ax = plots.new_figure(1, 1, width=7.0, height=3.4)
    for kind in KINDS:
        ax.plot(stds, acc[kind], "o-", color=plots.COLORS[kind], label=label(kind))
    ax.axhline(CHANCE, color=plots.COLORS["grey"], ls=":", label=_("chance (10 classes)"))
    ax.set_xscale("log")
    ax.set_xticks(stds, [f"{s:g}" for s in stds])
    ax.minorticks_off()
    steps, lr = any_run.config["steps"], any_run.config["lr"]
    ax.set(xlabel=_("standard deviation of the initial weights (log scale)"),
           ylabel=_("test accuracy after {steps} steps").format(steps=steps), ylim=(0, 1),
           title=_("Initialization sweep (learning rate {lr:g}, {steps} steps)").format(lr=lr, steps=steps))
    ax.legend(loc="lower right", fontsize=LEGEND)
    return fig


# ---------------------------------------------------------------- merit 3: regularization
def gap(history):
    """Generalization gap at the end: training accuracy − test accuracy (as fractions).
    bnlib.train measures training accuracy on the first 1,000 training images, in eval mode."""
    return float(history.train_acc[-1] - history.test_acc[-1])


def gap_figure(runs):
    """Training accuracy (dashed) and test accuracy (solid) against step, both networks."""
    fig, ax = plots.new_figure(1, 1, width=7.0, height=3.6)
    for kind, h in runs.items():
        color = plots.COLORS[kind]
        ax.plot(h.record_steps, h.train_acc, ls="--", color=color,
                label=_("{label}: training images").format(label=label(kind)))
        ax.plot(h.record_steps, h.test_acc, color=color, label=_("{label}: test images").format(label=label(kind)))
    ax.set(xlabel=_("training step"), ylabel=_("accuracy"), ylim=(0, 1.02),
           title=_("Training vs test accuracy: a large gap is a sign of overfitting"))
    ax.legend(loc="center right", bbox_to_anchor=(1.0, 0.62), fontsize=LEGEND)
    return fig


# ---------------------------------------------------------------- exercises
def check_gap(answer, runs):
    """Exercise 1: the generalization gap of the BN network at the end of Figure 1's run."""
    bn, plain = runs["bn"], runs["plain"]
    expected = gap(bn)
    check(answer, expected, _("gap of the BN network"), wrong=[
        (-expected, _("that is test − training; the gap is training accuracy minus test accuracy")),
        (gap(plain), _("that is the gap of the network without BN; use runs['bn']")),
        (bn.train_acc[0] - bn.test_acc[0], _("those are the accuracies at step 0; use the last record, index -1")),
        (100 * expected, _("give the gap as a fraction (0.05 for 5 points), not in percent")),
    ])


def plain_learned_mask(grid, threshold=0.3):
    """For each lr of the grid: did the plain network end at ≥ threshold test accuracy?"""
    _, acc = sweep_arrays(grid)
    return np.nan_to_num(acc["plain"], nan=0.0) >= threshold


def check_plain_mask(answer, grid):
    """Exercise 2: a boolean per learning rate: did the network without BN reach ≥ 30%?"""
    lrs, acc = sweep_arrays(grid)
    expected = plain_learned_mask(grid)
    name = _("learning rates where the plain network reached 30%")
    if answer is not None and answer is not Ellipsis:
        if isinstance(answer, dict):
            raise NotYet(_("{name}: not yet — give a list or an array in the order of compare.LRS, not a dict")
                         .format(name=name))
        try:
            answer = np.asarray(answer, dtype=float)         # booleans → 0/1, to compare
        except (TypeError, ValueError):
            pass                                             # check() reports what is wrong
        if np.ndim(answer) == 1 and len(answer) != len(lrs):
            raise NotYet(_("{name}: not yet — give one entry per learning rate in compare.LRS: "
                           "{expected} entries, not {got}").format(name=name, expected=len(lrs), got=len(answer)))

    check(answer, expected.astype(float), name, wrong=[
        ((np.nan_to_num(acc["bn"], nan=0.0) >= 0.3).astype(float),
         _("that is the network with BN; use grid[(lr, 'plain')]")),
        ((np.nan_to_num(acc["plain"], nan=1.0) >= 0.3).astype(float),
         _("a run that was stopped (diverged) did not reach 30%: count it as False")),
        ((np.nan_to_num(acc["plain"], nan=0.0) < 0.3).astype(float),
         _("True where it DID reach 30%, not where it failed")),
        ((np.nan_to_num(acc["plain"], nan=0.0) >= 3).astype(float), _("30% is 0.3 as a fraction, not 3 or 30")),
        (np.nan_to_num(acc["plain"], nan=0.0),
         _("give True or False per learning rate, not the accuracies themselves: compare each with 0.3")),
    ])


def scale_invariance_reference(data, c=10.0):
    """Exercise 3's reference: max |BN(c·u) − BN(u)| for the first layer of a BN network,
    with u = x W + b for the first 60 training images."""
    net = network("bn")
    linear, bn, _ = net.hidden[0]
    u = linear.forward(data.x_train[:BATCH])
    y1 = bn.forward(u).copy()
    y2 = bn.forward(c * u)
    return float(np.abs(y2 - y1).max()), u, y1


def check_scale_invariance(answer, data, c=10.0):
    """Exercise 3: BN's output does not change when its input is scaled by c > 0."""
    _reference, u, y1 = scale_invariance_reference(data, c)
    name = _("BN ignores the scale of its input")
    if answer is not None and answer is not Ellipsis and np.ndim(answer) > 0:
        raise NotYet(_("{name}: not yet — your answer is an array of shape {shape}; give one number, its largest "
                       "value (.max())").format(name=name, shape=np.shape(answer)))
    if answer is not None and answer is not Ellipsis and not isinstance(answer, (str, bytes)):
        answer = float(answer)
    check(answer, 0.0, name, atol=1e-3, wrong=[
        (float(np.abs(c * u - u).max()), _("you compared BN's inputs (c·u and u); compare BN's outputs")),
        (float(np.abs(c * y1 - y1).max()), _("you scaled BN's output; scale its input u, then normalize")),
    ])
