"""Lesson 06 — train vs inference: batch statistics, running averages, population statistics,
the momentum conventions of three libraries, and folding BN into the Linear layer before it.

    model, history, data = inference.train_bn_network()          # 784-100-100-100-10, sigmoid, BN
    probs = inference.batchmate_probabilities(model, data, 0)    # one image, eleven sets of batchmates
    inference.batchmates_dashboard(model, data, 0).show()
    stream = inference.batch_stat_stream(model, data)            # μ_B, σ²_B of many training batches
    pop = inference.population_statistics(stream)                # the BN paper's inference algorithm
    inference.running_dashboard(stream).show()                   # a momentum slider
    inference.momentum_calculator(0.99, "keras")                 # convert between conventions
    folded = inference.fold_model(model)                         # BN merged into the Linear layers
    after, _, _ = inference.train_bn_network(position="after")   # BN after each sigmoid: folds forward

Notation (the notebook's), per feature of one BN layer:
    N          the batch size (the BN paper writes m);  μ_B, σ²_B the batch mean and the biased
               batch variance (÷ N)
    α          the momentum in PyTorch's convention: the weight of the NEW batch
    running ← (1 − α) · running + α · batch statistic     (running mean starts at 0, variance at 1;
                                                           the variance update uses σ²_B · N/(N − 1))
    E[x] = mean of μ_B over many batches,  Var[x] = N/(N − 1) · mean of σ²_B    (BN paper, Alg. 2)
    eval mode:  y = γ (x − running_mean)/√(running_var + ε) + β
"""
import copy
import time
from dataclasses import dataclass
from functools import lru_cache

import ipywidgets as widgets
import numpy as np

from ..checks import check
from ..data import load_mnist5k, minibatches
from ..i18n import _, N_, pad
from ..layers import BatchNorm, Linear, fold_batchnorm
from ..model import MLP
from ..plots import COLORS, CYCLE, MAX_WIDTH, new_figure
from ..train import train
from ..widgets import Dashboard

SIZES = [784, 100, 100, 100, 10]
BATCH_SIZE = 60



def softmax(logits):
    """p = e^z / Σ e^z per row of logits (N, K)."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- the trained network
@lru_cache(maxsize=4)
def _trained(steps, lr, batch_size, seed, position):
    data = load_mnist5k()
    model = MLP(SIZES, activation="sigmoid", norm="batch", norm_position=position, seed=seed)
    history = train(model, data, steps=steps, batch_size=batch_size, lr=lr,
                    record_every=steps, seed=seed, progress=False)
    return model.eval(), history, data


def train_bn_network(steps=600, lr=0.5, batch_size=BATCH_SIZE, seed=0, position="before"):
    """The BN paper's MNIST network (784-100-100-100-10, sigmoid, BN before every sigmoid,
    momentum 0.1) trained with plain SGD on MNIST-5k; position="after" puts each BN after its
    sigmoid instead (notebook 07). Returns (model in eval mode, History, Dataset). The run is
    cached within this Python process; each call gets its own copy of the model, so changing it
    cannot change the next caller's."""
    model, history, data = _trained(steps, lr, batch_size, seed, position)
    return copy.deepcopy(model), history, data


def logits_with_batch_statistics(model, x):
    """The "forgot eval()" forward: logits for x (N, 784) normalized with x's own batch statistics."""
    with model.batch_statistics():
        return model.forward(x)


def logits_eval(model, x):
    """The correct inference forward: eval mode, running statistics only."""
    with model.evaluation():
        return model.forward(x)


def running_state(model):
    """Copies of every BN layer's (running_mean, running_var), to prove later they did not move."""
    return [(bn.running_mean.copy(), bn.running_var.copy()) for bn in model.norm_layers()]


def same_state(a, b):
    return all(np.array_equal(m1, m2) and np.array_equal(v1, v2) for (m1, v1), (m2, v2) in zip(a, b))


# --------------------------------------------------------------------------- one image, many batchmates
def batchmate_sets(data, n=BATCH_SIZE - 1, seed=0):
    """{name: (n, 784) images}: "mixed digits" (n random training images, seeded) and, for each
    digit k, "all ks" (the first n training images of digit k). The names are keys; what a
    learner reads is batchmate_label(name)."""
    rng = np.random.default_rng(seed)
    sets = {"mixed digits": data.x_train[rng.choice(len(data.x_train), n, replace=False)]}
    for k in range(10):
        sets[f"all {k}s"] = data.x_train[np.flatnonzero(data.y_train == k)[:n]]
    return sets


def batchmate_label(name):
    """The learner's name of a set of batchmates: "mixed digits", "all 0s", … in the current language."""
    if name == "mixed digits":
        return _("mixed digits")
    return _("all {digit}s").format(digit=int(name.removeprefix("all ").removesuffix("s")))


def batchmate_probabilities(model, data, index=0, n=BATCH_SIZE - 1, seed=0):
    """For test image `index`, put it first in a batch with each set of batchmates and return
    {name: {"train": p (10,), "eval": p (10,)}}: its class probabilities computed in training
    mode (batch statistics, the bug) and in eval mode (running statistics, correct)."""
    image = data.x_test[index:index + 1]
    out = {}
    for name, mates in batchmate_sets(data, n, seed).items():
        batch = np.vstack([image, mates])
        out[name] = {"train": softmax(logits_with_batch_statistics(model, batch))[0],
                     "eval": softmax(logits_eval(model, batch))[0]}
    return out


def _montage(images, rows=2, cols=4):
    """rows × cols thumbnails (28 × 28 each) in one array, for one imshow."""
    tiles = images[:rows * cols].reshape(rows, cols, 28, 28)
    return tiles.transpose(0, 2, 1, 3).reshape(rows * 28, cols * 28)


def batchmates_dashboard(model, data, index=0):
    """Choose the batchmates of one test image; see its class probabilities in training mode
    (blue bars: change) and eval mode (grey outline: never change). Precomputed: the callback
    only moves bar heights and swaps a thumbnail image."""
    probs = batchmate_probabilities(model, data, index)
    sets = batchmate_sets(data)
    label = int(data.y_test[index])
    fig, (ax_img, ax_mates, ax_bar) = new_figure(1, 3, width=MAX_WIDTH, height=3.1, margins=(0.01, 0.98, 0.15, 0.84, 0.3, 0),
                                                 gridspec_kw={"width_ratios": [1, 1.6, 3]})   # fixed: fast redraws
    ax_img.imshow(data.x_test[index].reshape(28, 28), cmap="gray_r")
    ax_img.set_title(_("the test image\n(true label {label})").format(label=label), fontsize=10)
    mates_img = ax_mates.imshow(_montage(sets["mixed digits"]), cmap="gray_r", vmin=0, vmax=1)
    mates_title = ax_mates.set_title(_("8 of its 59 batchmates"), fontsize=10)
    for ax in (ax_img, ax_mates):
        ax.set_xticks([])
        ax.set_yticks([])
    classes = np.arange(10)
    first = probs["mixed digits"]
    bars = ax_bar.bar(classes - 0.2, first["train"], width=0.4, color=COLORS["bn"],
                      label=_("training mode (batch statistics): the bug"))
    ax_bar.bar(classes + 0.2, first["eval"], width=0.4, fill=False, edgecolor=COLORS["black"],
               hatch="//", label=_("eval mode (running averages): correct"))
    ax_bar.set(xticks=classes, ylim=(0, 1.32), xlabel=_("class (digit)"), ylabel=_("probability"),
               title=_("the network's answer for this one image"))
    ax_bar.legend(loc="upper right", fontsize=8)

    def update(batchmates):
        p = probs[batchmates]
        for bar, h in zip(bars, p["train"]):
            bar.set_height(h)
        mates_img.set_data(_montage(sets[batchmates]))
        mates_title.set_text(_("8 of its 59 batchmates:\n{batchmates}").format(batchmates=batchmate_label(batchmates)))
        t, e = p["train"], p["eval"]
        return _("batchmates {batchmates}: training mode says {train} (p = {p_train:.2f}), "
                 "p(true {label}) = {p_label:.2f} · eval mode says {eval} (p = {p_eval:.2f}), "
                 "the same for every choice").format(
            batchmates=batchmate_label(batchmates), train=t.argmax(), p_train=t.max(), label=label,
            p_label=t[label], eval=e.argmax(), p_eval=e.max())

    choice = widgets.Dropdown(options=[(batchmate_label(name), name) for name in probs], value="mixed digits",
                              description=_("batchmates"))
    return Dashboard(fig, update, animated=[*bars, mates_img, mates_title], batchmates=choice)


def accuracy_in_batches(model, data, batch_size, order=None):
    """Test accuracy when the test set goes through in training mode, batch_size images at a
    time (in `order`, default as stored: shuffled digits). Uses every full batch."""
    order = np.arange(len(data.x_test)) if order is None else np.asarray(order)
    n = len(order) // batch_size * batch_size
    idx = order[:n].reshape(-1, batch_size)
    preds = np.concatenate([logits_with_batch_statistics(model, data.x_test[i]).argmax(axis=1) for i in idx])
    return float(np.mean(preds == data.y_test[idx.ravel()]))


def eval_accuracy(model, data):
    return float(np.mean(logits_eval(model, data.x_test).argmax(axis=1) == data.y_test))


ORDER_LABELS = {("train", "shuffled"): N_("train mode, shuffled batches"),
                ("train", "sorted"): N_("train mode, batches sorted by digit"),
                ("eval", "shuffled"): N_("eval mode, shuffled"),
                ("eval", "sorted"): N_("eval mode, sorted by digit")}


def sorted_vs_shuffled(model, data, batch_size=100):
    """Test accuracy in training mode with batches of 100 shuffled digits, and with the test set
    sorted by label (so each batch holds one digit); and eval mode's accuracy in both orders.
    Returns {(mode, order): accuracy}, mode "train" or "eval", order "shuffled" or "sorted"."""
    by_label = np.argsort(data.y_test, kind="stable")
    eval_sorted = np.mean(logits_eval(model, data.x_test[by_label]).argmax(axis=1) == data.y_test[by_label])
    return {("train", "shuffled"): accuracy_in_batches(model, data, batch_size),
            ("train", "sorted"): accuracy_in_batches(model, data, batch_size, by_label),
            ("eval", "shuffled"): eval_accuracy(model, data),
            ("eval", "sorted"): float(eval_sorted)}


def print_accuracies(acc):
    """One line per (mode, order) of sorted_vs_shuffled: its name and its test accuracy."""
    for key, a in acc.items():
        print(f"{pad(_(ORDER_LABELS[key]), 38)} {a:.1%}")


# --------------------------------------------------------------------------- batch statistics over time
@dataclass
class Stream:
    """Batch statistics of `batches` training batches of size N, weights fixed.
    means[l], variances[l]: (batches, units) μ_B and biased σ²_B of BN layer l's input."""
    means: list
    variances: list
    batch_size: int
    seed: int

    @property
    def batches(self):
        return len(self.means[0])


def batch_stat_stream(model, data, batches=300, batch_size=BATCH_SIZE, seed=1):
    """Run `batches` shuffled training batches (seeded) through the trained model in training
    mode, weights fixed and running averages untouched, and record each BN layer's μ_B, σ²_B."""
    bns = model.norm_layers()
    gen = minibatches(len(data.x_train), batch_size, seed)
    means, variances = [[] for _ in bns], [[] for _ in bns]
    with model.batch_statistics():
        for _step in range(batches):
            model.forward(data.x_train[next(gen)])
            for l, bn in enumerate(bns):
                means[l].append(bn.cache.mean.ravel().copy())
                variances[l].append(bn.cache.var.ravel().copy())
    return Stream([np.array(a, dtype=np.float64) for a in means],
                  [np.array(a, dtype=np.float64) for a in variances], batch_size, seed)


def population_statistics(stream):
    """The BN paper's inference statistics (Algorithm 2), per BN layer:
        E[x]   = mean over the batches of μ_B
        Var[x] = N/(N − 1) · mean over the batches of σ²_B      (unbiased)
    Returns [(E[x], Var[x]), ...], one pair of (units,) arrays per layer."""
    n = stream.batch_size
    return [(mu.mean(axis=0), n / (n - 1) * var.mean(axis=0)) for mu, var in zip(stream.means, stream.variances)]


def with_statistics(model, stats):
    """A copy of the model, in eval mode, whose BN layers use `stats` [(mean, var), ...]."""
    out = copy.deepcopy(model).eval()
    for bn, (mean, var) in zip(out.norm_layers(), stats):
        bn.running_mean[...] = mean
        bn.running_var[...] = var
    return out


def cumulative_copy(model, data, stream):
    """A copy whose BN layers use PyTorch's momentum=None (a cumulative average), reset to
    running_mean 0, running_var 1, and fed the same training batches as the stream."""
    out = copy.deepcopy(model)
    for bn in out.norm_layers():
        bn.momentum, bn.num_batches_tracked = None, 0
        bn.running_mean[...], bn.running_var[...] = 0.0, 1.0
    gen = minibatches(len(data.x_train), stream.batch_size, stream.seed)
    out.train()
    for _step in range(stream.batches):
        out.forward(data.x_train[next(gen)])
    return out.eval()


def running_trace(values, momentum, start=0.0):
    """running_k for k = 1..K from batch statistics `values` (K, ...):
        running_k = (1 − α) running_(k−1) + α values_k,   α = momentum,   running_0 = start;
    momentum="cumulative" (PyTorch's None): α = 1/k, the plain mean of the first k values.
    (A loop over steps, as training does; each step is vectorised over features.)"""
    values = np.asarray(values, dtype=np.float64)
    if momentum == "cumulative" or momentum is None:
        return np.cumsum(values, axis=0) / np.arange(1, len(values) + 1).reshape((-1,) + (1,) * (values.ndim - 1))
    out = np.empty_like(values)
    running = np.full(values.shape[1:], start, dtype=np.float64)
    for k, v in enumerate(values):
        running = (1 - momentum) * running + momentum * v
        out[k] = running
    return out


def tracking_numbers(trace, values, target, start=0.0, band=0.1):
    """How a running trace behaves against the population value `target` (scalars per step):
    settle: the first step from which it stays within `band` of the start-to-target distance
    (None if it never does, or only over the last 10% of the steps); rms: the RMS error over the last half of the steps;
    batch_rms: the same for single batch values (momentum 1)."""
    err = np.abs(trace - target)
    outside = np.flatnonzero(err > band * abs(target - start))
    settle = 1 if outside.size == 0 else int(outside[-1]) + 2          # steps count from 1
    if settle > 0.9 * len(trace):
        settle = None                     # inside only for the last few batches: not settled
    half = len(trace) // 2
    rms = float(np.sqrt(np.mean((trace[half:] - target) ** 2)))
    batch_rms = float(np.sqrt(np.mean((values[half:] - target) ** 2)))
    return {"settle": settle, "rms": rms, "batch_rms": batch_rms}


def clearest_unit(stream, layer=0):
    """The unit whose population mean is largest compared with the batch-to-batch noise of μ_B
    (so the climb from 0 and the noise are both visible)."""
    mu = stream.means[layer]
    return int(np.argmax(np.abs(mu.mean(axis=0)) / mu.std(axis=0)))


MOMENTUM_OPTIONS = [("0.001", 0.001), ("0.003", 0.003), ("0.01", 0.01), ("0.03", 0.03),
                    (N_("0.1 (PyTorch default)"), 0.1), ("0.3", 0.3), (N_("1 (no memory)"), 1.0),
                    (N_("None (cumulative)"), "cumulative")]


def describe_momentum(momentum):
    if momentum == "cumulative":
        return _("momentum=None (cumulative average)")
    return _("α = {alpha:g} (Keras/cs231n momentum {keras:.3g})").format(alpha=momentum, keras=1 - momentum)


def running_dashboard(stream, layer=0, unit=None):
    """A momentum slider: the running mean of one feature (PyTorch convention, starting at 0)
    over the stream's training batches, against the batch means (grey dots) and the population
    value (dashed). Every option's trace is computed once, before the slider moves."""
    unit = clearest_unit(stream, layer) if unit is None else unit
    values = stream.means[layer][:, unit]
    target = float(values.mean())
    steps = np.arange(1, len(values) + 1)
    fig, ax = new_figure(width=MAX_WIDTH, height=3.8, margins=(0.1, 0.97, 0.28, 0.91, 0, 0))  # fixed: fast redraws
    ax.plot(steps, values, ".", ms=3, color=COLORS["grey"], label=_("batch mean μ_B (one batch each)"))
    ax.axhline(target, color=COLORS["black"], ls="--", lw=1.2, label=_("population value (mean of all μ_B)"))
    with_start = lambda trace: np.concatenate([[0.0], trace])          # step 0: the start value 0
    traces = {value: running_trace(values, value) for _label, value in MOMENTUM_OPTIONS}   # precomputed
    (line,) = ax.plot(np.arange(len(values) + 1), with_start(traces[0.1]), color=COLORS["bn"],
                      lw=2, label=_("running mean (starts at 0)"))
    lo, hi = min(0.0, values.min()), max(0.0, values.max())
    pad = 0.08 * (hi - lo)
    ax.set(xlim=(0, len(values) + 1), ylim=(lo - pad, hi + pad), xlabel=_("training batch (weights fixed)"),
           ylabel=_("mean of unit {unit}'s input\n(BN layer {layer})").format(unit=unit, layer=layer + 1),
           title=_("How the running mean tracks the batch means (it starts at 0)"))
    fig.legend(loc="lower center", ncol=3, fontsize=8, frameon=False)       # outside: never covers a line

    def update(momentum):
        trace = traces[momentum]
        line.set_ydata(with_start(trace))
        t = tracking_numbers(trace, values, target)
        settle = (_("from batch {batch} on").format(batch=t["settle"]) if t["settle"]
                  else _("never (in these batches)"))
        return _("{momentum}: within 10% of the population value {settle}; RMS error over the last "
                 "{batches} batches {rms:.3f} (a single batch mean: {batch_rms:.3f})").format(
            momentum=describe_momentum(momentum), settle=settle, batches=len(values) // 2, rms=t["rms"],
            batch_rms=t["batch_rms"])

    options = [(_(label), value) for label, value in MOMENTUM_OPTIONS]
    slider = widgets.SelectionSlider(options=options, value=0.1, description=_("momentum α"),
                                     continuous_update=True, layout=widgets.Layout(width="70%"),
                                     style={"description_width": "initial"})
    return Dashboard(fig, update, animated=[line], momentum=slider)


# --------------------------------------------------------------------------- the three options
TEST_BATCH_SIZES = (2, 4, 5, 10, 20, 50, 100, 250, 500, 1000)


def compare_options(model, pop_model, data, batch_sizes=TEST_BATCH_SIZES):
    """Test accuracy of the three ways to get μ and σ² at inference:
    batch statistics of each test batch (training mode, per test batch size), the running
    averages (eval mode), and the population statistics (eval mode, BN paper's algorithm)."""
    return {"batch": {b: accuracy_in_batches(model, data, b) for b in batch_sizes},
            "running": eval_accuracy(model, data), "population": eval_accuracy(pop_model, data)}


def options_figure(results):
    """Accuracy against test batch size for batch statistics; lines for the other two options."""
    fig, ax = new_figure(width=MAX_WIDTH, height=3.4)
    sizes = np.array(list(results["batch"]))
    acc = np.array(list(results["batch"].values()))
    ax.plot(sizes, acc, "o-", color=CYCLE[4], label=_("batch statistics of the test batch (train mode)"))
    ax.axhline(results["running"], color=COLORS["bn"], lw=2,
               label=_("running averages (eval): {acc:.1%}").format(acc=results["running"]))
    ax.axhline(results["population"], color=CYCLE[2], ls="--", lw=2,
               label=_("population statistics (eval): {acc:.1%}").format(acc=results["population"]))
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set(xlabel=_("test batch size (images normalized together)"), ylabel=_("test accuracy"), ylim=(0.4, 1.0),
           title=_("Three ways to get μ and σ² at inference (batch size 1 in train mode: an error)"))
    ax.legend(loc="lower right", fontsize=8)
    return fig


# --------------------------------------------------------------------------- momentum conventions
CONVENTIONS = {
    "pytorch": ("PyTorch nn.BatchNorm1d", "running = (1 − momentum)·running + momentum·batch", 0.1, "new"),
    "keras": ("Keras BatchNormalization", "moving = momentum·moving + (1 − momentum)·batch", 0.99, "old"),
    "cs231n": (N_("cs231n assignment 2"), "running = momentum·running + (1 − momentum)·batch", 0.9, "old"),
}


def library_name(convention):
    """The name under which a learner knows the library of `convention` (in the current language)."""
    return _(CONVENTIONS[convention][0])


def _check_convention(name):
    if name not in CONVENTIONS:
        raise ValueError(_("convention must be one of {choices}, got {name!r}")
                         .format(choices=", ".join(CONVENTIONS), name=name))


def weight_on_new(momentum, convention):
    """α, the weight of the new batch, for a momentum given in `convention`."""
    _check_convention(convention)
    if not 0 <= momentum <= 1:
        raise ValueError(_("momentum must be between 0 and 1, got {momentum!r}").format(momentum=momentum))
    return momentum if CONVENTIONS[convention][3] == "new" else 1.0 - momentum


def convert_momentum(momentum, source, target):
    """The same running average written in another library's convention:
    PyTorch's momentum is the weight on the new batch (α); Keras's and cs231n's is the weight
    on the old running value (1 − α). So PyTorch 0.1 = Keras 0.9 = cs231n 0.9."""
    alpha = weight_on_new(momentum, source)
    _check_convention(target)
    return alpha if CONVENTIONS[target][3] == "new" else 1.0 - alpha


def update_running(running, batch_stat, momentum, convention):
    """One update of a running statistic, written exactly as `convention` writes it."""
    _check_convention(convention)
    if CONVENTIONS[convention][3] == "new":
        return (1 - momentum) * running + momentum * batch_stat
    return momentum * running + (1 - momentum) * batch_stat


def run_convention(values, momentum, convention, start=0.0):
    """Running values after each of the batch statistics `values` (K, ...) under `convention`."""
    running = np.full(np.shape(values)[1:], start, dtype=np.float64)
    out = []
    for v in values:
        running = update_running(running, v, momentum, convention)
        out.append(running)
    return np.array(out)


def momentum_table():
    """Print each library's update rule, its default momentum and that default as α."""
    for key, (_name, rule, default, _side) in CONVENTIONS.items():
        alpha = weight_on_new(default, key)
        print(f"{pad(library_name(key), 26)} {rule:<52} "
              + _("default {default:<5g} → α = {alpha:g}").format(default=default, alpha=alpha))


def momentum_calculator(momentum, convention="pytorch"):
    """Print `momentum` (given in `convention`) in all three conventions, with the memory of
    the running average: about 1/α batches, and a half-life of ln 2 / (−ln(1 − α)) batches
    (after that many batches an old value's weight has halved). Prints only (returns None)."""
    alpha = weight_on_new(momentum, convention)
    out = {c: convert_momentum(momentum, convention, c) for c in CONVENTIONS}
    print(_("{library} momentum {momentum:g}: the new batch gets weight α = {alpha:.4g}")
          .format(library=library_name(convention), momentum=momentum, alpha=alpha))
    for c, value in out.items():
        print(f"   {pad(library_name(c), 26)} momentum={value:.4g}")
    if 0 < alpha < 1:
        print("   " + _("memory ≈ 1/α = {memory:.4g} batches; half-life = ln 2 / (−ln(1 − α)) = {half:.4g} batches")
              .format(memory=1 / alpha, half=np.log(2) / -np.log(1 - alpha)))
    elif alpha == 1:
        print("   " + _("α = 1: the running value is just the last batch's statistic (no memory)"))
    else:
        print("   " + _("α = 0: the running value never changes"))


# --------------------------------------------------------------------------- folding for deployment
def fold_into_next(bn, linear):
    """A Linear layer equal to `bn` (in eval mode) followed by `linear`: how a BN placed after the
    activation folds forward, into the Linear layer after it. In eval mode BN maps each feature
    a_i to s_i·a_i + t_i, with s = γ / √(running_var + ε) and t = β − running_mean·s, so
        (a·s + t) W + b = a (s[:, None]·W) + (t W + b):
        W' = s[:, None]·W   (row i of W times s_i),     b' = t W + b.
    (Exact for Linear layers. A convolution that pads its input with zeros would need care at
    the borders: the padded zeros would no longer pass through BN.)"""
    if not isinstance(bn, BatchNorm) or not isinstance(linear, Linear):
        raise TypeError(_("fold_into_next takes (BatchNorm, Linear), got ({first}, {second})")
                        .format(first=type(bn).__name__, second=type(linear).__name__))
    if bn.num_features != linear.fan_in:
        raise ValueError(_("{bn} has {features} features but {linear} takes {inputs} inputs")
                         .format(bn=repr(bn), features=bn.num_features, linear=repr(linear), inputs=linear.fan_in))
    s = bn.gamma / np.sqrt(bn.running_var + bn.eps)
    t = bn.beta - bn.running_mean * s
    b = linear.b if linear.b is not None else np.zeros(linear.fan_out, dtype=linear.W.dtype)
    folded = Linear(linear.fan_in, linear.fan_out, init=0.0, dtype=linear.W.dtype)
    folded.W[...] = s[:, None] * linear.W
    folded.b[...] = t @ linear.W + b
    return folded


class FoldedMLP:
    """An inference-only network: each Linear → BatchNorm pair (BN before the activation)
    replaced by one Linear (bnlib.fold_batchnorm: BN folds back into the Linear before it), and
    each BatchNorm → Linear pair (BN after the activation) by one Linear (fold_into_next: BN
    folds forward into the Linear after it). Activations unchanged. No BN, no modes."""

    def __init__(self, model):
        self.layers, i = [], 0
        src = model.layers
        while i < len(src):
            nxt = src[i + 1] if i + 1 < len(src) else None
            if isinstance(src[i], Linear) and isinstance(nxt, BatchNorm):
                self.layers.append(fold_batchnorm(src[i], nxt))
                i += 2
            elif isinstance(src[i], BatchNorm) and isinstance(nxt, Linear):
                self.layers.append(fold_into_next(src[i], nxt))
                i += 2
            elif isinstance(src[i], BatchNorm):
                raise ValueError(_("layer {index}, {layer}, has no Linear layer next to it to fold into")
                                 .format(index=i, layer=repr(src[i])))
            else:
                self.layers.append(copy.deepcopy(src[i]))
                i += 1

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def num_parameters(self):
        return sum(p.size for layer in self.layers for p in layer.parameters())

    def __repr__(self):
        inner = "\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return _("FoldedMLP — {count:,} parameters, no BN layers").format(count=self.num_parameters()) + f"\n{inner}"


def fold_model(model):
    """The model with every BN folded into a Linear layer: the one before it (BN before the
    activation) or the one after it (BN after the activation)."""
    return FoldedMLP(model)


def buffer_count(model):
    """Numbers a deployed BN model stores besides its parameters: running_mean and running_var."""
    return sum(bn.running_mean.size + bn.running_var.size for bn in model.norm_layers())


def best_time_ms(forward, x, repeat=15):
    """Fastest of `repeat` calls of forward(x), in milliseconds (the minimum is the least noisy)."""
    times = []
    for _call in range(repeat):
        start = time.perf_counter()
        forward(x)
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def arithmetic_per_image(model):
    """Multiplications and additions per image in eval mode: 2·fan_in·fan_out (+ fan_out for b)
    per Linear, and 3 per BN feature ((x − mean)·scale + β, with scale precomputed)."""
    linear = sum(2 * l.fan_in * l.fan_out + l.fan_out for l in model.layers if isinstance(l, Linear))
    bn = sum(3 * bn.num_features for bn in model.norm_layers())
    return {"linear": linear, "bn": bn}


# --------------------------------------------------------------------------- exercises
EX2_BATCH_MEANS = np.array([2.0, 4.0, 3.0])
EX3_BATCH_VARS = np.array([1.5, 2.0, 2.5])
EX3_N = 4
EX4 = dict(W=np.array([[1.0, -2.0, 0.5], [0.5, 1.0, -1.0]]), b=np.array([0.5, -1.0, 2.0]),
           gamma=np.array([2.0, 0.5, 1.0]), beta=np.array([0.1, 0.0, -0.3]),
           running_mean=np.array([1.0, -2.0, 0.5]), running_var=np.array([4.0, 0.25, 1.0]), eps=1e-5)


def check_keras_to_pytorch(answer):
    """Exercise 1: Keras's default momentum 0.99, written as PyTorch's momentum."""
    check(answer, 0.01, _("exercise 1 — Keras 0.99 in PyTorch's convention"),
          wrong=[(0.99, _("that is Keras's number unchanged; PyTorch's momentum is the weight of the NEW "
                          "batch, Keras's the weight of the OLD running value: 1 − 0.99")),
                 (0.1, _("that is PyTorch's default; convert 0.99: the weight of the new batch is 1 − 0.99")),
                 (0.9, _("that converts cs231n's default; here the Keras momentum is 0.99"))])


def ex2_expected(values=EX2_BATCH_MEANS, alpha=0.1):
    return float(running_trace(values, alpha)[-1])


def check_running_after_three(answer):
    """Exercise 2: PyTorch's running mean after three batches (α = 0.1, starting at 0).
    Three decimals are enough: answers within 0.005 count as correct."""
    v = EX2_BATCH_MEANS
    from_first = running_trace(v[1:], 0.1, start=v[0])[-1]
    check(answer, ex2_expected(), _("exercise 2 — running mean after 3 batches"), rtol=0, atol=0.005,
          wrong=[(ex2_expected(alpha=0.9), _("you gave the new batch weight 0.9; in PyTorch 0.1 is the weight "
                                              "of the new batch: running = 0.9·running + 0.1·μ_B")),
                 (from_first, _("running_mean starts at 0, not at the first batch mean")),
                 (v.mean(), _("that is the plain average of the three (momentum=None); use α = 0.1")),
                 (0.1 * v[-1], _("you updated only once; apply the update for each of the 3 batches in turn")),
                 (0.1 * v.sum(), _("you added 0.1·μ_B for each batch but forgot the 0.9·running part: each update "
                                   "first multiplies the old running value by 0.9, then adds 0.1·μ_B"))])


def check_population_variance(answer):
    """Exercise 3: the BN paper's Var[x] from three batch variances of batches of size N = 4."""
    v, n = EX3_BATCH_VARS, EX3_N
    k = len(v)
    check(answer, n / (n - 1) * v.mean(), _("exercise 3 — Var[x] from batch variances"),
          wrong=[(v.mean(), _("you forgot the factor N/(N − 1): the batch variances divide by N, so their "
                              "mean is a little too small")),
                 ((n - 1) / n * v.mean(), _("the factor is upside down: multiply by N/(N − 1), which is above 1")),
                 (k / (k - 1) * v.mean(), _("N is the batch size (4), not the number of batches (3)")),
                 (n / (n - 1) * np.mean(np.sqrt(v)) ** 2, _("average the variances themselves, not the "
                                                             "standard deviations"))])


def ex4_expected(p=EX4):
    s = p["gamma"] / np.sqrt(p["running_var"] + p["eps"])
    return (p["b"] - p["running_mean"]) * s + p["beta"]


def check_folded_bias(answer):
    """Exercise 4: the bias b' of the folded Linear layer."""
    p = EX4
    s = p["gamma"] / np.sqrt(p["running_var"] + p["eps"])
    s_no_sqrt = p["gamma"] / (p["running_var"] + p["eps"])
    eps_hint = _("put ε inside the square root: s = γ / √(running_var + ε)")
    check(answer, ex4_expected(), _("exercise 4 — the folded bias b'"),
          wrong=[(p["b"] * s + p["beta"], _("you forgot to subtract the running mean: b' = (b − running_mean)·s + β")),
                 (p["b"] * s - p["running_mean"] + p["beta"], _("the running mean is subtracted BEFORE scaling: "
                                                                "(b − running_mean)·s")),
                 ((p["b"] - p["running_mean"]) * s, _("you forgot to add β at the end")),
                 ((p["b"] - p["running_mean"]) * s_no_sqrt + p["beta"], _("s divides by the standard deviation "
                                                                          "√(running_var + ε), not by the variance")),
                 ((p["b"] - p["running_mean"]) * p["gamma"] + p["beta"], _("you forgot to divide by "
                                                                           "√(running_var + ε)")),
                 ((p["b"] - p["running_mean"]) * p["gamma"] / np.sqrt(p["running_var"]) + p["beta"], eps_hint),
                 ((p["b"] - p["running_mean"]) * p["gamma"] / (np.sqrt(p["running_var"]) + p["eps"]) + p["beta"],
                  eps_hint)],
          rtol=1e-6, atol=1e-9)
