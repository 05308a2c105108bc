"""Lesson 01 — distribution drift: scores on three scales, and a plain network whose layers'
input distributions move while it trains ("internal covariate shift", Ioffe & Szegedy 2015).

    scores = drift.teacher_scores()               # {100: ..., 10000: ..., 0.1: ...}, one class
    drift.scales_figure(scores)                   # the raw scores on each scale
    drift.scales_figure(scores, standardized=True) # ... and below them the same scores standardized
    h = drift.run_drift()                         # 784-100-100-100-10 sigmoid, no BN, MNIST-5k
    drift.histogram_grid(h)                       # rows: hidden layers, columns: training steps
    drift.figure1b(h)                             # accuracy, and the BN paper's Figure 1(b)
    drift.drift_dashboard(h).show()               # a slider scrubs through the recorded steps

Notation: x is a score (or a pre-activation), N how many there are (the batch size),
    μ = (1/N) Σ xᵢ,   σ = √( (1/N) Σ (xᵢ − μ)² ),   z = (x − μ) / σ.
"""
from functools import lru_cache

import ipywidgets as widgets
import numpy as np

from .. import plots
from ..checks import check
from ..data import load_mnist5k
from ..i18n import _, pad
from ..model import MLP
from ..train import train
from ..widgets import Dashboard

SCALES = (100, 10_000, 0.1)                       # "out of 100", "out of 10,000", "out of 0.1"
SCALE_COLORS = {100: plots.CYCLE[2], 10_000: plots.CYCLE[3], 0.1: plots.CYCLE[5]}
SIZES = [784, 100, 100, 100, 10]                  # the BN paper's MNIST network
GRID_STEPS = (0, 150, 600, 1500)


def scale_name(points):
    """The scale's name for labels and printed lines: "out of 10,000"."""
    return _("out of {points:,g}").format(points=points)



def _hidden_layer(number):
    return _("hidden layer {number}").format(number=number)


# ---------------------------------------------------------------- the teacher's three scales
def teacher_scores(n=40, seed=0):
    """One class of n students, one test, graded on the three scales of SCALES.

    The out-of-100 scores are whole numbers from a seeded normal distribution (mean 65,
    std 12, kept within 20..100); the other scales are the same scores multiplied by
    points / 100. Returns {points: (n,) float array}.
    """
    rng = np.random.default_rng(seed)
    out_of_100 = np.clip(np.round(rng.normal(65.0, 12.0, size=n)), 20, 100)
    return {points: out_of_100 * (points / 100) for points in SCALES}


def standardize(x):
    """z = (x − μ) / σ with μ the mean and σ the standard deviation (dividing by N, as BN does)."""
    x = np.asarray(x, dtype=np.float64)
    return (x - x.mean()) / x.std()


def scales_figure(scores, standardized=False):
    """Top row: the raw scores on each scale (x ranges differ by a factor of 100,000).
    With standardized=True a bottom row shows the same scores standardized. Its bin edges are the
    top row's edges standardized, (edges − μ) / σ, so the bars are exactly the same: only the
    numbers on the x axis change."""
    rows = 2 if standardized else 1
    fig, axes = plots.new_figure(rows, len(scores), width=plots.MAX_WIDTH, height=2.6 * rows + 0.5, squeeze=False)
    for col, (points, x) in enumerate(scores.items()):
        color = SCALE_COLORS.get(points, plots.CYCLE[col])
        edges = np.linspace(0, points, 21)
        top = axes[0, col]
        top.hist(x, bins=edges, color=color, edgecolor="white")
        top.set(title=_("graded {scale}").format(scale=scale_name(points)),
                xlabel=_("score (points {scale})").format(scale=scale_name(points)),
                xlim=(edges[0], edges[-1]), ylabel=_("students"))
        if standardized:
            mu, sd = x.mean(), x.std()
            z_edges = (edges - mu) / sd
            bottom = axes[1, col]
            bottom.hist(standardize(x), bins=z_edges, color=color, edgecolor="white")
            bottom.set(title=_("{scale}, standardized").format(scale=scale_name(points)),
                       xlabel=_("z = (score − μ) / σ"), xlim=(z_edges[0], z_edges[-1]), ylabel=_("students"))
    if standardized:
        fig.suptitle(_("Raw scores (top) and standardized (bottom):\n"
                       "the bars are identical, only the x axis numbers change"))
    else:
        fig.suptitle(_("One class, one test, three scales"))
    return fig


# ---------------------------------------------------------------- the drift experiment
@lru_cache(maxsize=4)
def run_drift(steps=1500, lr=0.5, batch_size=60, record_every=50, seed=0):
    """Train the BN paper's MNIST network WITHOUT batch norm and record every layer.

    784-100-100-100-10, sigmoid, Xavier init, plain SGD, batch 60, on MNIST-5k (4,000 training
    images). Every `record_every` steps the History stores, per hidden layer, statistics of the
    pre-activation z = h W + b (the sigmoid's input) over 500 test images. Cached per argument
    set within this Python process (nothing is written to disk).
    """
    model = MLP(SIZES, activation="sigmoid", norm=None, seed=seed)
    return train(model, load_mnist5k(), steps=steps, batch_size=batch_size, lr=lr,
                 record_every=record_every, seed=seed, progress=False)


def record_index(history, step):
    """Index of the last record taken at or before `step`."""
    return int(np.clip(np.searchsorted(history.record_steps, step, side="right") - 1,
                       0, len(history.record_steps) - 1))


def unit_widths(stats):
    """Width of each unit's 15th–85th percentile band, p85 − p15, per record: (R, units).
    One unit at a time: this is what batch norm normalizes (each unit separately)."""
    p = stats.unit_percentiles
    return p[:, :, 2] - p[:, :, 0]


def layer_table(history, steps=None):
    """Print, per hidden layer, two views of z at a few recorded steps: all 100 units mixed
    (mean μ ± standard deviation σ), and one unit at a time (the median, over the units, of each
    unit's 15th–85th percentile width)."""
    steps = GRID_STEPS if steps is None else steps
    rows = [record_index(history, s) for s in steps]
    print(pad(_("step"), 16) + "".join(f"{int(history.record_steps[r]):>14}" for r in rows))
    print(_("all units mixed: mean μ ± standard deviation σ of z"))
    for i, layer in enumerate(history.layers):
        cells = "".join(f"{layer.pre.mean[r]:>+7.2f} ±{layer.pre.std[r]:>5.2f}" for r in rows)
        print(pad(_hidden_layer(i + 1), 16) + cells)
    print(_("one unit at a time: median over the units of each unit's 15th–85th percentile width"))
    for i, layer in enumerate(history.layers):
        widths = np.median(unit_widths(layer.pre), axis=1)
        print(pad(_hidden_layer(i + 1), 16) + "".join(f"{widths[r]:>14.2f}" for r in rows))


def _stairs(ax, stats, record, fill=True, **kwargs):
    return ax.stairs(stats.hist[record], stats.bin_edges, fill=fill, **kwargs)


def histogram_grid(history, steps=GRID_STEPS, xlim=(-6, 6)):
    """Rows: hidden layers 1, 2, 3. Columns: training steps. Each panel: the histogram of the
    sigmoid's input z of all 100 units over 500 test images (fraction of values per bin of
    width 0.25)."""
    rows = [record_index(history, s) for s in steps]
    n_layers = len(history.layers)
    fig, axes = plots.new_figure(n_layers, len(rows), width=plots.MAX_WIDTH, height=1.9 * n_layers + 0.8,
                                 sharex=True, sharey=True, squeeze=False)
    for i, layer in enumerate(history.layers):
        for c, r in enumerate(rows):
            ax = axes[i, c]
            _stairs(ax, layer.pre, r, color=plots.COLORS["plain"], alpha=0.8)
            ax.axvline(layer.pre.mean[r], color=plots.COLORS["black"], lw=1, ls="--")
            ax.set_xlim(*xlim)
            if i == 0:
                ax.set_title(_("step {step}").format(step=int(history.record_steps[r])))
            if c == 0:
                ax.set_ylabel(_("{layer}\nfraction of values").format(layer=_hidden_layer(i + 1)))
            if i == n_layers - 1:
                ax.set_xlabel(_("sigmoid input z"))
    fig.suptitle(_("Without BN: the sigmoid input z of all 100 units of each hidden layer,\n"
                   "during training (dashed line: mean μ)"))
    return fig


def figure1b(history, layer=-1, unit=0):
    """Left: test accuracy against step. Right: the BN paper's Figure 1(b) — the 15th, 50th and
    85th percentiles of one unit's sigmoid input (last hidden layer) over training."""
    fig, (ax_acc, ax_band) = plots.new_figure(1, 2, width=plots.MAX_WIDTH, height=3.6)
    ax_acc.plot(history.record_steps, history.test_acc, color=plots.COLORS["plain"], label=_("without BN"))
    ax_acc.axhline(0.1, color=plots.COLORS["grey"], ls=":", label=_("chance (10 classes)"))
    ax_acc.set(xlabel=_("training step"), ylabel=_("test accuracy"), ylim=(0, 1),
               title=_("(a) the network learns"))
    ax_acc.legend(loc="lower right", fontsize=9)
    plots.percentile_bands(ax_band, history, layer=layer, unit=unit, color=plots.COLORS["plain"],
                           label=_("without BN"))
    ax_band.axhline(0, color=plots.COLORS["grey"], lw=0.8)
    number = len(history.layers) if layer == -1 else layer + 1
    which = _("first unit") if unit == 0 else _("unit {number}").format(number=unit + 1)
    ax_band.set_ylabel(_("sigmoid input z\n({layer}, {unit})").format(layer=_hidden_layer(number), unit=which))
    ax_band.set_title(_("(b) one sigmoid input drifts\n(BN paper: Fig. 1b)"))
    ax_band.legend(loc="lower left", fontsize=9)
    return fig


def drift_numbers(history, early_step=600):
    """The numbers the notebook's self-checks read, per hidden layer (arrays of length layers).
    All units mixed: mean and std of z at step 0, at `early_step` and at the end, and the
    15th–85th percentile width at step 0 and at the end. One unit at a time ("unit_width"):
    the median over the units of each unit's 15th–85th percentile width, at the same steps."""
    r_early = record_index(history, early_step)
    out = {}
    for key in ("mean", "std"):
        vals = np.array([getattr(layer.pre, key) for layer in history.layers])   # (layers, R)
        out[f"{key}_start"], out[f"{key}_early"], out[f"{key}_end"] = vals[:, 0], vals[:, r_early], vals[:, -1]
    widths = np.array([layer.pre.percentiles[:, 2] - layer.pre.percentiles[:, 0] for layer in history.layers])
    out["width_start"], out["width_end"] = widths[:, 0], widths[:, -1]
    unit = np.array([np.median(unit_widths(layer.pre), axis=1) for layer in history.layers])  # (layers, R)
    out["unit_width_start"], out["unit_width_early"], out["unit_width_end"] = unit[:, 0], unit[:, r_early], unit[:, -1]
    return out


def settle_step(history, values, tol=0.1):
    """The first recorded step from which `values` (one per record) stay within `tol` (a fraction)
    of their final value until the end of training."""
    values = np.asarray(values, dtype=np.float64)
    outside = np.abs(values - values[-1]) > tol * abs(values[-1])
    last_outside = np.flatnonzero(outside)
    r = last_outside[-1] + 1 if last_outside.size else 0
    return int(history.record_steps[r])


def settle_steps(history, tol=0.1):
    """Per hidden layer: (settle step of σ of all units mixed, settle step of the median unit's
    15th–85th percentile width)."""
    return [(settle_step(history, layer.pre.std, tol),
             settle_step(history, np.median(unit_widths(layer.pre), axis=1), tol)) for layer in history.layers]


def _dashboard_title(step):
    return _("Without BN: each hidden layer's sigmoid input z at training step {step}").format(step=step)


def drift_dashboard(history, xlim=(-6, 6)):
    """A slider over the recorded training steps (starting at the last one); one panel per hidden
    layer showing the histogram of z at that step (filled) over the one at step 0 (grey outline).
    The update only changes data of existing artists (stairs.set_data, line.set_xdata, the title's text)."""
    n_layers = len(history.layers)
    fig, axes = plots.new_figure(1, n_layers, width=plots.MAX_WIDTH, height=3.4,
                                 margins=(0.075, 0.98, 0.15, 0.83, 0.1, 0), sharey=True)
    axes = np.atleast_1d(axes)
    top = max(layer.pre.hist.max() for layer in history.layers) * 1.05
    current, means = [], []
    for i, (ax, layer) in enumerate(zip(axes, history.layers)):
        _stairs(ax, layer.pre, 0, fill=False, color=plots.COLORS["grey"], lw=1.2,
                label=_("step {step}").format(step=0))
        current.append(_stairs(ax, layer.pre, 0, color=plots.COLORS["plain"], alpha=0.7, label=_("chosen step")))
        means.append(ax.axvline(layer.pre.mean[0], color=plots.COLORS["black"], lw=1, ls="--", label=_("mean μ")))
        ax.set(xlim=xlim, ylim=(0, top), title=_hidden_layer(i + 1), xlabel=_("sigmoid input z"),
               xticks=np.arange(xlim[0] + 2, xlim[1] - 1, 2))
    axes[0].set_ylabel(_("fraction of values"))
    axes[-1].legend(loc="upper right", fontsize=9)
    title = fig.suptitle(_dashboard_title(int(history.record_steps[-1])))

    def update(step):
        r = record_index(history, step)
        parts = []
        for i, (layer, stairs, line) in enumerate(zip(history.layers, current, means)):
            stairs.set_data(values=layer.pre.hist[r])
            mu, sd = layer.pre.mean[r], layer.pre.std[r]
            line.set_xdata([mu, mu])
            parts.append(_("layer {number}: μ {mean:+.2f}, σ {std:.2f}").format(number=i + 1, mean=mu, std=sd))
        title.set_text(_dashboard_title(int(history.record_steps[r])))
        head = _("step {step} (test acc. {acc:.0%})").format(step=int(history.record_steps[r]), acc=history.test_acc[r])
        return " · ".join([head] + parts)

    steps = [int(s) for s in history.record_steps]
    slider = widgets.SelectionSlider(options=steps, value=steps[-1],
                                     description=_("step"), continuous_update=True,
                                     layout=widgets.Layout(width="60%"))
    return Dashboard(fig, update, animated=[*current, *means, title], step=slider)


# ---------------------------------------------------------------- exercises
def check_student_z(answer, scores, student=5, points=10_000):
    """Exercise 1: the z-score of one student on one scale, z = (x − μ) / σ."""
    x = np.asarray(scores[points], dtype=np.float64)
    mu, sd, xi = x.mean(), x.std(), x[student]
    check(answer, (xi - mu) / sd, _("exercise 1 — z of student {number}").format(number=student + 1),
          wrong=[(xi - mu, _("you subtracted μ but did not divide by σ")),
                 (xi - mu / sd, _("put brackets around (x − μ) before dividing by σ: (x - mu) / sd. "
                                  "Without them, Python divides only μ by σ")),
                 (xi / sd, _("subtract the mean μ first, then divide by σ")),
                 ((xi - mu) / x.var(), _("you divided by the variance σ²; divide by σ = x.std()")),
                 ((xi - mu) / x.std(ddof=1), _("you divided by N − 1 inside σ; use x.std() (divides by N)")),
                 (xi, _("that is the raw score; z = (x − μ) / σ")),
                 ((x[0] - mu) / sd, _("that is the first student (index 0); this exercise asks about "
                                      "index {index}").format(index=student))])


def check_standardized(answer, scores, points=0.1):
    """Exercise 2: the whole class on one scale, standardized: an array z with z.mean() = 0, z.std() = 1."""
    x = np.asarray(scores[points], dtype=np.float64)
    mu, sd = x.mean(), x.std()
    check(answer, (x - mu) / sd, _("exercise 2 — the class {scale}, standardized").format(scale=scale_name(points)),
          wrong=[((x - mu) / x.std(ddof=1), _("you used σ with N − 1 (ddof=1); use x.std(), which divides by N")),
                 (x - mu / sd, _("put brackets around (x − μ) before dividing by σ: (x - x.mean()) / x.std(). "
                                 "Without them, Python divides only μ by σ")),
                 (x / sd, _("subtract the mean μ first")),
                 (x - mu, _("you subtracted μ; now divide by σ")),
                 ((x - mu) / x.var(), _("you divided by the variance σ²; divide by σ, its square root"))],
          rtol=1e-6, atol=1e-9)


def doubling_step(history, layer=2):
    """First recorded step at which hidden layer (layer+1)'s std of z is at least twice its step-0 value."""
    std = history.layers[layer].pre.std
    hits = std >= 2 * std[0]
    return int(history.record_steps[np.argmax(hits)]) if hits.any() else None


def check_doubling_step(answer, history, layer=2):
    """Exercise 3: read the History — when did hidden layer 3's spread first double?"""
    expected = doubling_step(history, layer)
    std = history.layers[layer].pre.std
    wrong = []
    if expected is not None:
        wrong.append((int(np.argmax(std >= 2 * std[0])),
                      _("that is the record's index; turn it into a step with h.record_steps[index]")))
    for other in range(len(history.layers)):
        if other != layer and doubling_step(history, other) is not None:
            wrong.append((doubling_step(history, other),
                          _("that is hidden layer {other}; hidden layer {number} is h.layers[{index}]")
                          .format(other=other + 1, number=layer + 1, index=layer)))
    var_step = history.layers[layer].pre.std ** 2 >= 2 * std[0] ** 2
    if var_step.any():
        wrong.append((int(history.record_steps[np.argmax(var_step)]),
                      _("that is where the variance σ² doubled; the exercise asks about σ itself")))
    wrong = [(value, hint) for value, hint in wrong if value != expected]
    check(answer, expected, _("exercise 3 — the step where hidden layer {number}'s σ first doubled")
          .format(number=layer + 1), wrong=wrong)
