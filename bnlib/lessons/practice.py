"""Lesson 12 — BN in real projects: fine-tuning, new data, precise statistics, many devices,
batches that are not random, weight decay. Every pitfall on MNIST-5k, each run seeded and cached.

    model, history, data = practice.train_base()                # 784-100-100-10 ReLU, BN, 300 steps
    sets = practice.shifted_sets(data)                           # faded / scanner / rotated / inverted digits
    practice.shift_examples(data)                                # what they look like
    table = practice.fine_tune_table(model, data)                # 2 new domains × 4 ways to fine-tune
    shift = practice.domain_shift_table(model, data)             # no adaptation vs AdaBN, per new domain
    practice.adabn_dashboard(model, data).show()                 # slider: how many unlabeled images
    precise = practice.precise_runs(data)                        # running averages vs recomputed, per momentum
    devices = practice.device_runs(data)                         # per-device batch from 60 down to 2
    orders = practice.order_runs(data)                           # sorted / class-pure batches, no shuffling
    decay = practice.weight_decay_runs(data)                     # λ = 0 and λ = 0.02 on the weight matrices

Notation (the notebooks'): N the batch size, n the per-device (ghost) batch size, k = N/n devices,
α the BN momentum (PyTorch's: the weight of the newest batch), η the learning rate, λ the weight
decay. A shifted set maps each clean image x (pixels in [0, 1]) to a new one: faded 0.3·x + 0.35;
scanner clip(0.5·x + 0.25 + noise, 0, 1) with Gaussian noise of std 0.15; rotated by 30°; inverted
1 − x. Training images and test images get different noise (seeds), fixed for every run.
"""
import contextlib
import copy
from dataclasses import dataclass
from functools import lru_cache

import ipywidgets as widgets
import numpy as np

from ..checks import check
from ..data import Dataset, load_mnist5k
from ..i18n import _, N_, pad
from ..model import MLP
from ..plots import COLORS, CYCLE, MAX_WIDTH, new_figure
from ..statistics import recompute_statistics
from ..train import train
from ..widgets import Dashboard

SIZES = [784, 100, 100, 10]
BATCH_SIZE = 60
STEPS = 300
LR = 0.1
PROBE = 480            # the recorder's probe batch: a multiple of every per-device batch size used here


def _mlp(norm="batch", seed=0, **kwargs):
    return MLP(SIZES, activation="relu", norm=norm, init="he", seed=seed, **kwargs)


def _train(model, data, steps=STEPS, lr=LR, batch_size=BATCH_SIZE, record_every=None, **kwargs):
    return train(model, data, steps=steps, batch_size=batch_size, lr=lr, record_every=record_every or steps,
                 probe_size=PROBE, progress=False, **kwargs)


def accuracy(model, x, y):
    """Test accuracy in eval mode (running statistics)."""
    return float(np.mean(model.predict(x) == y))


# --------------------------------------------------------------------------- the trained network
@lru_cache(maxsize=1)
def _base():
    data = load_mnist5k()
    model = _mlp()
    history = _train(model, data, record_every=30)
    return model.eval(), history, data


def train_base():
    """784-100-100-10, ReLU, BN before every ReLU (momentum α = 0.1), He init, SGD with η = 0.1 for
    300 steps of N = 60 on MNIST-5k (seed 0; 11 records for the weight norms). Returns (a copy of
    the model in eval mode, History, Dataset); the run is cached in this Python process."""
    model, history, data = _base()
    return copy.deepcopy(model), history, data


# --------------------------------------------------------------------------- new data: shifted digits
SHIFTS = ("faded", "scanner", "rotated", "inverted")
SHIFT_LABELS = {"clean": N_("clean (as trained)"), "faded": N_("faded: 0.3·x + 0.35"),
                "scanner": N_("new scanner: faded + noise"), "rotated": N_("rotated by 30°"),
                "inverted": N_("inverted: 1 − x")}


def shift_label(kind):
    """The learner's name of a shifted set ("clean" too), in the current language."""
    return _(SHIFT_LABELS[kind])


def rotate(x, degrees):
    """Images x: (n, 784) rotated by `degrees` counterclockwise about the centre, bilinear, zeros outside."""
    images = x.reshape(-1, 28, 28)
    theta, c = np.deg2rad(degrees), 13.5
    i, j = np.mgrid[0:28, 0:28].astype(np.float64)
    si = c + (i - c) * np.cos(theta) - (j - c) * np.sin(theta)          # where each output pixel comes from
    sj = c + (i - c) * np.sin(theta) + (j - c) * np.cos(theta)
    i0, j0 = np.floor(si).astype(int), np.floor(sj).astype(int)
    fi, fj = si - i0, sj - j0
    out = np.zeros(images.shape, dtype=np.float64)
    for di, dj, w in ((0, 0, (1 - fi) * (1 - fj)), (1, 0, fi * (1 - fj)), (0, 1, (1 - fi) * fj), (1, 1, fi * fj)):
        ii, jj = i0 + di, j0 + dj
        inside = (ii >= 0) & (ii < 28) & (jj >= 0) & (jj < 28)
        out += np.where(inside, images[:, np.clip(ii, 0, 27), np.clip(jj, 0, 27)], 0.0) * w
    return out.reshape(len(x), -1).astype(x.dtype)


def shift(x, kind, seed=0):
    """A shifted copy of images x (n, 784), pixels in [0, 1] (see the module docstring)."""
    if kind == "clean":
        return x.copy()
    if kind == "faded":
        return (0.3 * x + 0.35).astype(x.dtype)
    if kind == "scanner":
        noise = np.random.default_rng(seed).standard_normal(x.shape)
        return np.clip(0.5 * x + 0.25 + 0.15 * noise, 0, 1).astype(x.dtype)
    if kind == "rotated":
        return rotate(x, 30)
    if kind == "inverted":
        return (1 - x).astype(x.dtype)
    raise ValueError(_("unknown shift {kind!r}; choose one of {choices}").format(kind=kind, choices=SHIFTS))


@lru_cache(maxsize=1)
def _shifted():
    return _make_shifted(_base()[2])


def _make_shifted(data):
    return {kind: Dataset(shift(data.x_train, kind, seed=1), data.y_train, shift(data.x_test, kind, seed=2),
                          data.y_test, kind) for kind in ("clean",) + SHIFTS}


def shifted_sets(data):
    """{kind: Dataset} for "clean" and each shift: the training images (as an unlabeled pool, or a
    few labeled ones for fine-tuning) and the test images, shifted; labels as in `data`."""
    return _shifted() if data is _base()[2] else _make_shifted(data)


def shift_examples(data, count=6):
    """The first `count` test digits, clean and under each shift: one row of thumbnails each (one image)."""
    sets = shifted_sets(data)
    kinds = ("clean",) + SHIFTS
    rows = [np.hstack([np.pad(sets[kind].x_test[c].reshape(28, 28), 2, constant_values=np.nan) for c in range(count)])
            for kind in kinds]
    fig, ax = new_figure(width=7.2, height=3.8, margins=(0.38, 0.99, 0.01, 0.99, 0, 0))
    ax.imshow(np.vstack(rows), cmap="gray_r", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([32 * r + 16 for r in range(len(kinds))], [shift_label(kind) for kind in kinds], fontsize=9)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    return fig


# --------------------------------------------------------------------------- 1. fine-tuning
POLICIES = ("train", "frozen", "head", "head_frozen")
POLICY_LABELS = {"train": N_("(a) all layers train, BN in training mode"),
                 "frozen": N_("(b) all layers train, BN statistics frozen"),
                 "head": N_("(c) only the output layer trains, BN in training mode"),
                 "head_frozen": N_("(d) only the output layer trains, BN frozen")}
FINE_TUNE = dict(images=200, steps=200, batch_size=5, lr=0.02)


def policy_label(policy):
    return _(POLICY_LABELS[policy])


def fine_tune(model, new, policy, images=FINE_TUNE["images"], steps=FINE_TUNE["steps"],
              batch_size=FINE_TUNE["batch_size"], lr=FINE_TUNE["lr"], seed=0):
    """A fine-tuned copy of `model` (eval mode) on the first `images` labeled images of the Dataset
    `new`, with plain SGD. policy: "train" (everything trains, BN in training mode), "frozen"
    (everything trains inside model.frozen_statistics()), "head" (only the output layer's W and b
    train; BN stays in training mode, so its statistics still move: PyTorch's requires_grad=False)
    or "head_frozen" (only the output layer trains and BN is frozen: Keras's trainable=False)."""
    if policy not in POLICIES:
        raise ValueError(_("unknown policy {policy!r}; choose one of {choices}").format(policy=policy, choices=POLICIES))
    tuned = copy.deepcopy(model)
    few = Dataset(new.x_train[:images], new.y_train[:images], new.x_test, new.y_test, new.name)
    params = tuned.layers[-1].parameters() if policy.startswith("head") else None
    frozen = tuned.frozen_statistics() if policy in ("frozen", "head_frozen") else contextlib.nullcontext()
    with frozen:
        train(tuned, few, steps=steps, batch_size=batch_size, lr=lr, parameters=params, record_every=steps,
              seed=seed, probe_size=100, progress=False)
    return tuned.eval()


@dataclass
class FineTuned:
    """accuracy[(shift, policy)] = (new-domain test accuracy, clean test accuracy); models likewise."""
    accuracy: dict
    models: dict
    before: dict          # shift → (new-domain, clean) accuracy of the model before fine-tuning


@lru_cache(maxsize=1)
def _fine_tuned(shifts):
    model, _history, data = _base()
    sets = shifted_sets(data)
    acc, models = {}, {}
    before = {s: (accuracy(model, sets[s].x_test, data.y_test), accuracy(model, data.x_test, data.y_test))
              for s in shifts}
    for s in shifts:
        for policy in POLICIES:
            tuned = fine_tune(model, sets[s], policy)
            models[s, policy] = tuned
            acc[s, policy] = (accuracy(tuned, sets[s].x_test, data.y_test), accuracy(tuned, data.x_test, data.y_test))
    return FineTuned(acc, models, before)


def fine_tune_table(model, data, shifts=("scanner", "rotated")):
    """Fine-tune the base model four ways on 200 labeled digits of each new domain (FINE_TUNE:
    200 steps of batch 5, η = 0.02); returns a FineTuned with both test accuracies of each."""
    if data is not _base()[2]:
        raise ValueError(_("fine_tune_table works on the data of practice.train_base()"))
    return _fine_tuned(tuple(shifts))


def print_fine_tune_table(table):
    """One line per policy: accuracy on the new domain's test digits and on the clean ones."""
    shifts = sorted({s for s, _p in table.accuracy}, key=("scanner", "rotated", "faded", "inverted").index)
    header = pad("", 58) + "".join(pad(shift_label(s), 30) for s in shifts)
    print(header)
    print(pad("", 58) + "".join(pad(_("new digits / clean digits"), 30) for _s in shifts))
    rows = [(_("before fine-tuning"), [table.before[s] for s in shifts])]
    rows += [(policy_label(p), [table.accuracy[s, p] for s in shifts]) for p in POLICIES]
    for name, cells in rows:
        print(pad(name, 58) + "".join(pad(f"{new:.1%} / {old:.1%}", 30) for new, old in cells))


def fine_tune_figure(table):
    """Grouped bars: per new domain, each policy's accuracy on the new digits and on the clean ones."""
    shifts = sorted({s for s, _p in table.accuracy}, key=("scanner", "rotated", "faded", "inverted").index)
    fig, axes = new_figure(1, len(shifts), width=MAX_WIDTH, height=3.7, sharey=True,
                           margins=(0.085, 0.99, 0.27, 0.92, 0.08, 0))
    x = np.arange(len(POLICIES))
    for ax, s in zip(np.atleast_1d(axes), shifts):
        new = [table.accuracy[s, p][0] for p in POLICIES]
        old = [table.accuracy[s, p][1] for p in POLICIES]
        ax.bar(x - 0.2, new, width=0.4, color=COLORS["bn"], label=_("new digits (test)"))
        ax.bar(x + 0.2, old, width=0.4, color=COLORS["grey"], label=_("clean digits (test)"))
        ax.axhline(table.before[s][0], color=COLORS["bn"], ls=":", lw=1.5, label=_("new digits before fine-tuning"))
        ax.set_xticks(x, ["(a)", "(b)", "(c)", "(d)"])
        ax.set(ylim=(0, 1), title=shift_label(s), xlabel=_("way of fine-tuning (see the table)"))
    np.atleast_1d(axes)[0].set_ylabel(_("test accuracy"))
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    return fig


def backbone_changed(before, after):
    """(largest change of any hidden-layer weight, largest change of a running mean) between two models."""
    weights = max(float(np.abs(a - b).max()) for a, b in zip(before.parameters()[:-2], after.parameters()[:-2]))
    means = max(float(np.abs(a.running_mean - b.running_mean).max())
                for a, b in zip(before.norm_layers(), after.norm_layers()))
    return weights, means


# --------------------------------------------------------------------------- 2. domain shift and AdaBN
@lru_cache(maxsize=1)
def _domain_shift():
    model, _history, data = _base()
    sets = shifted_sets(data)
    out = {"clean": (accuracy(model, data.x_test, data.y_test),
                     accuracy(recompute_statistics(copy.deepcopy(model), data.x_train), data.x_test, data.y_test))}
    for s in SHIFTS:
        adapted = recompute_statistics(copy.deepcopy(model), sets[s].x_train)       # 4,000 unlabeled images
        out[s] = (accuracy(model, sets[s].x_test, data.y_test), accuracy(adapted, sets[s].x_test, data.y_test))
    return out


def domain_shift_table(model, data):
    """{kind: (accuracy without adaptation, accuracy after AdaBN on the 4,000 unlabeled training
    images of that kind)} for "clean" and every shift; the base model's test digits of each kind."""
    if data is not _base()[2]:
        raise ValueError(_("domain_shift_table works on the data of practice.train_base()"))
    return dict(_domain_shift())


def print_domain_shift_table(table):
    print(pad("", 34) + pad(_("no adaptation"), 18) + _("AdaBN (statistics of the new images)"))
    for kind, (plain, adapted) in table.items():
        print(pad(shift_label(kind), 34) + pad(f"{plain:.1%}", 18) + f"{adapted:.1%}")


def first_x_hat(model, x):
    """x̂ = (z − running_mean)/√(running_var + ε) of BN layer 1 for images x (z = x W + b): (n, 100)."""
    bn = model.norm_layers()[0]
    return (model.layers[0].forward(x) - bn.running_mean) / np.sqrt(bn.running_var + bn.eps)


def adapted(model, x):
    """A copy of `model` with AdaBN's statistics of the images x (all of them in one batch)."""
    return recompute_statistics(copy.deepcopy(model), x)


def same_predictions(a, b, x):
    """The fraction of the images x on which models a and b predict the same class."""
    return float(np.mean(a.predict(x) == b.predict(x)))


ADABN_COUNTS = (2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 4000)
ADABN_DRAWS = 5


@lru_cache(maxsize=1)
def _adabn_curve(kind):
    model, _history, data = _base()
    new = shifted_sets(data)[kind]
    rng = np.random.default_rng(0)
    acc, means = {}, {}
    for n in ADABN_COUNTS:
        draws = 1 if n == len(new.x_train) else ADABN_DRAWS
        acc[n], means[n] = [], []
        for _d in range(draws):
            pick = rng.choice(len(new.x_train), n, replace=False)
            adapted = recompute_statistics(copy.deepcopy(model), new.x_train[pick])
            acc[n].append(accuracy(adapted, new.x_test, data.y_test))
            means[n].append(adapted.norm_layers()[0].running_mean.copy())
    return acc, means


def adabn_curve(model, data, kind="scanner"):
    """AdaBN with n unlabeled images of `kind`, for each n in ADABN_COUNTS and 5 random draws of
    the n images (one for all 4,000): ({n: [test accuracy per draw]}, {n: [BN-1 running means]})."""
    if data is not _base()[2]:
        raise ValueError(_("adabn_curve works on the data of practice.train_base()"))
    return _adabn_curve(kind)


def adabn_dashboard(model, data, kind="scanner"):
    """A slider for the number n of unlabeled new images AdaBN uses. Left: test accuracy against n
    (every draw, their median line, the marker at the chosen n); right: one BN-1 unit's input on the
    new test digits, with the trained running mean and the recomputed one. Precomputed: the callback
    only moves artists."""
    acc, means = adabn_curve(model, data, kind)
    new = shifted_sets(data)[kind]
    table = domain_shift_table(model, data)
    z = model.layers[0].forward(new.x_test)                 # BN layer 1's input for the new test digits
    unit = int(np.argmax(np.abs(z.mean(axis=0) - model.norm_layers()[0].running_mean)
                         / np.sqrt(model.norm_layers()[0].running_var)))
    counts = np.array(ADABN_COUNTS)
    median = np.array([np.median(acc[n]) for n in ADABN_COUNTS])
    fig, (ax, ax_hist) = new_figure(1, 2, width=MAX_WIDTH, height=3.4, margins=(0.085, 0.98, 0.16, 0.88, 0.3, 0),
                                    gridspec_kw={"width_ratios": [1.5, 1]})
    for n in ADABN_COUNTS:
        ax.plot([n] * len(acc[n]), acc[n], "o", color=COLORS["bn"], alpha=0.35, ms=4)
    ax.plot(counts, median, "-", color=COLORS["bn"], label=_("AdaBN: median of 5 draws of n images"))
    ax.axhline(table[kind][0], color=COLORS["plain"], ls="--", label=_("no adaptation: {acc:.1%}").format(acc=table[kind][0]))
    ax.axhline(table["clean"][0], color=COLORS["grey"], ls=":", label=_("clean digits: {acc:.1%}").format(acc=table["clean"][0]))
    (marker,) = ax.plot([counts[0]], [median[0]], "o", ms=11, mfc="none", mec=COLORS["black"], mew=2)
    ax.set_xscale("log")
    ax.set_xticks([2, 10, 100, 1000, 4000], ["2", "10", "100", "1000", "4000"])
    ax.minorticks_off()
    ax.set(xlabel=_("unlabeled new images n (log scale)"), ylabel=_("test accuracy on the new digits"), ylim=(0, 1),
           title=shift_label(kind))
    ax.legend(loc="lower right", fontsize=8)
    bn = model.norm_layers()[0]
    heights, _edges, _bars = ax_hist.hist(z[:, unit], bins=40, color=COLORS["grey"], alpha=0.6)
    # headroom above the bars for the legend; the two mean lines stop below it (fixed limits: blits)
    ax_hist.set_ylim(0, 1.45 * heights.max())
    top = 1.05 / 1.45
    ax_hist.axvline(bn.running_mean[unit], ymax=top, color=COLORS["plain"], ls="--", lw=2,
                    label=_("running mean (trained)"))
    line = ax_hist.axvline(means[counts[0]][0][unit], ymax=top, color=COLORS["bn"], lw=2, label=_("recomputed mean"))
    ax_hist.set(xlabel=_("input of BN layer 1, unit {unit}").format(unit=unit), ylabel=_("new test digits"),
                title=_("where BN centres this unit"))
    ax_hist.set_xlim(ax_hist.get_xlim())
    ax_hist.legend(loc="upper center", fontsize=8)

    def update(n):
        marker.set_data([n], [np.median(acc[n])])
        line.set_xdata([means[n][0][unit]] * 2)
        return _("AdaBN with n = {n} unlabeled images: test accuracy {acc:.1%} (draws {low:.1%}–{high:.1%}); "
                 "no adaptation {plain:.1%}, clean digits {clean:.1%}").format(
            n=n, acc=np.median(acc[n]), low=min(acc[n]), high=max(acc[n]), plain=table[kind][0],
            clean=table["clean"][0])

    slider = widgets.SelectionSlider(options=list(ADABN_COUNTS), value=ADABN_COUNTS[0],
                                     description=_("images n"), continuous_update=True,
                                     style={"description_width": "initial"}, layout=widgets.Layout(width="420px"))
    return Dashboard(fig, update, animated=[marker, line], n=slider)


# --------------------------------------------------------------------------- 3. precise statistics
MOMENTA = (0.1, 0.01, 0.001)
PRECISE_IMAGES = (60, 120, 300, 600, 1200, 3960)


@dataclass
class Precise:
    """Per BN momentum α: test accuracy with the running averages and with recomputed statistics
    (all 66 training batches of 60), and how the recomputed accuracy depends on the images used."""
    running: dict
    recomputed: dict
    by_images: dict        # α → {images: accuracy}, every count for α = 0.1, all images for the others
    gap: dict              # α → largest |running mean − recomputed mean| over the units of BN layer 1
    same_weights: bool     # the three runs end with identical weights, γ and β


@lru_cache(maxsize=1)
def _precise():
    base, _history, data = _base()
    running, recomputed, by_images, gap, weights = {}, {}, {}, {}, []
    for alpha in MOMENTA:
        model = base if alpha == 0.1 else _mlp(momentum=alpha)
        if alpha != 0.1:
            _train(model, data)
        model = copy.deepcopy(model).eval()
        weights.append(model.parameters())
        running[alpha] = accuracy(model, data.x_test, data.y_test)
        by_images[alpha] = {}
        for images in PRECISE_IMAGES if alpha == MOMENTA[0] else PRECISE_IMAGES[-1:]:
            fixed = recompute_statistics(copy.deepcopy(model), data.x_train[:images], batch_size=BATCH_SIZE)
            by_images[alpha][images] = accuracy(fixed, data.x_test, data.y_test)
        recomputed[alpha] = by_images[alpha][PRECISE_IMAGES[-1]]
        gap[alpha] = float(np.abs(model.norm_layers()[0].running_mean - fixed.norm_layers()[0].running_mean).max())
    same = all(np.array_equal(a, b) for other in weights[1:] for a, b in zip(weights[0], other))
    return Precise(running, recomputed, by_images, gap, same)


def precise_runs(data):
    """The base network trained with BN momentum α = 0.1 (the base run), 0.01 (Keras's default 0.99)
    and 0.001, 300 steps each; the BN paper's Algorithm 2 recomputes the statistics afterwards with
    the weights fixed (recompute_statistics, batches of 60 training images)."""
    if data is not _base()[2]:
        raise ValueError(_("precise_runs works on the data of practice.train_base()"))
    return _precise()


def print_precise(precise):
    print(pad(_("BN momentum α"), 16) + pad(_("running averages"), 20) + _("recomputed (66 batches of 60)"))
    for alpha in MOMENTA:
        print(pad(f"{alpha:g}", 16) + pad(f"{precise.running[alpha]:.1%}", 20) + f"{precise.recomputed[alpha]:.1%}")


def precise_figure(precise):
    """Left: test accuracy with the running averages and with recomputed statistics, per momentum α.
    Right: the recomputed accuracy against the number of training images used (the same for every α:
    the weights are the same), with the running averages' accuracy of each α for comparison."""
    fig, (ax, ax2) = new_figure(1, 2, width=MAX_WIDTH, height=3.4, margins=(0.095, 0.98, 0.16, 0.88, 0.08, 0),
                                sharey=True, gridspec_kw={"width_ratios": [1, 1.3]})
    x = np.arange(len(MOMENTA))
    ax.bar(x - 0.2, [precise.running[a] for a in MOMENTA], width=0.4, color=COLORS["plain"],
           label=_("running averages"))
    ax.bar(x + 0.2, [precise.recomputed[a] for a in MOMENTA], width=0.4, color=COLORS["bn"],
           label=_("recomputed after training"))
    ax.set_xticks(x, [f"{a:g}" for a in MOMENTA])
    ax.set(xlabel=_("BN momentum α"), ylabel=_("test accuracy"), ylim=(0.8, 1.0), title=_("The same weights"))
    ax.legend(loc="upper right", fontsize=8)                    # above the bars
    images = np.array(PRECISE_IMAGES)
    first = precise.by_images[MOMENTA[0]]
    ax2.plot(images, [first[n] for n in PRECISE_IMAGES], "o-", color=COLORS["bn"], label=_("recomputed"))
    for i, alpha in enumerate(MOMENTA):
        ax2.axhline(precise.running[alpha], color=CYCLE[i + 1], ls="--", lw=1.2,
                    label=_("running averages, α = {alpha:g}").format(alpha=alpha))
    ax2.set_xscale("log")
    ax2.set_xticks(images, [str(n) for n in images])
    ax2.minorticks_off()
    ax2.set(xlabel=_("training images used (batches of 60)"), title=_("How many images recomputing needs"))
    ax2.legend(loc="lower right", fontsize=8)
    return fig


# --------------------------------------------------------------------------- 4. many devices
DEVICE_SIZES = (60, 10, 5, 2)


@dataclass
class Devices:
    """Per per-device batch size n (k = 60/n devices): test accuracy, the final training accuracy, and
    the measured spread of the devices' batch means of BN layer 1's input (in units of its std)."""
    accuracy: dict
    train_accuracy: dict
    spread: dict


def mean_spread(model, data, n, batch=BATCH_SIZE, seed=0):
    """How far one device's μ_B of BN layer 1's input strays: the standard deviation, over the
    devices of many batches, of (μ_B − μ)/σ, as the root mean square over the units (μ, σ: over all
    training images). About 1/√n for n samples a device."""
    z = model.layers[0].forward(data.x_train)
    mu, sigma = z.mean(axis=0), z.std(axis=0)
    order = np.random.default_rng(seed).permutation(len(z))[: len(z) // batch * batch]
    groups = z[order].reshape(-1, n, z.shape[1]).mean(axis=1)                 # one μ_B per device and batch
    return float(np.sqrt(np.mean(((groups - mu) / sigma) ** 2)))


@lru_cache(maxsize=1)
def _devices():
    base, history, data = _base()
    acc, train_acc, spread = {}, {}, {}
    for n in DEVICE_SIZES:
        if n == BATCH_SIZE:
            model, h = base, history
        else:
            model = _mlp(norm="ghost", virtual_batch_size=n)
            h = _train(model, data)
        acc[n] = accuracy(model, data.x_test, data.y_test)
        train_acc[n] = float(h.train_acc[-1])
        spread[n] = mean_spread(base, data, n)
    return Devices(acc, train_acc, spread)


def device_runs(data):
    """The base network with per-device BN (GhostBatchNorm) for each per-device batch size n in
    DEVICE_SIZES: batches of N = 60 split over k = 60/n simulated devices, 300 steps each. n = 60 is
    one device — the same as SyncBatchNorm over any number of devices with 60 images in total."""
    if data is not _base()[2]:
        raise ValueError(_("device_runs works on the data of practice.train_base()"))
    return _devices()


def devices_figure(devices):
    """Left: test accuracy against the per-device batch size n. Right: how far one device's batch
    mean strays (measured) against 1/√n."""
    fig, (ax, ax2) = new_figure(1, 2, width=MAX_WIDTH, height=3.4, margins=(0.08, 0.98, 0.16, 0.88, 0.3, 0))
    sizes = np.array(DEVICE_SIZES)
    ax.plot(sizes, [devices.accuracy[n] for n in DEVICE_SIZES], "o-", color=COLORS["bn"],
            label=_("per-device BN, k = 60/n devices"))
    ax.plot(sizes, [devices.train_accuracy[n] for n in DEVICE_SIZES], "s--", color=COLORS["grey"], ms=4,
            label=_("the same, training accuracy"))
    ax.axhline(devices.accuracy[BATCH_SIZE], color=COLORS["plain"], ls=":",
               label=_("SyncBatchNorm (all 60 together): {acc:.1%}").format(acc=devices.accuracy[BATCH_SIZE]))
    for a in (ax, ax2):
        a.set_xscale("log")
        a.set_xticks(sizes, [str(n) for n in sizes])
        a.minorticks_off()
        a.invert_xaxis()
    ax.set(xlabel=_("images per device n"), ylabel=_("accuracy"), ylim=(0.5, 1.0),
           title=_("One batch of 60 on k devices"))
    ax.legend(loc="lower left", fontsize=8)
    ax2.plot(sizes, [devices.spread[n] for n in DEVICE_SIZES], "o", color=COLORS["bn"], label=_("measured"))
    fine = np.geomspace(2, 60, 50)
    ax2.plot(fine, 1 / np.sqrt(fine), color=COLORS["black"], lw=1, label="1/√n")
    ax2.set(xlabel=_("images per device n"), ylabel=_("spread of μ_B (in units of σ)"),
            title=_("Noise of one device's batch mean"))
    ax2.legend(loc="upper left", fontsize=8)
    return fig


# --------------------------------------------------------------------------- 5. batches that are not random
ORDERS = ("sorted", "class_pure")
ORDER_LABELS = {"shuffled": N_("shuffled every epoch (the fix)"),
                "sorted": N_("stored sorted by digit, no shuffling"),
                "class_pure": N_("one digit per batch, no shuffling")}
NORM_LABELS = {"bn": N_("with BN"), "plain": N_("without BN")}


def order_label(order, norm=None):
    """"stored sorted by digit, no shuffling" and the like; with norm ("bn"/"plain") appended."""
    text = _(ORDER_LABELS[order])
    return text if norm is None else _("{order}, {norm}").format(order=text, norm=_(NORM_LABELS[norm]))


def stored_order(y, order, batch=BATCH_SIZE, seed=0):
    """Indices that put a training set in a bad stored order. "sorted": all 0s, then all 1s, … (a
    folder per class). "class_pure": batches of `batch` images of one digit each, the batches in a
    random order (seeded); each digit's images that do not fill a batch are left out."""
    if order == "sorted":
        return np.argsort(y, kind="stable")
    rng = np.random.default_rng(seed)
    blocks = []
    for digit in np.unique(y):
        idx = np.flatnonzero(y == digit)
        blocks += list(idx[: len(idx) // batch * batch].reshape(-1, batch))
    return np.concatenate([blocks[i] for i in rng.permutation(len(blocks))])


@dataclass
class Orders:
    """accuracy[(order, norm)] (eval mode), histories[(order, norm)], predicted[(order, norm)]: the
    share of test images given each class; "shuffled" with BN is the base run."""
    accuracy: dict
    histories: dict
    predicted: dict


@lru_cache(maxsize=1)
def _orders():
    base, history, data = _base()
    acc = {("shuffled", "bn"): accuracy(base, data.x_test, data.y_test)}
    histories = {("shuffled", "bn"): history}
    predicted = {("shuffled", "bn"): np.bincount(base.predict(data.x_test), minlength=10) / len(data.x_test)}
    for order in ORDERS:
        idx = stored_order(data.y_train, order)
        stored = Dataset(data.x_train[idx], data.y_train[idx], data.x_test, data.y_test, order)
        for norm in ("bn", "plain"):
            model = _mlp(norm="batch" if norm == "bn" else None)
            histories[order, norm] = _train(model, stored, shuffle=False)
            model.eval()
            acc[order, norm] = accuracy(model, data.x_test, data.y_test)
            predicted[order, norm] = np.bincount(model.predict(data.x_test), minlength=10) / len(data.x_test)
    return Orders(acc, histories, predicted)


def order_runs(data):
    """The base network (and the same without BN) trained 300 steps with shuffle=False on the
    training set in each bad stored order; the shuffled BN run is the base run."""
    if data is not _base()[2]:
        raise ValueError(_("order_runs works on the data of practice.train_base()"))
    return _orders()


def print_orders(orders):
    for key, a in orders.accuracy.items():
        print(pad(order_label(*key), 52) + f"{a:.1%}")


def orders_figure(orders):
    """The training loss of each run (a running mean over 10 steps), with ln 10, a uniform guess."""
    fig, ax = new_figure(width=MAX_WIDTH, height=4.2, margins=(0.08, 0.98, 0.33, 0.93, 0, 0))
    styles = {"bn": "-", "plain": "--"}
    colors = {"shuffled": COLORS["bn"], "sorted": COLORS["plain"], "class_pure": COLORS["group"]}
    for (order, norm), h in orders.histories.items():
        smooth = np.convolve(h.loss, np.ones(10) / 10, mode="valid")
        ax.plot(np.arange(len(smooth)) + 9, smooth, styles[norm], color=colors[order], label=order_label(order, norm))
    ax.axhline(np.log(10), color=COLORS["grey"], ls=":", label=_("ln 10: a uniform guess"))
    ax.set(xlabel=_("training step"), ylabel=_("training loss (mean of 10 steps)"), ylim=(0, 3.5),
           title=_("Batches that are not random"))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize=8, frameon=False)
    return fig


# --------------------------------------------------------------------------- 6. weight decay
WEIGHT_DECAY = 0.02


@lru_cache(maxsize=1)
def _weight_decay():
    base, history, data = _base()
    model = _mlp()
    decayed = _train(model, data, record_every=30, weight_decay=WEIGHT_DECAY)
    return {0.0: (base, history), WEIGHT_DECAY: (model.eval(), decayed)}


def weight_decay_runs(data):
    """{λ: (model, History)} for λ = 0 (the base run) and λ = WEIGHT_DECAY on the weight matrices
    (biases, γ and β exempt), otherwise the base run's settings."""
    if data is not _base()[2]:
        raise ValueError(_("weight_decay_runs works on the data of practice.train_base()"))
    return _weight_decay()


def weight_decay_figure(runs):
    """Left: ‖W‖ of the two hidden Linear layers over training, with and without weight decay.
    Right: the effective learning rate η/‖W‖² of hidden layer 1, relative to its value at step 0."""
    fig, (ax, ax2) = new_figure(1, 2, width=MAX_WIDTH, height=3.4, margins=(0.08, 0.98, 0.16, 0.88, 0.3, 0))
    for i, (lam, (_model, h)) in enumerate(sorted(runs.items())):
        color = COLORS["bn"] if lam == 0 else COLORS["plain"]
        name = _("no weight decay") if lam == 0 else _("weight decay λ = {lam:g}").format(lam=lam)
        for layer, style in ((0, "-"), (1, "--")):
            ax.plot(h.record_steps, h.weight_norms[:, layer], style, color=color,
                    label=_("{name}, layer {layer}").format(name=name, layer=layer + 1))
        eff = (h.weight_norms[0, 0] / h.weight_norms[:, 0]) ** 2
        ax2.plot(h.record_steps, eff, color=color, label=name)
    ax.set(xlabel=_("training step"), ylabel="‖W‖", title=_("Size of the weights before BN"), ylim=(0, None))
    ax.legend(loc="lower left", fontsize=8)
    ax2.set(xlabel=_("training step"), ylabel=_("η/‖W‖², relative to step 0"),
            title=_("Effective learning rate, layer 1"))
    ax2.legend(loc="upper left", fontsize=8)
    return fig


def scale_invariance_gap(model, x, factor=0.5):
    """Largest change of the logits in training mode (batch statistics) when hidden layer 1's W and b
    are multiplied by `factor` > 0: zero up to rounding and ε, as BN removes the scale."""
    scaled = copy.deepcopy(model)
    scaled.layers[0].W *= factor
    scaled.layers[0].b *= factor
    with model.batch_statistics(), scaled.batch_statistics():
        return float(np.abs(model.forward(x) - scaled.forward(x)).max())


def decayed_arrays(model):
    """The parameter arrays `train(weight_decay=…)` decays: those with two or more axes (the W's)."""
    return [p for p in model.parameters() if p.ndim >= 2]


# --------------------------------------------------------------------------- exercises
EX1 = dict(devices=8, per_device=4)
EX2 = dict(scale=0.5, offset=0.25, running_mean=3.0, running_var=16.0, sum_w=2.0)
EX3 = dict(dy=np.array([[1.0, -2.0], [0.5, 1.0], [-1.0, 0.5]]), gamma=np.array([2.0, 0.5]),
           running_var=np.array([4.0, 0.25]), eps=1e-5)


def check_sync_noise(answer):
    """Exercise 1: the spread of μ_B (in units of σ) with SyncBatchNorm over 8 devices × 4 images."""
    n, k = EX1["per_device"], EX1["devices"]
    check(answer, 1 / np.sqrt(n * k), _("exercise 1 — SyncBatchNorm's spread of μ_B"), rtol=1e-3,
          wrong=[(1 / np.sqrt(n), _("that is one device on its own (n = 4); SyncBatchNorm computes μ_B over all "
                                    "8 × 4 = 32 images")),
                 (1 / (n * k), _("the spread falls like 1/√n, not 1/n: take the square root of 32")),
                 (1 / np.sqrt(k), _("n counts images, not devices: 8 devices with 4 images each give 32 images"))])


def ex2_expected(p=EX2):
    return np.array([p["scale"] * p["running_mean"] + p["offset"] * p["sum_w"], p["scale"] ** 2 * p["running_var"]])


def check_adabn_by_hand(answer):
    """Exercise 2: the mean and variance AdaBN finds for a first-layer feature on faded pixels."""
    p = EX2
    mean, var = ex2_expected()
    check(answer, [mean, var], _("exercise 2 — AdaBN's statistics of a faded feature"),
          wrong=[([mean, p["scale"] * p["running_var"]], _("the variance scales with the square of 0.5: "
                                                            "Var[a·z] = a²·Var[z]")),
                 ([p["scale"] * p["running_mean"], var], _("the offset 0.25 is added to every pixel, so z gains "
                                                            "0.25 · Σw = 0.25 · 2.0")),
                 ([p["scale"] * p["running_mean"] + p["offset"], var], _("each of the pixels gets + 0.25, and each "
                                                                         "pixel has its own weight: z gains 0.25 · Σw")),
                 ([mean, var + p["offset"]], _("adding the same number to every image does not change the variance")),
                 ([p["running_mean"], p["running_var"]], _("these are the old statistics; work out z for the faded "
                                                           "pixels 0.5·x + 0.25"))])


def ex3_expected(p=EX3):
    return p["dy"] * p["gamma"] / np.sqrt(p["running_var"] + p["eps"])


def check_frozen_backward(answer):
    """Exercise 3: dx of a batch norm layer whose statistics are frozen."""
    p = EX3
    x_hat_like = p["dy"] - p["dy"].mean(axis=0)
    check(answer, ex3_expected(), _("exercise 3 — the backward pass with frozen statistics"), rtol=1e-6, atol=1e-9,
          wrong=[(p["dy"] * p["gamma"] / p["running_var"], _("divide by the standard deviation √(running_var + ε), "
                                                              "not by the variance")),
                 (p["dy"] / np.sqrt(p["running_var"] + p["eps"]), _("you forgot γ: y = γ x̂ + β, so dx picks up γ")),
                 (p["dy"] * p["gamma"], _("you forgot to divide by √(running_var + ε)")),
                 (x_hat_like * p["gamma"] / np.sqrt(p["running_var"] + p["eps"]),
                  _("with frozen statistics μ and σ² are constants: no mean of dy is subtracted (that term comes "
                    "from μ_B, which depends on the batch)"))])


def ex4_expected():
    return int(sum(p.size for p in decayed_arrays(_mlp())))


def check_decayed_count(answer):
    """Exercise 4: how many numbers of the 784-100-100-10 BN network weight decay shrinks."""
    model = _mlp()
    everything = model.num_parameters()
    biases = sum(layer.b.size for layer in model.layers if hasattr(layer, "b") and layer.b is not None)
    check(answer, ex4_expected(), _("exercise 4 — numbers under weight decay"), rtol=0, atol=0.5,
          wrong=[(everything, _("that is every parameter; γ, β and the biases are exempt")),
                 (everything - biases, _("γ and β are exempt too, not only the biases")),
                 (ex4_expected() + biases, _("the biases b are exempt too")),
                 (784 * 100 + 100 * 100, _("the output layer's W (100 × 10) is decayed too"))])
