"""Lesson 10 — batch normalization in convolutional networks, trained on MNIST-5k.

    image = convolution.digit(data)                   # one 28×28 test digit
    convolution.filter_dashboard(image).show()        # one 3×3 filter sliding over it
    u = convolution.feature_batch(data)               # a first conv layer's output (4, 8, 28, 28)
    convolution.channel_dashboard(u).show()           # which values share one μ, σ² (BN per channel, …)
    runs = convolution.with_and_without(data)         # {"plain", "bn"}: the CNN without / with BN
    convolution.training_figure(runs)                 # test accuracy, per-stage percentile bands
    one = convolution.batch_of_one(data)              # BN trained with batches of ONE image
    norms = convolution.family_runs(data, reuse=…)    # BN, LN, GN, IN at N = 32; BN, GN at N = 2
    grid = convolution.contrast_grid(nets, data)      # accuracy under changed contrast/brightness
    convolution.contrast_dashboard(grid, data).show() # the slider over that grid
    convolution.faded_task(data)                      # a task where contrast IS the label

Notation (as in the notebook). Images x: (N, C, H, W) — N images in the batch, C channels,
H × W positions. The network is bnlib.CNN(channels=(1, 8, 16)): two stages of
conv 3×3 (padding 1) → norm → ReLU → max-pool 2, then a Linear layer to the 10 classes.
The norms differ in which values share one mean μ and variance σ²:
    BatchNorm (per channel)   channel c of every image, every position    N·H·W values, C statistics
    per activation            position (c, h, w) of every image           N values, C·H·W statistics
                              (BN of an MLP on flattened images: not what the BN paper does for
                              convolutions, §3.2)
    LayerNorm                 every value of image n                      C·H·W values, N statistics
    InstanceNorm              channel c of image n                        H·W values, N·C statistics
    GroupNorm (G groups)      group g of image n                          (C/G)·H·W values, N·G statistics
"""
from dataclasses import dataclass, field

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from .. import plots
from ..checks import check
from ..conv import conv2d_forward
from ..data import Dataset
from ..i18n import N_, _, columns, pad
from ..layers import BatchNorm, InstanceNorm
from ..model import CNN, MLP
from ..norm import batchnorm_forward
from ..train import train
from ..widgets import Dashboard
from . import family

CHANNELS = (1, 8, 16)          # the CNN of this lesson: 1 input channel, stages of 8 and 16 channels
GROUPS = 4                     # GroupNorm's G in the CNN (2 and 4 channels per group)
BATCH = 32                     # the usual batch size of this lesson
LR = 0.1                       # learning rate at batch size 32 (scaled as N/32 for other N)
IMAGES = 2048                  # training images every run sees (half of the 4,000): 64 steps at N = 32
TEST_IMAGES = 300              # test images every measurement uses (the first 300)
RECORD_EVERY = 8               # steps between records of the with/without-BN runs
PROBE = 32                     # test images whose per-stage statistics each record keeps
EVAL_IMAGES = 50               # training images for bnlib.train's train accuracy (not used here: kept small)
SMALL = 2                      # the small batch size of the family comparison
LEGEND = 8                     # legend font size (points)

NAMES = {None: N_("without normalization"), "batch": N_("BatchNorm"), "layer": N_("LayerNorm"),
         "group": N_("GroupNorm"), "instance": N_("InstanceNorm"), "activation": N_("per activation")}
COLOR = {None: plots.COLORS["plain"], "batch": plots.COLORS["bn"], "layer": plots.COLORS["layer"],
         "group": plots.COLORS["group"], "instance": plots.COLORS["instance"], "activation": plots.COLORS["grey"]}


def name(kind):
    """The learner-facing name of a norm ("BatchNorm", …, in the current language)."""
    return _(NAMES[kind])


def test_subset(data, n=TEST_IMAGES):
    """The same data with only its first `n` test images (what every measurement here uses)."""
    return Dataset(data.x_train, data.y_train, data.x_test[:n], data.y_test[:n], data.name, data.image_shape)


# ---------------------------------------------------------------- 1. what a convolution computes
FILTERS = {
    "vertical": np.array([[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]]),
    "horizontal": np.array([[-1.0, -1.0, -1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]),
    "blur": np.full((3, 3), 1.0 / 9.0),
}
FILTER_NAMES = {"vertical": N_("vertical edges"), "horizontal": N_("horizontal edges"), "blur": N_("blur")}


def digit(data, index=0):
    """Test image `index` as a 28×28 float array (pixels 0 … 1)."""
    return np.asarray(data.x_test[index, 0], dtype=np.float64)


def convolve_by_hand(image, w, b=0.0):
    """y[i, j] = b + Σ_u Σ_v w[u, v] · x_pad[i + u, j + v] for a 2-D image and a 3×3 filter, padding 1.

    Written as nine shifted copies of the image, each times one weight: a route independent of
    bnlib's im2col. Output: the image's shape.
    """
    H, W = image.shape
    padded = np.zeros((H + 2, W + 2))
    padded[1:-1, 1:-1] = image
    y = np.full((H, W), float(b))
    for u in range(3):                       # the nine offsets of the filter, not the positions
        for v in range(3):
            y += w[u, v] * padded[u:u + H, v:v + W]
    return y


def bnlib_conv(image, w, b=0.0):
    """The same output from bnlib.conv2d_forward (one image, one channel, one filter)."""
    y, _cache = conv2d_forward(image[None, None], w[None, None], np.array([b]), stride=1, padding=1)
    return y[0, 0]


def window(image, row, col):
    """The 3×3 input values output (row, col) reads (zeros outside the image: padding 1)."""
    padded = np.pad(image, 1)
    return padded[row:row + 3, col:col + 3]


def filter_dashboard(image):
    """One 3×3 filter sliding over a digit. Left: the digit and the window of output (row, col).
    Middle: the nine input values of that window and the weight each is multiplied by. Right:
    the filter's whole output (the feature map), the chosen position marked. Choose the filter
    and the position; the summary gives y at that position, by hand and from bnlib."""
    outputs = {k: bnlib_conv(image, w) for k, w in FILTERS.items()}
    limits = {k: max(float(np.abs(y).max()), 1e-9) for k, y in outputs.items()}
    H, W = image.shape
    # three square panels and a colour bar, placed in inches (fixed margins: the dashboard blits)
    width, height, size, bottom = plots.MAX_WIDTH, 3.3, 2.1, 0.42

    def box_at(left, across=size):
        return [left / width, bottom / height, across / width, size / height]
    fig, ax_in = plots.new_figure(1, 1, width, height, (0, 1, 0, 1, 0, 0))
    ax_in.set_position(box_at(0.4))
    ax_mid, ax_out, ax_bar = fig.add_axes(box_at(2.8)), fig.add_axes(box_at(5.4)), fig.add_axes(box_at(7.6, 0.12))
    ax_in.imshow(image, cmap="gray_r", vmin=0, vmax=1)
    box = Rectangle((-1.5, -1.5), 3, 3, fill=False, edgecolor=plots.COLORS["plain"], lw=2)
    ax_in.add_patch(box)
    ax_in.set_title(_("the digit ({h}×{w} pixels)\nand the 3×3 window").format(h=H, w=W), fontsize=9)
    mid = ax_mid.imshow(np.zeros((3, 3)), cmap="gray_r", vmin=0, vmax=1)
    texts = [[ax_mid.text(v, u, "", ha="center", va="center", fontsize=9) for v in range(3)] for u in range(3)]
    ax_mid.set_xticks([])
    ax_mid.set_yticks([])
    mid_title = ax_mid.set_title("", fontsize=9)
    out = ax_out.imshow(outputs["vertical"] / limits["vertical"], cmap="RdBu_r", vmin=-1, vmax=1)
    (marker,) = ax_out.plot([0], [0], "s", ms=9, mfc="none", mec=plots.COLORS["black"], mew=1.5)
    ax_out.set_title(_("the output:\none value y per position"), fontsize=9)
    for ax in (ax_in, ax_out):
        ax.set_xticks([0, W - 1])
        ax.set_yticks([0, H - 1])
        ax.set_xlabel(_("column"), fontsize=8, labelpad=-6)
        ax.set_ylabel(_("row"), fontsize=8, labelpad=-8)
    # the colour bar: each filter's output divided by its largest |y|, so one fixed bar serves every
    # filter (nothing of it is redrawn when the filter changes; the summary gives y itself)
    ax_bar.imshow(np.linspace(1, -1, 256)[:, None], cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto",
                  extent=(0, 1, -1, 1))
    ax_bar.set_xticks([])
    ax_bar.set_yticks([-1, 0, 1])
    ax_bar.yaxis.tick_right()
    ax_bar.yaxis.set_label_position("right")
    ax_bar.set_ylabel("y / max|y|", fontsize=8, labelpad=2)
    ax_bar.tick_params(labelsize=8)
    title = fig.suptitle("")

    def update(kind, row, col):
        w = FILTERS[kind]
        win = window(image, row, col)
        by_hand = float(np.sum(win * w))
        box.set_xy((col - 1.5, row - 1.5))
        mid.set_data(win)
        for u in range(3):
            for v in range(3):
                texts[u][v].set_text(f"{win[u, v]:.2f}\n×{w[u, v]:+.2g}")
                texts[u][v].set_color("white" if win[u, v] > 0.5 else plots.COLORS["black"])
        mid_title.set_text(_("y = Σ w·x = {y:+.2f}").format(y=by_hand))
        out.set_data(outputs[kind] / limits[kind])        # colours: y / max|y|, the colour bar's scale
        marker.set_data([col], [row])
        title.set_text(_("filter “{filter}”: output at row {row}, column {col}").format(
            filter=_(FILTER_NAMES[kind]), row=row, col=col))
        return _("“{filter}” at row {row}, column {col}: y = sum of the 9 products = {y:+.3f}; "
                 "bnlib.conv2d_forward gives {z:+.3f}").format(
            filter=_(FILTER_NAMES[kind]), row=row, col=col, y=by_hand, z=outputs[kind][row, col])

    controls = dict(
        kind=widgets.ToggleButtons(options=[(_(FILTER_NAMES[k]), k) for k in FILTERS], value="vertical",
                                   description=_("filter")),
        row=widgets.IntSlider(value=H // 2, min=0, max=H - 1, description=_("row")),
        col=widgets.IntSlider(value=W // 4, min=0, max=W - 1, description=_("column")),   # on a stroke's edge
    )
    animated = [box, mid, mid_title, out, marker, title] + [t for line in texts for t in line]
    return Dashboard(fig, update, animated=animated, **controls)


# ---------------------------------------------------------------- 2. which values share μ and σ²
SET_KINDS = ("batch", "activation", "layer", "instance", "group")


def feature_batch(data, images=4, seed=0):
    """What the first BN of the CNN normalises: the first conv layer's output u for the first
    `images` test digits, from a freshly initialized CNN (He initialization, seed): (N, 8, 28, 28),
    float64."""
    conv = CNN(CHANNELS, seed=seed, dtype=np.float64).layers[0]
    return conv.forward(np.asarray(data.x_test[:images], dtype=np.float64))


def statistic_set(kind, n, c, h, w, shape, groups=GROUPS):
    """Boolean mask of x's shape (N, C, H, W): the values that share one μ and σ² with x[n, c, h, w]."""
    if kind == "activation":
        mask = np.zeros(shape, dtype=bool)
        mask[:, c, h, w] = True                   # the same position in every image of the batch
        return mask
    return np.array(family.statistic_set(kind, n, c, shape, groups))


def counts(kind, shape, groups=GROUPS):
    """(values per statistic, number of statistics) for x of `shape`."""
    N, C, H, W = shape
    if kind == "activation":
        return N, C * H * W
    return family.counts(kind, shape, groups)


def count_formula(kind, shape, groups=GROUPS):
    """The two counts written out, e.g. ('N·H·W = 4·28·28 = 3136', 'C = 8')."""
    N, C, H, W = shape
    m, k = counts(kind, shape, groups)
    if kind == "activation":
        return f"N = {N}", f"C·H·W = {C}·{H}·{W} = {k}"
    return family.count_formula(kind, shape, groups)


def set_description(kind, c, h, w, channels, groups=GROUPS):
    """In words: which values form the set of x[n, c, h, w] (x with `channels` channels)."""
    if kind == "batch":
        return _("channel {c} of every image, at every position").format(c=c)
    if kind == "activation":
        return _("position (row {h}, column {w}) of channel {c}, in every image").format(h=h, w=w, c=c)
    if kind == "layer":
        return _("every channel and position of this image")
    if kind == "instance":
        return _("channel {c} of this image, at every position").format(c=c)
    size = channels // groups
    return _("channels {first}–{last} (one group) of this image, at every position").format(
        first=c - c % size, last=c - c % size + size - 1)


def _mosaic_index(shape, gap=2):
    """Row and column of every value of x (N, C, H, W) in the mosaic picture (rows: images,
    columns: channels, `gap` pixels between maps): two int arrays of shape (N, C, H, W)."""
    N, C, H, W = shape
    n, c, h, w = np.indices(shape)
    return n * (H + gap) + h, c * (W + gap) + w


def channel_dashboard(u, groups=GROUPS):
    """The N × C feature maps of u (rows: images n, columns: channels c); choose a norm and a value
    x[n, c, h, w] (the ×): the values that share its μ and σ² light up. Notebook 08's axes picture,
    with real 28 × 28 maps instead of 3 × 3 blocks, plus "per activation". The summary counts the
    values and gives μ and σ² of the highlighted set."""
    N, C, H, W = u.shape
    gap = 2
    rows, cols = _mosaic_index(u.shape, gap)
    size = np.abs(u)
    grey = size / np.maximum(size.max(axis=(0, 2, 3), keepdims=True), 1e-12)   # |u|, scaled per channel (display only)
    base = np.ones((N * (H + gap) - gap, C * (W + gap) - gap, 3))
    base[rows, cols] = 1.0 - grey[..., None]                       # dark = large
    faded = 0.35 * base + 0.65
    fig, ax = plots.new_figure(1, 1, plots.MAX_WIDTH, 4.7, (0.1, 0.99, 0.2, 0.91, 0, 0))
    image = ax.imshow(base, interpolation="nearest")
    (rings,) = ax.plot([], [], "o", ms=9, mfc="none", mec=plots.COLORS["black"], mew=1.2,
                       label=_("a set too small to see: circled"))
    (marker,) = ax.plot([0], [0], "x", ms=9, mew=2, color=plots.COLORS["black"], label=_("the chosen value"))
    ax.set_xticks(np.arange(C) * (W + gap) + W / 2, [f"c={i}" for i in range(C)])
    ax.set_yticks(np.arange(N) * (H + gap) + H / 2, [f"n={i}" for i in range(N)])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_xlabel(_("channel c (each map: the H×W = {h}×{w} values of one channel of one image)").format(h=H, w=W))
    ax.set_ylabel(_("image n in the batch"))
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.12), fontsize=LEGEND, frameon=False, ncol=2)
    title = ax.set_title("", fontsize=10)

    def update(kind, n, c, h, w):
        mask = statistic_set(kind, n, c, h, w, u.shape, groups)
        picture = faded.copy()
        tint = np.array(plt.matplotlib.colors.to_rgb(COLOR[kind] if kind != "activation" else plots.COLORS["plain"]))
        picture[rows[mask], cols[mask]] = 0.45 * base[rows[mask], cols[mask]] + 0.55 * tint
        image.set_data(picture)
        small = mask.sum() <= N
        rings.set_data((cols[mask], rows[mask]) if small else ([], []))
        marker.set_data([cols[n, c, h, w]], [rows[n, c, h, w]])
        title.set_text(_("{norm}: the colored values share one μ and one σ²").format(norm=name(kind)))
        per, how_many = count_formula(kind, u.shape, groups)
        values = u[mask]
        return _("{norm}: the value at n = {n}, c = {c}, row {h}, column {w} shares μ and σ² with {set} — "
                 "{per} values; there are {stats} such statistics. This set: μ = {mu:+.3f}, σ² = {var:.3f}.").format(
            norm=name(kind), n=n, c=c, h=h, w=w, set=set_description(kind, c, h, w, C, groups), per=per,
            stats=how_many, mu=values.mean(), var=values.var())

    controls = dict(
        kind=widgets.ToggleButtons(options=[(name(k), k) for k in SET_KINDS], value="batch", description=_("norm")),
        n=widgets.IntSlider(value=0, min=0, max=N - 1, description=_("image n")),
        c=widgets.IntSlider(value=0, min=0, max=C - 1, description=_("channel c")),
        h=widgets.IntSlider(value=H // 2, min=0, max=H - 1, description=_("row h")),
        w=widgets.IntSlider(value=W // 2, min=0, max=W - 1, description=_("column w")),
    )
    for control in controls.values():
        control.style.description_width = "70px"
    return Dashboard(fig, update, animated=[image, rings, marker, title], **controls)


def compare_with_batchnorm(u):
    """bnlib.BatchNorm on u against the picture's sets, channel by channel: the largest difference
    between the layer's μ_c, σ²_c and the mean and (biased) variance of the highlighted values,
    and the size of every set. Returns dict(mean_diff, var_diff, sizes)."""
    bn = BatchNorm(u.shape[1], dtype=np.float64)
    bn.forward(u)
    mean_diff, var_diff, sizes = 0.0, 0.0, []
    for c in range(u.shape[1]):                  # one check per channel: the picture's sets
        values = u[statistic_set("batch", 0, c, 0, 0, u.shape)]
        sizes.append(values.size)
        mean_diff = max(mean_diff, abs(bn.cache.mean.ravel()[c] - values.mean()))
        var_diff = max(var_diff, abs(bn.cache.var.ravel()[c] - values.var()))
    return dict(mean_diff=float(mean_diff), var_diff=float(var_diff), sizes=sizes)


# ---------------------------------------------------------------- 3. with and without BN
def network(kind, seed=0):
    """The lesson's CNN (1 → 8 → 16 channels, ReLU, He initialization) with norm `kind`."""
    return CNN(CHANNELS, norm=kind, groups=GROUPS, seed=seed)


def learning_rate(batch_size, lr_at_32=LR):
    """lr = lr_at_32 · N/32: the linear scaling rule (notebook 08) for batch size N."""
    return lr_at_32 * batch_size / 32


@dataclass
class Run:
    """A training run measured only at its end: what `run` returns without records."""
    network: object
    loss: np.ndarray               # training loss of every step
    final_test_acc: float          # eval mode, first TEST_IMAGES test images


def run(kind, data, batch_size=BATCH, images=IMAGES, record_every=None, seed=0):
    """Train the CNN with norm `kind` on `images` training images (steps = images // N) at the
    scaled learning rate; test accuracy on the first TEST_IMAGES test images.

    With `record_every`, bnlib.train records every that many steps and the History keeps its
    network as `.network`. Without, the same SGD steps run unrecorded (family.fit: the same
    batches in the same order, so the same network — records never change training) and a `Run`
    holds the network, the losses and the final test accuracy: two records fewer per run."""
    steps = images // batch_size
    net = network(kind, seed)
    if record_every is None:
        losses = family.fit(net, data, batch_size, steps, learning_rate(batch_size), seed)
        acc = float(np.mean(net.predict(data.x_test[:TEST_IMAGES]) == data.y_test[:TEST_IMAGES]))
        net.predict(data.x_test[:1])      # layers keep their last input for backward: 1 image, not 100 (~15 MB)
        return Run(net, losses, acc)
    h = train(net, test_subset(data), steps=steps, batch_size=batch_size, lr=learning_rate(batch_size),
              record_every=record_every, seed=seed, probe_size=PROBE, eval_size=EVAL_IMAGES, progress=False)
    h.network = net
    return h


def with_and_without(data, images=IMAGES, seed=0):
    """The CNN without ("plain") and with BN, N = 32, learning rate 0.1, 64 steps, a record every
    8 steps (test accuracy; per stage, percentiles of each channel's input to the ReLU)."""
    return {"plain": run(None, data, images=images, record_every=RECORD_EVERY, seed=seed),
            "bn": run("batch", data, images=images, record_every=RECORD_EVERY, seed=seed)}


def band_numbers(history, stage, channel=0):
    """The 15th–85th percentile band of one channel's input to the ReLU, over training:
    width at the start, largest and smallest width relative to it, range of the median."""
    p = history.layers[stage].pre.unit_percentiles[:, channel, :]
    width = p[:, 2] - p[:, 0]
    return dict(width_start=float(width[0]), grow=float(width.max() / width[0]),
                shrink=float(width.min() / width[0]), median_range=float(np.ptp(p[:, 1])))


def width_changes(history, stage):
    """For every channel of a stage: largest / smallest band width over training (≥ 1)."""
    p = history.layers[stage].pre.unit_percentiles
    width = p[:, :, 2] - p[:, :, 0]
    return width.max(axis=0) / width.min(axis=0)


def training_figure(runs, channel=0):
    """(a) test accuracy of both networks, across the top; below it, (b) without BN and (c) with
    BN on one y axis: the 15th–85th percentile band and median of channel `channel`'s input to the
    ReLU, in both stages."""
    # (a) across the top; (b) and (c) side by side below, on one y axis (three in a row: too narrow)
    fig, axes = plots.new_figure(2, 2, plots.MAX_WIDTH, 5.8, height_ratios=[1, 1.35])
    grid = axes[0, 0].get_gridspec()
    for ax in axes[0]:
        ax.remove()
    ax_acc = fig.add_subplot(grid[0, :])
    ax_plain, ax_bn = axes[1]
    ax_bn.sharey(ax_plain)
    ax_bn.tick_params(labelleft=False)
    for kind, label in (("plain", NAMES[None]), ("bn", NAMES["batch"])):
        h = runs[kind]
        ax_acc.plot(h.record_steps, h.test_acc, "o-", ms=3, color=plots.COLORS[kind], label=_(label))
    ax_acc.axhline(0.1, color=plots.COLORS["grey"], ls=":", label=_("chance (10 classes)"))
    ax_acc.set(xlabel=_("training step"), ylabel=_("test accuracy"), ylim=(0, 1), title=_("(a) test accuracy"))
    ax_acc.legend(loc="lower right", fontsize=LEGEND)
    low, high = np.inf, -np.inf
    for ax, kind, panel in ((ax_plain, "plain", _("(b) without BN")), (ax_bn, "bn", _("(c) with BN"))):
        h = runs[kind]
        for stage, color in ((0, plots.COLORS["grey"]), (1, plots.COLORS[kind])):
            plots.percentile_bands(ax, h, layer=stage, unit=channel, color=color,
                                   label=_("stage {stage}").format(stage=stage + 1))
            p = h.layers[stage].pre.unit_percentiles[:, channel, :]
            low, high = min(low, p.min()), max(high, p.max())
        ax.set_title(panel)
        ax.set_ylabel("")
        ax.legend(loc="upper left", fontsize=LEGEND)
    ax_plain.set_ylabel(_("input to the ReLU (channel {c})").format(c=channel))
    span = high - low
    ax_plain.set_ylim(low - 0.1 * span, high + 0.8 * span)   # shared by (b) and (c); the top 40 %: the legends
    fig.suptitle(_("The CNN (1 → 8 → 16 channels) on MNIST-5k: N = 32, learning rate 0.1"), fontsize=10)
    return fig


# ---------------------------------------------------------------- 4. batch size 1
def mlp_batch_of_one(data):
    """Notebook 05's attempt, repeated: the MLP with BN trained with batch size 1. Returns the
    ValueError's message (or None if, against expectations, it trained)."""
    net = MLP([784, 100, 10], activation="relu", norm="batch", init="he")
    flat = Dataset(data.x_train.reshape(len(data.x_train), -1), data.y_train,
                   data.x_test[:10].reshape(10, -1), data.y_test[:10], data.name)
    try:
        train(net, flat, steps=1, batch_size=1, lr=0.01, progress=False)
    except ValueError as err:
        return str(err)
    return None


def batch_of_one(data, images=IMAGES, seed=0):
    """The CNN with BN trained with batches of ONE image (images steps, lr = 0.1/32)."""
    return run("batch", data, batch_size=1, images=images, seed=seed)


def batch_mode_accuracy(net, data, batch_size):
    """Test accuracy when each test batch of `batch_size` images is normalized with its own
    statistics (training mode, running averages untouched) — what the network met in training."""
    x, y = data.x_test[:TEST_IMAGES], data.y_test[:TEST_IMAGES]
    return family.batch_mode_accuracy(net, x, y, batch_size)


def one_image_bn_is_instance_norm(data, seed=0):
    """For one image's first-stage conv output u (1, 8, 28, 28): the largest difference between
    BatchNorm in training mode and InstanceNorm (both γ = 1, β = 0), and the values per statistic."""
    u = feature_batch(data, images=1, seed=seed)
    diff = np.abs(BatchNorm(u.shape[1], dtype=np.float64).forward(u)
                  - InstanceNorm(u.shape[1], dtype=np.float64).forward(u)).max()
    return float(diff), counts("batch", u.shape)[0]


# ---------------------------------------------------------------- 5. the family side by side
@dataclass
class FamilyRuns:
    """What `family_runs` measured: histories[(kind, N)] (a History or a Run), every run on
    `images` training images."""
    sizes: tuple
    images: int = IMAGES
    histories: dict = field(default_factory=dict)

    def acc(self, kind, batch_size):
        """Final test accuracy of `kind` at batch size N (NaN if that pair was not trained)."""
        h = self.histories.get((kind, batch_size))
        return np.nan if h is None else h.final_test_acc


FAMILY = {BATCH: ("batch", "layer", "group", "instance"), SMALL: ("batch", "group")}


def family_runs(data, plan=None, reuse=None, images=IMAGES, seed=0):
    """The GroupNorm paper's two comparisons at classroom scale. plan: {N: norms trained at batch
    size N}; by default all four norms at N = 32 (its Table 1) and BN against GN at N = 2 (its
    Table 2). Every run sees IMAGES training images with lr = 0.1 · N/32 (the paper's linear scaling;
    notebook 08's budget rule). `reuse`: {(kind, N): History} of runs already made with the same
    settings (not trained again)."""
    plan = plan or FAMILY
    result = FamilyRuns(tuple(sorted(plan)), images)
    for b in result.sizes:
        for kind in plan[b]:
            done = (reuse or {}).get((kind, b))
            result.histories[(kind, b)] = done if done is not None else run(kind, data, b, images, seed=seed)
    return result


def print_family(result):
    print(_("test accuracy after {images:,} training images (first {test} test images)").format(
        images=result.images, test=TEST_IMAGES))
    kinds = ("batch", "layer", "group", "instance")
    widths = [max(14, columns(name(k)) + 2) for k in kinds]
    print(pad(_("batch size N"), 16) + "".join(pad(name(k), w, ">") for k, w in zip(kinds, widths)))
    for b in result.sizes:
        cells = [f"{result.acc(k, b):.1%}" if (k, b) in result.histories else "—" for k in kinds]
        print(pad(str(b), 16) + "".join(pad(cell, w, ">") for cell, w in zip(cells, widths)))


def family_figure(result, one=None):
    """Final test accuracy of each norm at each batch size (bars), and BN at N = 1 if given."""
    kinds = ("batch", "layer", "group", "instance")
    fig, ax = plots.new_figure(1, 1, 8.0, 3.6)
    width = 0.8 / len(result.sizes)
    for i, b in enumerate(result.sizes):
        here = [j for j, k in enumerate(kinds) if (k, b) in result.histories]
        vals = [result.acc(kinds[j], b) for j in here]
        bars = ax.bar(np.array(here) + (i - (len(result.sizes) - 1) / 2) * width, vals, width,
                      color=[COLOR[kinds[j]] for j in here], edgecolor="white",
                      alpha=0.45 + 0.55 * i / max(1, len(result.sizes) - 1))
        ax.bar_label(bars, [f"N={b}\n{v:.0%}" for v in vals], fontsize=8, padding=2)
    if one is not None:                         # BN at N = 1, left of BN's bars
        ax.plot([-0.55], [one.final_test_acc], "D", color=COLOR["batch"], label=_("BatchNorm, N = 1"))
        ax.annotate(f"N=1\n{one.final_test_acc:.0%}", (-0.55, one.final_test_acc), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=8)
        ax.legend(loc="upper left", fontsize=LEGEND)     # above the bars (lower left: on BN's bar)
    ax.set_xticks(np.arange(len(kinds)), [name(k) for k in kinds])
    ax.set_yticks(np.arange(0, 1.01, 0.2))
    ax.set(ylim=(0, 1.25), ylabel=_("test accuracy"),
           title=_("Every run: {images:,} training images, lr = 0.1·N/32 (light bars: N = {small}, dark: N = {big})")
           .format(images=result.images, small=result.sizes[0], big=result.sizes[-1]))
    ax.title.set_fontsize(9)
    return fig


# ---------------------------------------------------------------- 6. InstanceNorm and contrast
CONTRASTS = (0.25, 0.5, 1.0, 2.0, 4.0)      # x → a·x + b: contrast a (log-spaced) …
BRIGHTNESS = (-0.4, -0.2, 0.0, 0.2, 0.4)    # … and brightness b
SHOWN = 6                                   # test digits shown in the contrast dashboard
GRID_IMAGES = 200                           # test images behind each point of the contrast grid


def changed(x, a, b):
    """The images with contrast a and brightness b: a·x + b (no clipping to 0 … 1)."""
    return (a * x + b).astype(x.dtype)


def accuracy_under(net, data, a, b, images=GRID_IMAGES):
    """Test accuracy (eval mode) on the first `images` test images changed to a·x + b."""
    x, y = data.x_test[:images], data.y_test[:images]
    return float(np.mean(net.predict(changed(x, a, b)) == y))


def contrast_grid(nets, data):
    """{kind: accuracy array (len(CONTRASTS), len(BRIGHTNESS))} for each trained network."""
    return {kind: np.array([[accuracy_under(net, data, a, b) for b in BRIGHTNESS] for a in CONTRASTS])
            for kind, net in nets.items()}


def _tile(images, columns=3):
    """Images (k, H, W) side by side in rows of `columns` (k a multiple of `columns`), one pixel apart."""
    k, H, W = images.shape
    framed = np.full((k, H + 1, W + 1), np.nan)
    framed[:, :H, :W] = images
    rows = framed.reshape(k // columns, columns, H + 1, W + 1).transpose(0, 2, 1, 3)
    return rows.reshape((k // columns) * (H + 1), columns * (W + 1))[:-1, :-1]


def contrast_dashboard(grid, data):
    """Sliders for contrast a and brightness b of the test digits. Left: six test digits as the
    networks see them. Middle: test accuracy against contrast (at the chosen brightness). Right:
    against brightness (at the chosen contrast). One line per network in `grid`."""
    x = data.x_test[:SHOWN, 0]
    tiles = {(a, b): _tile(changed(x, a, b)) for a in CONTRASTS for b in BRIGHTNESS}   # every picture, once
    # one row, placed in inches (fixed margins: the dashboard blits); the two plots share one y axis
    width, height, bottom, tall = plots.MAX_WIDTH, 3.5, 0.85, 2.1

    def box_at(left, across, high=tall):
        return [left / width, bottom / height, across / width, high / height]
    fig, ax_img = plots.new_figure(1, 1, width, height, (0, 1, 0, 1, 0, 0))
    ax_img.set_position(box_at(0.1, 2.2))
    ax_a = fig.add_axes(box_at(3.0, 2.35))
    ax_b = fig.add_axes(box_at(5.55, 2.35), sharey=ax_a)
    strip = ax_img.imshow(tiles[(1.0, 0.0)], cmap="gray_r", vmin=-0.5, vmax=2.0)
    ax_img.set_xticks([])
    ax_img.set_yticks([])
    ax_img.set_title(_("test digits a·x + b\n(grey scale from −0.5 to 2)"), fontsize=9)
    lines, marks = {}, {}
    for kind in grid:
        (line_a,) = ax_a.plot(CONTRASTS, grid[kind][:, 0], "o-", color=COLOR[kind], label=name(kind))
        (mark_a,) = ax_a.plot([1], [0], "o", ms=12, mfc="none", mec=COLOR[kind], mew=2)
        (line_b,) = ax_b.plot(BRIGHTNESS, grid[kind][0], "o-", color=COLOR[kind])
        (mark_b,) = ax_b.plot([0], [0], "o", ms=12, mfc="none", mec=COLOR[kind], mew=2)
        lines[kind], marks[kind] = (line_a, line_b), (mark_a, mark_b)
    ax_a.set_xscale("log")
    ax_a.set_xticks(CONTRASTS, [f"{a:g}" for a in CONTRASTS])
    ax_a.minorticks_off()
    ax_a.set(xlabel=_("contrast a (log scale)"), ylabel=_("test accuracy"), ylim=(0, 1),
             title=_("changing the contrast"))
    ax_b.set(xlabel=_("brightness b"), title=_("changing the brightness"))
    ax_b.tick_params(labelleft=False)
    for ax in (ax_a, ax_b):
        ax.axhline(0.1, color=plots.COLORS["grey"], ls=":", lw=1)
        ax.title.set_fontsize(9)
    fig.legend(*ax_a.get_legend_handles_labels(), loc="lower center", bbox_to_anchor=((3.0 + 7.9) / 2 / width, 0.0),
               ncol=len(grid), fontsize=LEGEND, frameon=False)
    title = fig.suptitle("")

    def update(a, b):
        i, j = CONTRASTS.index(a), BRIGHTNESS.index(b)
        strip.set_data(tiles[(a, b)])
        for kind, acc in grid.items():
            lines[kind][0].set_ydata(acc[:, j])
            lines[kind][1].set_ydata(acc[i])
            marks[kind][0].set_data([a], [acc[i, j]])
            marks[kind][1].set_data([b], [acc[i, j]])
        title.set_text(_("contrast a = {a:g}, brightness b = {b:+g}").format(a=a, b=b))
        scores = _(", ").join(_("{norm} {acc:.0%}").format(norm=name(k), acc=acc[i, j]) for k, acc in grid.items())
        return _("contrast a = {a:g}, brightness b = {b:+g}: test accuracy {scores}").format(a=a, b=b, scores=scores)

    controls = dict(
        a=widgets.SelectionSlider(options=list(CONTRASTS), value=1.0, description=_("contrast a"),
                                  style={"description_width": "initial"}),     # ja: wider than the 80-px default
        b=widgets.SelectionSlider(options=list(BRIGHTNESS), value=0.0, description=_("brightness b"),
                                  style={"description_width": "initial"}),
    )
    animated = [strip, title] + [artist for pair in list(lines.values()) + list(marks.values()) for artist in pair]
    return Dashboard(fig, update, animated=animated, **controls)


FADED = 0.4                                  # the "faded" copies of the faded task: x → 0.4·x


def faded_dataset(data, seed=0):
    """A two-class task where contrast IS the label: every image is kept as it is (label 0) or
    faded to 0.4·x (label 1), by a seeded coin toss. Same digits, same split."""
    rng = np.random.default_rng(seed)

    def fade(x):
        label = rng.integers(0, 2, len(x))
        a = np.where(label == 1, FADED, 1.0).astype(x.dtype)[:, None, None, None]
        return x * a, label

    x_train, y_train = fade(data.x_train)
    x_test, y_test = fade(data.x_test[:TEST_IMAGES])
    return Dataset(x_train, y_train, x_test, y_test, "faded", data.image_shape)


def _logits(net, x):
    with net.evaluation():
        return net.forward(x)


def faded_task(data, kinds=("batch", "instance"), steps=32, seed=0):
    """Train a 2-class CNN with each norm on `faded_dataset` (N = 32, lr 0.1): {kind: test accuracy},
    and for each network the largest change of its logits between a test image and its faded copy."""
    task = faded_dataset(data, seed)
    x = data.x_test[:TEST_IMAGES]
    result = {}
    for kind in kinds:
        net = CNN(CHANNELS, classes=2, norm=kind, groups=GROUPS, seed=seed)
        family.fit(net, task, BATCH, steps, LR, seed)
        moved = max(float(np.abs(_logits(net, part) - _logits(net, FADED * part)).max())
                    for part in np.split(x, range(100, len(x), 100)))      # 100 images at a time: less memory
        result[kind] = dict(acc=float(np.mean(net.predict(task.x_test) == task.y_test)), logit_change=moved)
    return result


# ---------------------------------------------------------------- exercises
EXERCISE_SHAPE = (16, 32, 14, 14)            # exercise 1: a conv layer's output (N, C, H, W)


def check_counts(answer, shape=EXERCISE_SHAPE):
    """Exercise 1: (values averaged by one BN statistic, number of BN statistics) for x of `shape`."""
    N, C, H, W = shape
    check(answer, np.array([N * H * W, C]), _("exercise 1 — BatchNorm after a convolution: values per statistic, "
                                             "number of statistics"),
          wrong=[(np.array([N, C * H * W]), _("that is BN per activation (one statistic per position, over the N "
                                               "images). Convolutional BN shares one statistic per channel over "
                                               "all N·H·W positions")),
                 (np.array([C * H * W, N]), _("that is LayerNorm (one statistic per image)")),
                 (np.array([H * W, N * C]), _("that is InstanceNorm (one statistic per image and channel); "
                                               "BatchNorm also averages over the N images")),
                 (np.array([N * H * W, N * C]), _("the number of statistics is one per channel: C")),
                 (np.array([N, C]), _("each channel's statistic runs over the positions too: N·H·W values"))],
          rtol=0, atol=0)


def exercise_x(seed=10):
    """Exercise 2's input: x of shape (2, 3, 4, 4), float64 (each channel its own offset and scale)."""
    return family.random_picture_x((2, 3, 4, 4), seed=seed)


def check_spatial_batchnorm(answer, eps=1e-5):
    """Exercise 2: BN's x̂ for `exercise_x()` in training mode, per channel (γ = 1, β = 0)."""
    x = exercise_x()
    C = x.shape[1]
    expected = batchnorm_forward(x, np.ones(C), np.zeros(C), eps)[0]

    def over(axes, ddof=0, mode="inside"):
        mu = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True, ddof=ddof)
        if mode == "no sqrt":
            return (x - mu) / (var + eps)
        if mode == "no eps":
            return (x - mu) / np.sqrt(var)
        if mode == "outside":
            return (x - mu) / (np.sqrt(var) + eps)
        return (x - mu) / np.sqrt(var + eps)

    eps_hint = _("put ε inside the square root: divide by √(σ² + ε) with ε = 1e-5")
    check(answer, expected, _("exercise 2 — BatchNorm after a convolution, by hand"),
          wrong=[(over(0), _("you averaged over the images only (axis=0): that is one statistic per activation "
                              "(c, h, w), as an MLP's BN on flattened images. Average each channel over the images "
                              "AND the positions: axis=(0, 2, 3)")),
                 (over((0, 2)), _("average over the columns too: axis=(0, 2, 3)")),
                 (over((0, 3)), _("average over the rows too: axis=(0, 2, 3)")),
                 (over((1, 2, 3)), _("that is LayerNorm (each image over its channels and positions)")),
                 (over((2, 3)), _("that is InstanceNorm (each image and channel alone); BatchNorm also "
                                   "averages over the images: axis=(0, 2, 3)")),
                 (over((0, 1, 2, 3)), _("one mean for everything: keep the channels apart (axis 1 is not averaged)")),
                 (over((0, 2, 3), ddof=1), _("divide by N·H·W, not N·H·W − 1 (the biased variance, ddof=0)")),
                 (over((0, 2, 3), mode="no sqrt"), _("divide by the square root √(σ² + ε), not by σ² + ε")),
                 (over((0, 2, 3), mode="no eps"), eps_hint), (over((0, 2, 3), mode="outside"), eps_hint)],
          rtol=1e-6, atol=1e-8)


EXERCISE_POSITION = (9, 14)                  # exercise 3: (row, column) of the output value
EXERCISE_BIAS = 0.5


def check_conv_value(answer, image, kind="vertical", position=EXERCISE_POSITION, b=EXERCISE_BIAS):
    """Exercise 3: the output y[row, col] of the 3×3 filter FILTERS[kind] with bias b and padding 1."""
    row, col = position
    w = FILTERS[kind]
    win = window(image, row, col)
    expected = float(np.sum(win * w) + b)
    unpadded = image[row:row + 3, col:col + 3]
    check(answer, expected, _("exercise 3 — one output value of the convolution"),
          wrong=[(float(np.sum(win * w[::-1, ::-1]) + b), _("you flipped the filter (the convolution of "
                                                             "mathematics). Deep-learning libraries do not flip it: "
                                                             "multiply w[u, v] with x_pad[row + u, col + v]")),
                 (float(np.sum(win * w)), _("add the bias b")),
                 (float(np.sum(unpadded * w) + b), _("the window of output (row, col) starts one row and one "
                                                      "column earlier: pad the image with one ring of zeros first "
                                                      "(np.pad(image, 1)), then take rows row … row + 2")),
                 (float(np.sum(win * w.T) + b), _("you used the filter transposed (w.T)"))],
          rtol=1e-6, atol=1e-8)
