"""Lesson 08 — the normalization family: one operation over different axes; batch size; batch renorm.

    family.axes_dashboard().show()          # the (N, C, H, W) picture: what one statistic averages
    table = family.compare_with_bnlib()     # bnlib's *norm_forward vs a hand computation per norm
    sweep = family.batch_size_sweep()       # BN, LN, GN at batch sizes N = 2 … 16 (+ BRN at 2, 4),
                                            # every run seeing the same number of training images
    family.batch_size_figure(sweep)         # final test accuracy against batch size (log2 axis)
    family.renorm_dashboard().show()        # r and d of batch renorm for batches of size N
    family.renorm_figure(sweep)             # BN vs BRN at the small batch sizes

Notation (as in the notebook). x has shape (N, C, H, W): N samples in the batch, C channels
(features), H × W values per channel (an image's rows and columns; H = W = 1 in an MLP).
Every member of the family computes, over one set S of values of x,

    μ = mean of x over S,   σ² = mean of (x − μ)² over S,   x̂ = (x − μ) / √(σ² + ε)
(a mean over S divides by K, the number of values in S)

and the members differ only in which values form a set S:
    BatchNorm     one set per channel c:                 all n, h, w    (N·H·W values)
    LayerNorm     one set per sample n:                  all c, h, w    (C·H·W values)
    InstanceNorm  one set per sample n and channel c:    all h, w       (H·W values)
    GroupNorm     one set per sample n and group g of C/G channels      ((C/G)·H·W values)
"""
from dataclasses import dataclass, field
from functools import lru_cache

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from .. import norm as _norm
from .. import plots
from ..checks import NotYet, check
from ..data import load_mnist5k, minibatches
from ..i18n import _, N_, columns, pad
from ..layers import softmax_cross_entropy
from ..model import MLP
from ..train import SGD
from ..widgets import Dashboard

NORMS = ("batch", "layer", "instance", "group")
NAMES = {"batch": N_("BatchNorm"), "layer": N_("LayerNorm"), "instance": N_("InstanceNorm"),
         "group": N_("GroupNorm"), "renorm": N_("Batch Renorm")}
COLOR = {"batch": plots.COLORS["bn"], "layer": plots.COLORS["layer"], "instance": plots.COLORS["instance"],
         "group": plots.COLORS["group"], "renorm": plots.COLORS["renorm"]}
PICTURE_SHAPE = (4, 6, 3, 3)                  # (N, C, H, W) of the picture: small enough to see every value
SIZES = [784, 100, 100, 100, 10]              # the MNIST network of the series
BATCH_SIZES = (2, 4, 8, 16)
RENORM_SIZES = (2, 4)
IMAGES = 1024                                 # training images seen by every run of the sweep
TEST_IMAGES = 500                             # the sweep measures on the first 500 test images


def name(kind):
    """The norm's name in the learner's language, e.g. name("layer") -> "LayerNorm"."""
    return _(NAMES[kind])




# ---------------------------------------------------------------- which values share a statistic
def divisors(n):
    return [g for g in range(1, n + 1) if n % g == 0]


def set_coordinates(kind, shape=PICTURE_SHAPE, groups=2):
    """For every (n, c) block of x: (a, b) = (which sample part, which channel part) of its set.

    Two blocks share one mean and one variance exactly when their (a, b) are equal. Every member
    of the family averages over all H × W values of a block, so a block is never split.
        batch: (0, c)    layer: (n, 0)    instance: (n, c)    group: (n, c // (C/G))
    Returns two int arrays of shape (N, C).
    """
    N, C = shape[:2]
    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    zero = np.zeros_like(n)
    if kind == "batch":
        return zero, c
    if kind == "layer":
        return n, zero
    if kind == "instance":
        return n, c
    if kind == "group":
        if C % groups:
            raise ValueError(_("groups={groups} does not divide the {channels} channels; choose one of {divisors}")
                             .format(groups=groups, channels=C, divisors=divisors(C)))
        return n, c // (C // groups)
    raise ValueError(_("unknown {name} {value!r}; choose one of {choices}")
                     .format(name="norm", value=kind, choices=", ".join(NORMS)))


def set_ids(kind, shape=PICTURE_SHAPE, groups=2):
    """One integer per (n, c) block naming its statistic set (0 … number of sets − 1), shape (N, C)."""
    a, b = set_coordinates(kind, shape, groups)
    return a * shape[1] + b


def statistic_set(kind, n, c, shape=PICTURE_SHAPE, groups=2):
    """Boolean mask, shape (N, C, H, W): the values averaged together with value (n, c, ·, ·)."""
    ids = set_ids(kind, shape, groups)
    return np.broadcast_to((ids == ids[n, c])[:, :, None, None], shape)


def counts(kind, shape=PICTURE_SHAPE, groups=2):
    """(values per statistic, number of statistics) for one norm and one shape."""
    ids = set_ids(kind, shape, groups)
    sets = len(np.unique(ids))
    return int(np.prod(shape)) // sets, sets


def count_formula(kind, shape=PICTURE_SHAPE, groups=2):
    """The two counts written out, e.g. ('N·H·W = 4·3·3 = 36', 'C = 6')."""
    N, C, H, W = shape
    m, k = counts(kind, shape, groups)
    per, how_many = {
        "batch": (f"N·H·W = {N}·{H}·{W}", "C"),
        "layer": (f"C·H·W = {C}·{H}·{W}", "N"),
        "instance": (f"H·W = {H}·{W}", f"N·C = {N}·{C}"),
        "group": (f"(C/G)·H·W = {C // groups}·{H}·{W}", f"N·G = {N}·{groups}"),
    }[kind]
    return f"{per} = {m}", f"{how_many} = {k}"


def by_hand(x, kind, groups=2, eps=1e-5):
    """x̂ = (x − μ)/√(σ² + ε), with μ and σ² taken over each statistic set of `set_ids`.

    Independent of bnlib.norm: each value's set comes from the picture's (n, c) → set table, and
    np.bincount adds up the values of each set (no loop). x: (N, C, H, W).
    """
    x = np.asarray(x, dtype=np.float64)
    ids = np.broadcast_to(set_ids(kind, x.shape, groups)[:, :, None, None], x.shape).ravel()
    m = np.bincount(ids)                              # values in each set (0 for unused ids)
    used = m > 0
    mu = np.zeros(len(m))
    mu[used] = np.bincount(ids, weights=x.ravel())[used] / m[used]
    dev = x.ravel() - mu[ids]
    var = np.zeros(len(m))
    var[used] = np.bincount(ids, weights=dev * dev)[used] / m[used]
    return (dev / np.sqrt(var[ids] + eps)).reshape(x.shape)


def bnlib_forward(x, kind, groups=2, eps=1e-5):
    """bnlib's own function for `kind`, with γ = 1, β = 0 (so the output is x̂)."""
    C = x.shape[1]
    ones, zeros = np.ones(C), np.zeros(C)
    if kind == "batch":
        return _norm.batchnorm_forward(x, ones, zeros, eps)[0]
    if kind == "layer":
        return _norm.layernorm_forward(x, np.ones(x.shape[1:]), np.zeros(x.shape[1:]), eps)[0]
    if kind == "instance":
        return _norm.instancenorm_forward(x, ones, zeros, eps)[0]
    return _norm.groupnorm_forward(x, ones, zeros, groups, eps)[0]


def random_picture_x(shape=PICTURE_SHAPE, seed=0):
    """A random x for the picture (float64): each channel gets its own offset and scale, each
    sample its own offset, so the four norms give visibly different statistics."""
    rng = np.random.default_rng(seed)
    N, C = shape[:2]
    channel_shift = rng.normal(0, 2, size=(1, C, 1, 1))
    channel_scale = rng.uniform(0.5, 3, size=(1, C, 1, 1))
    sample_shift = rng.normal(0, 1, size=(N, 1, 1, 1))
    return channel_shift + sample_shift + channel_scale * rng.standard_normal(shape)


def compare_with_bnlib(x=None, eps=1e-5):
    """For every norm (GroupNorm with every G that divides C): the largest |bnlib − by hand|,
    and the counts. Also checks the one set the picture highlights for (n, c) = (0, 0) directly:
    (x[S] − mean(x[S])) / √(var(x[S]) + ε) against bnlib's output on S.
    Returns {label: dict(diff, diff_set, per_stat, stats)}."""
    x = random_picture_x() if x is None else np.asarray(x, dtype=np.float64)
    rows = {}
    settings = [(k, 2) for k in NORMS if k != "group"] + [("group", g) for g in divisors(x.shape[1])]
    for kind, groups in settings:
        y = bnlib_forward(x, kind, groups, eps)
        s = statistic_set(kind, 0, 0, x.shape, groups)
        xs = x[s]
        label = name(kind) + (f" (G = {groups})" if kind == "group" else "")
        per, stats = counts(kind, x.shape, groups)
        rows[label] = dict(diff=float(np.abs(y - by_hand(x, kind, groups, eps)).max()),
                           diff_set=float(np.abs(y[s] - (xs - xs.mean()) / np.sqrt(xs.var() + eps)).max()),
                           per_stat=per, stats=stats, set_size=int(s.sum()))
    return rows


def print_comparison(rows):
    """The table of `compare_with_bnlib`: one row per norm, columns aligned in either language."""
    head = [_("norm"), _("values per statistic"), _("statistics"), _("max |bnlib − by hand|")]
    first = max(columns(t) for t in [head[0], *rows]) + 2
    widths = [max(columns(h) + 2, 10) for h in head[1:]]
    print(pad(head[0], first) + "".join(pad(h, w, ">") for h, w in zip(head[1:], widths)))
    for label, r in rows.items():
        cells = (str(r["per_stat"]), str(r["stats"]), f"{r['diff']:.1e}")
        print(pad(label, first) + "".join(pad(v, w, ">") for v, w in zip(cells, widths)))


def _picture_rgb(kind, n, c, shape, groups):
    """An RGB image of the N × C blocks (gaps between blocks): the highlighted set in the norm's
    color, the other sets in two light greys that alternate from set to set."""
    N, C, H, W = shape
    a, b = set_coordinates(kind, shape, groups)
    ids = set_ids(kind, shape, groups)
    light = np.array([[0.93, 0.93, 0.93], [0.80, 0.80, 0.80]])
    block = light[(a + b) % 2]                                                  # (N, C, 3)
    hi = np.array(plt.matplotlib.colors.to_rgb(COLOR[kind]))
    block[ids == ids[n, c]] = hi
    img = np.ones((N * (H + 1) - 1, C * (W + 1) - 1, 3))
    rows = (np.arange(N)[:, None] * (H + 1) + np.arange(H)).ravel()               # image rows of the values
    cols = (np.arange(C)[:, None] * (W + 1) + np.arange(W)).ravel()
    img[np.ix_(rows, cols)] = np.repeat(np.repeat(block, H, axis=0), W, axis=1)
    return img


def axes_dashboard(shape=PICTURE_SHAPE, x=None):
    """The Group Normalization paper's Figure 2, made interactive for x of shape (N, C, H, W).

    Rows: samples n; columns: channels c; each block: the H × W values of one channel of one
    sample. Choose a norm (and G for GroupNorm) and a value (n, c): the values that share that
    value's mean and variance light up. The summary says how many values one statistic
    averages, how many statistics there are, and μ, σ of the highlighted set for a random x.
    """
    N, C, H, W = shape
    x = random_picture_x(shape) if x is None else np.asarray(x, dtype=np.float64)
    fig, ax = plots.new_figure(1, 1, 7.0, 4.2, (0.12, 0.98, 0.2, 0.9, 0, 0))
    image = ax.imshow(_picture_rgb("batch", 0, 0, shape, 2), interpolation="nearest")
    for i in range(N):                                          # thin lines between the H × W values
        for j in range(1, H):
            ax.axhline(i * (H + 1) + j - 0.5, color="white", lw=0.6)
    for i in range(C):
        for j in range(1, W):
            ax.axvline(i * (W + 1) + j - 0.5, color="white", lw=0.6)
    (marker,) = ax.plot([1], [1], marker="x", color="black", ms=10, mew=2, ls="none",
                        label=_("the chosen value (n, c)"))
    ax.set_xticks(np.arange(C) * (W + 1) + (W - 1) / 2, [f"c={i}" for i in range(C)])
    ax.set_yticks(np.arange(N) * (H + 1) + (H - 1) / 2, [f"n={i}" for i in range(N)])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_xlabel(_("channel c  (each block: the H×W = {h}×{w} values of one channel of one sample)")
                  .format(h=H, w=W))
    ax.set_ylabel(_("sample n in the batch"))
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.13), fontsize=8, frameon=False)
    title = ax.set_title("", fontsize=10)

    def update(norm, groups, n, c):
        # G only means something for GroupNorm: its slider shows only then (a disabled slider
        # looked movable, and key presses on it drew nothing)
        controls["groups"].layout.display = None if norm == "group" else "none"
        image.set_data(_picture_rgb(norm, n, c, shape, groups))
        marker.set_data([c * (W + 1) + (W - 1) / 2], [n * (H + 1) + (H - 1) / 2])
        title.set_text(_("{name}: the colored values share one mean μ and one variance σ²").format(name=name(norm)))
        per, how_many = count_formula(norm, shape, groups)
        vals = x[statistic_set(norm, n, c, shape, groups)]
        g = (_(" with G = {groups} groups of {size} channels").format(groups=groups, size=C // groups)
             if norm == "group" else "")
        return _("{name}{groups}: each statistic averages {per} values; there are {how_many} statistics "
                 "(μ, σ² pairs). Set of the value at n = {n}, c = {c}: {size} values, μ = {mean:+.2f}, "
                 "σ = {std:.2f}.").format(name=name(norm), groups=g, per=per, how_many=how_many, n=n, c=c,
                                          size=vals.size, mean=vals.mean(), std=vals.std())

    controls = dict(
        norm=widgets.ToggleButtons(options=[(name(k), k) for k in NORMS], value="batch", description=_("norm")),
        groups=widgets.SelectionSlider(options=divisors(C), value=2, description=_("groups G")),
        n=widgets.IntSlider(value=0, min=0, max=N - 1, description=_("sample n")),
        c=widgets.IntSlider(value=0, min=0, max=C - 1, description=_("channel c")),
    )
    for w in controls.values():
        w.style.description_width = "70px"
    return Dashboard(fig, update, animated=[image, marker, title], **controls)


# ---------------------------------------------------------------- batch-size robustness
def fit(model, data, batch_size, steps, lr, seed=0):
    """Minibatch SGD on softmax cross-entropy, nothing recorded (cheaper than bnlib.train for
    many short runs). Returns the training loss of every step, shape (steps,)."""
    opt = SGD(model.parameters(), model.gradients(), lr)
    batches = minibatches(len(data.x_train), batch_size, seed)
    model.train()
    losses = np.empty(steps)
    for step in range(steps):
        idx = next(batches)
        losses[step], dlogits = softmax_cross_entropy(model.forward(data.x_train[idx]), data.y_train[idx])
        model.backward(dlogits)
        opt.step()
    return losses


def batch_mode_accuracy(model, x, y, batch_size):
    """Test accuracy when every test batch of `batch_size` images is normalized with its OWN
    statistics (what training mode does), running averages left untouched. The last
    incomplete batch is dropped."""
    keep = len(x) - len(x) % batch_size
    with model.batch_statistics():
        pred = np.concatenate([model.forward(chunk).argmax(axis=1)
                               for chunk in np.split(x[:keep], keep // batch_size)])
    return float(np.mean(pred == y[:keep]))


def schedule(batch_size, images=IMAGES, lr_at_32=0.1):
    """(steps, lr) of one run. Every batch size N gets the same budget of training images, so
    steps = images // N; the learning rate grows with the batch, lr = lr_at_32 · N / 32 (the linear
    scaling rule the GN paper used: one step with a 4× larger batch replaces 4 small steps)."""
    return images // batch_size, lr_at_32 * batch_size / 32


@dataclass
class Sweep:
    """What `batch_size_sweep` measured. Arrays are indexed like `sizes`."""
    sizes: tuple
    steps: np.ndarray                     # training steps of each run
    lrs: np.ndarray                       # learning rate of each run
    eval_acc: dict                        # norm -> (len(sizes),) test accuracy, eval mode
    batch_acc: dict = field(default_factory=dict)    # norm -> {B: test accuracy, batch statistics}
    final_loss: dict = field(default_factory=dict)   # norm -> {N: mean training loss, last quarter of the run}
    renorm_acc: dict = field(default_factory=dict)   # N -> test accuracy of batch renorm, eval mode
    config: dict = field(default_factory=dict)

    def acc(self, norm, batch_size):
        if norm == "renorm":
            return self.renorm_acc[batch_size]
        return float(self.eval_acc[norm][self.sizes.index(batch_size)])


@lru_cache(maxsize=4)
def batch_size_sweep(sizes=BATCH_SIZES, norms=("batch", "layer", "group"), renorm_sizes=RENORM_SIZES,
                     images=IMAGES, lr_at_32=0.1, groups=4, test_images=TEST_IMAGES, seed=0):
    """Train 784-100-100-100-10 ReLU networks (He init) on MNIST-5k with each norm at each batch size N.

    Every run: the same seed (same initial weights, same shuffles) and the same budget of
    `images` training images: `schedule(N)` gives images // N steps and lr = lr_at_32 · N / 32.
    GroupNorm splits the 100 features into `groups` groups. Measured on the first `test_images`
    test images (the same for every run): test accuracy in eval mode (BN: running averages); for
    BN and batch renorm at `renorm_sizes` also the test accuracy with batch statistics
    (`batch_mode_accuracy`: one forward pass per test batch, the costly part) and the mean
    training loss over the last quarter of the run. Cached per argument set within this Python
    process (nothing is written to disk).
    """
    data = load_mnist5k()
    x_test, y_test = data.x_test[:test_images], data.y_test[:test_images]
    sched = [schedule(b, images, lr_at_32) for b in sizes]
    result = Sweep(tuple(sizes), np.array([s for s, _ in sched]), np.array([lr for _, lr in sched]), {},
                   config=dict(images=images, lr_at_32=lr_at_32, groups=groups, test_images=len(x_test), seed=seed))
    for kind in norms:
        accs = []
        for b, (steps, lr) in zip(sizes, sched):
            model = MLP(SIZES, "relu", norm=kind, init="he", groups=groups, seed=seed)
            losses = fit(model, data, b, steps, lr, seed)
            accs.append(np.mean(model.predict(x_test) == y_test))
            if kind == "batch" and b in renorm_sizes:
                _small_batch_record(result, "batch", model, x_test, y_test, b, losses)
        result.eval_acc[kind] = np.array(accs)
    for b in renorm_sizes:
        steps, lr = schedule(b, images, lr_at_32)
        model = MLP(SIZES, "relu", norm="renorm", init="he", seed=seed)
        losses = fit(model, data, b, steps, lr, seed)
        result.renorm_acc[b] = float(np.mean(model.predict(x_test) == y_test))
        _small_batch_record(result, "renorm", model, x_test, y_test, b, losses)
    return result


def _small_batch_record(result, kind, model, x_test, y_test, b, losses):
    result.batch_acc.setdefault(kind, {})[b] = batch_mode_accuracy(model, x_test, y_test, b)
    result.final_loss.setdefault(kind, {})[b] = float(losses[-max(1, len(losses) // 4):].mean())


def print_sweep(result):
    """The sweep as a table: steps and learning rate of each run, then the test accuracy per norm."""
    print(_("every run: {images:,} training images").format(images=result.config["images"]))
    rows = [(_("batch size N"), [f"{b}" for b in result.sizes]), (_("steps"), [f"{s}" for s in result.steps]),
            (_("lr"), [f"{lr:.3g}" for lr in result.lrs])]
    rows += [(name(kind), [f"{a:.1%}" for a in accs]) for kind, accs in result.eval_acc.items()]
    first = max(columns(label) for label, _values in rows) + 2
    for label, values in rows:
        print(pad(label, first) + "".join(pad(v, 8, ">") for v in values))
    print(_("(test accuracy after training, on the first {n} test images; BatchNorm in eval mode, with its "
            "running averages)").format(n=result.config["test_images"]))


def batch_size_figure(result):
    """Final test accuracy against batch size N (log2 axis), one line per norm."""
    fig, ax = plots.new_figure(1, 1, 7.5, 3.8, (0.1, 0.97, 0.2, 0.9, 0, 0))
    sizes = np.array(result.sizes)
    for kind, accs in result.eval_acc.items():
        ax.plot(sizes, accs, marker="o", color=COLOR[kind], label=name(kind))
    ax.axhline(0.1, color=plots.COLORS["grey"], ls=":", label=_("chance (10 classes)"))
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [_("{n}\n({steps} steps)").format(n=b, steps=s) for b, s in zip(sizes, result.steps)],
                  fontsize=8)
    ax.minorticks_off()
    ax.set_ylim(0, 1)
    ax.set_xlabel(_("batch size N (log scale; below: training steps, {images:,} images each)")
                  .format(images=result.config["images"]))
    ax.set_ylabel(_("test accuracy after training"))
    ax.set_title(_("Which norm survives small batches? (MNIST-5k, 784-100-100-100-10, ReLU)"))
    ax.legend(loc="lower right", fontsize=9)
    return fig


# ---------------------------------------------------------------- batch renormalization
def simulate_rd(batch_size, draws=2000, seed=None):
    """For `draws` batches of `batch_size` values of one unit whose values follow a standard normal
    distribution (so the running statistics are μ_run = 0, σ_run = 1): the unclipped
    r = σ_B/σ_run and d = (μ_B − μ_run)/σ_run of each batch, shape (draws,). σ_B = √(σ²_B + ε).
    The seed defaults to the batch size, so the notebook's checks see the dashboard's batches."""
    seed = batch_size if seed is None else seed
    x = np.random.default_rng(seed).standard_normal((draws, batch_size))
    return np.sqrt(x.var(axis=1) + 1e-5), x.mean(axis=1)


_RENORM_SIZES_SHOWN = (2, 4, 8, 16, 32, 64, 128)


def renorm_dashboard(sizes=_RENORM_SIZES_SHOWN, draws=2000):
    """Histograms of r = σ_B/σ_run and d = (μ_B − μ_run)/σ_run over many batches of one unit with
    μ_run = 0, σ_run = 1, for the chosen batch size N; the clipping limits 1/r_max … r_max and
    −d_max … d_max drawn as dashed lines. One legend for both panels, above them (never on a bar)."""
    sims = {b: simulate_rd(b, draws) for b in sizes}
    r_bins, d_bins = np.linspace(0, 5.5, 56), np.linspace(-5.5, 5.5, 56)
    fig, (ax_r, ax_d) = plots.new_figure(1, 2, plots.MAX_WIDTH, 3.9, (0.08, 0.98, 0.13, 0.72, 0.25, 0))
    r_hist = ax_r.stairs(np.zeros(len(r_bins) - 1), r_bins, fill=True, color=COLOR["renorm"], alpha=0.8,
                         label=_("one batch's r or d, unclipped (histogram)"))
    d_hist = ax_d.stairs(np.zeros(len(d_bins) - 1), d_bins, fill=True, color=COLOR["renorm"], alpha=0.8)
    r_lines = [ax_r.axvline(v, color=plots.COLORS["black"], ls="--", lw=1) for v in (1 / 3, 3)]
    d_lines = [ax_d.axvline(v, color=plots.COLORS["black"], ls="--", lw=1) for v in (-5, 5)]
    r_lines[0].set_label(_("clipping limits (1/r_max, r_max and −d_max, d_max)"))
    ax_r.axvline(1, color=plots.COLORS["grey"], lw=1)
    ax_d.axvline(0, color=plots.COLORS["grey"], lw=1)
    ax_r.set(xlabel="r = σ_B / σ_run", ylabel=_("batches per bin (tallest bar = 1)"), xlim=(0, 5.5), ylim=(0, 1.1))
    ax_d.set(xlabel="d = (μ_B − μ_run) / σ_run", ylabel=_("batches per bin (tallest bar = 1)"), xlim=(-5.5, 5.5),
             ylim=(0, 1.1))
    ax_r.set_title(_("r: the batch's standard deviation\n÷ the running one"), fontsize=9)
    ax_d.set_title(_("d: shift of the batch mean,\nin running standard deviations"), fontsize=9)
    fig.legend(handles=[r_hist, r_lines[0]], loc="upper center", bbox_to_anchor=(0.5, 0.9), ncols=2,
               fontsize=8, frameon=False)
    title = fig.suptitle("")

    def relative(counts):
        return counts / counts.max()
    hists = {b: (relative(np.histogram(np.clip(r, 0, 5.5), r_bins)[0]),       # computed once; the tallest
                 relative(np.histogram(np.clip(d, -5.5, 5.5), d_bins)[0]))     # bar is 1: fixed axes
             for b, (r, d) in sims.items()}

    def update(batch_size, r_max, d_max):
        r, d = sims[batch_size]
        r_hist.set_data(values=hists[batch_size][0])
        d_hist.set_data(values=hists[batch_size][1])
        for line, v in zip(r_lines, (1 / r_max, r_max)):
            line.set_xdata([v, v])
        for line, v in zip(d_lines, (-d_max, d_max)):
            line.set_xdata([v, v])
        title.set_text(_("{draws} batches of N = {n} values of one unit (μ_run = 0, σ_run = 1)")
                       .format(draws=len(r), n=batch_size))
        r_clip = np.mean((r < 1 / r_max) | (r > r_max))
        d_clip = np.mean(np.abs(d) > d_max)
        return _("N = {n}: σ_B/σ_run has median {median:.2f} and lies between {low:.2f} and {high:.2f} in 90% "
                 "of batches; r clipped in {r_clip:.0%} of batches (r_max = {r_max:g}), d clipped in "
                 "{d_clip:.0%} (d_max = {d_max:g}).").format(
            n=batch_size, median=np.median(r), low=np.percentile(r, 5), high=np.percentile(r, 95),
            r_clip=r_clip, r_max=r_max, d_clip=d_clip, d_max=d_max)

    controls = dict(
        batch_size=widgets.SelectionSlider(options=list(sizes), value=sizes[0], description=_("batch N")),
        r_max=widgets.FloatSlider(value=3.0, min=1.0, max=5.0, step=0.5, description="r_max"),
        d_max=widgets.FloatSlider(value=5.0, min=0.0, max=5.0, step=0.5, description="d_max"),
    )
    return Dashboard(fig, update, animated=[r_hist, d_hist, *r_lines, *d_lines, title], **controls)


def renorm_figure(result):
    """Left: test accuracy of BN and batch renorm at the small batch sizes, in eval mode (running
    averages) and with batch statistics. Right: their training loss at the end of training (the
    mean over the last quarter of each run's steps: the same number of images at every N)."""
    sizes = sorted(result.renorm_acc)
    fig, (ax_acc, ax_loss) = plots.new_figure(1, 2, plots.MAX_WIDTH, 3.6, (0.08, 0.98, 0.15, 0.86, 0.3, 0))
    pos = np.arange(len(sizes))
    bars = [("batch", "eval", _("BN, eval mode"), None), ("batch", "batch", _("BN, batch statistics"), "//"),
            ("renorm", "eval", _("BRN, eval mode"), None), ("renorm", "batch", _("BRN, batch statistics"), "//")]
    width = 0.2
    for i, (kind, mode, label, hatch) in enumerate(bars):
        vals = [result.acc(kind, b) if mode == "eval" else result.batch_acc[kind][b] for b in sizes]
        ax_acc.bar(pos + (i - 1.5) * width, vals, width, color=COLOR[kind], hatch=hatch, edgecolor="white",
                   label=label)
    ax_acc.set_xticks(pos, [f"N = {b}" for b in sizes])
    ax_acc.set(ylim=(0, 1), ylabel=_("test accuracy"), xlabel=_("batch size in training"),
               title=_("Test accuracy: eval mode vs batch statistics"))
    ax_acc.legend(loc="upper left", fontsize=7, ncol=2)
    for i, kind in enumerate(("batch", "renorm")):
        vals = [result.final_loss[kind][b] for b in sizes]
        ax_loss.bar(pos + (i - 0.5) * 0.35, vals, 0.35, color=COLOR[kind], label=name(kind))
    ax_loss.set_xticks(pos, [f"N = {b}" for b in sizes])
    ax_loss.set(ylabel=_("training loss\n(mean over the last quarter of the run)"),
                xlabel=_("batch size in training"), title=_("Training loss at the end"))
    ax_loss.legend(loc="upper right", fontsize=8)
    return fig


# ---------------------------------------------------------------- exercises
EXERCISE_SHAPE = (16, 32, 14, 14)             # exercise 1: N, C, H, W
EXERCISE_GROUPS = 8


def check_counts(answer, shape=EXERCISE_SHAPE, groups=EXERCISE_GROUPS):
    """Exercise 1: for GroupNorm on x of `shape` with `groups` groups, the pair
    (values averaged by one statistic, number of statistics)."""
    N, C, H, W = shape
    expected = np.array(counts("group", shape, groups))
    check(answer, expected, _("exercise 1 — GroupNorm: values per statistic, number of statistics"),
          wrong=[(np.array([C * H * W, N]), _("that is LayerNorm: all C channels of a sample. GroupNorm "
                                              "averages only the C/G channels of one group")),
                 (np.array([N * H * W, C]), _("that is BatchNorm (one statistic per channel, over the batch)")),
                 (np.array([H * W, N * C]), _("that is InstanceNorm (one channel at a time)")),
                 (np.array([groups * H * W, N * groups]), _("a group holds C/G channels, not G channels")),
                 (np.array([groups * H * W, N * C // groups]), _("a group holds C/G channels, not G channels; "
                                                                 "there are N·G statistics"))],
          rtol=0, atol=0)


def exercise_x(seed=8):
    """Exercise 2's input: x of shape (2, 6, 2, 2), float64."""
    return random_picture_x((2, 6, 2, 2), seed=seed)


def check_groupnorm(answer, groups=3, eps=1e-5):
    """Exercise 2: GroupNorm's x̂ for `exercise_x()` with `groups` groups (γ = 1, β = 0)."""
    x = exercise_x()
    N, C = x.shape[:2]
    if answer is not None and answer is not Ellipsis and not isinstance(answer, (str, bytes)) \
            and np.size(answer) == x.size and np.shape(answer) != x.shape:
        raise NotYet(_("exercise 2 — GroupNorm with G = {groups} by hand: not yet — your answer has the right "
                       "number of values but the shape {shape}; reshape it back to {expected} "
                       "(for example with .reshape(x.shape))").format(groups=groups, shape=np.shape(answer),
                                                                      expected=x.shape))
    expected = bnlib_forward(x, "group", groups, eps)
    wrong_order = x.reshape(N, C // groups, groups, *x.shape[2:])        # groups interleaved: c % G
    mu = wrong_order.mean(axis=(1, 3, 4), keepdims=True)
    interleaved = ((wrong_order - mu) / np.sqrt(wrong_order.var(axis=(1, 3, 4), keepdims=True) + eps)).reshape(x.shape)
    xg = x.reshape(N, groups, C // groups, *x.shape[2:])
    ddof1 = ((xg - xg.mean(axis=(2, 3, 4), keepdims=True))
             / np.sqrt(xg.var(axis=(2, 3, 4), ddof=1, keepdims=True) + eps)).reshape(x.shape)
    centered = xg - xg.mean(axis=(2, 3, 4), keepdims=True)
    var = xg.var(axis=(2, 3, 4), keepdims=True)
    no_sqrt = (centered / (var + eps)).reshape(x.shape)
    no_eps = (centered / np.sqrt(var)).reshape(x.shape)
    eps_outside = (centered / (np.sqrt(var) + eps)).reshape(x.shape)
    eps_hint = _("put ε inside the square root: divide by √(σ² + ε) with ε = 1e-5")
    check(answer, expected, _("exercise 2 — GroupNorm with G = {groups} by hand").format(groups=groups),
          wrong=[(bnlib_forward(x, "layer", eps=eps), _("that is LayerNorm (one group of all 6 channels); "
                                                        "split the channels into G = {groups} groups")
                  .format(groups=groups)),
                 (bnlib_forward(x, "instance", eps=eps), _("that is InstanceNorm (each channel alone); "
                                                           "a group holds C/G = {size} channels")
                  .format(size=C // groups)),
                 (bnlib_forward(x, "batch", eps=eps), _("that is BatchNorm (averages over the batch axis); "
                                                        "GroupNorm works inside each sample")),
                 (interleaved, _("your groups take every G-th channel. Reshape (N, C, H, W) to "
                                 "(N, G, C/G, H, W): a group is C/G neighboring channels")),
                 (ddof1, _("you divided by K − 1 in the variance (ddof=1); divide by K, the number of "
                           "values in the group, as every member of the family does")),
                 (no_sqrt, _("divide by the square root √(σ² + ε), not by σ² + ε")),
                 (no_eps, eps_hint), (eps_outside, eps_hint)],
          rtol=1e-6, atol=1e-8)


RD_BATCH = np.array([2.0, 4.0, 9.0, 5.0])     # exercise 3: one unit's values in a batch of 4
RD_RUNNING = (-1.0, 1.0)                      # running mean, running variance
RD_LIMITS = (3.0, 5.0)                        # r_max, d_max


def renorm_rd(batch=RD_BATCH, running=RD_RUNNING, limits=RD_LIMITS, eps=1e-5):
    """Batch renorm's r and d for one unit (as bnlib.BatchRenorm computes them)."""
    sigma_b = np.sqrt(batch.var() + eps)
    sigma = np.sqrt(running[1] + eps)
    r_max, d_max = limits
    return np.array([np.clip(sigma_b / sigma, 1 / r_max, r_max),
                     np.clip((batch.mean() - running[0]) / sigma, -d_max, d_max)])


def check_renorm(answer, eps=1e-5):
    """Exercise 3: the pair (r, d) for RD_BATCH with running statistics RD_RUNNING, limits RD_LIMITS."""
    x = RD_BATCH
    mu, var = RD_RUNNING
    sigma, sigma_b = np.sqrt(var + eps), np.sqrt(x.var() + eps)
    r, d = renorm_rd(eps=eps)
    d_raw = (x.mean() - mu) / sigma
    check(answer, np.array([r, d]), _("exercise 3 — batch renorm's r and d"),
          wrong=[(np.array([r, d_raw]), _("d = {d:.1f} is outside [−d_max, d_max]: clip it to d_max = 5")
                  .format(d=d_raw)),
                 (np.array([sigma / sigma_b, d]),
                  _("r is σ_B / σ_run (batch over running), not the other way round")),
                 (np.array([np.sqrt(x.var(ddof=1) + eps) / sigma, d]),
                  _("σ_B divides by N = 4 (the biased batch variance), not by N − 1")),
                 (np.array([r, np.clip((x.mean() - mu) / sigma_b, -5, 5)]),
                  _("d divides by the running σ_run, not by the batch σ_B")),
                 (np.array([x.var() / var, d]),
                  _("r compares standard deviations, not variances: take square roots"))],
          rtol=1e-4, atol=1e-6)
