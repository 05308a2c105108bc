"""Lesson 05 — batch size, the article's demerit: BN estimates μ and σ² from the batch, and a
small batch gives noisy estimates that also tie each example to its batchmates.

    u = batch_size.population(data)                 # one feature of BN's input u = x W + b (4,000 values)
    stats = batch_size.batch_statistics(u)          # {N: (μ_B, σ²_B) of 2,000 sampled batches}
    batch_size.spread_dashboard(u, stats).show()    # batch-size slider: histograms + spread vs N
    xs = batch_size.coupling(u)                     # {N: one example's x̂ with 200 sets of batchmates}
    batch_size.coupling_figure(u, xs)
    runs = batch_size.batch_size_runs(data)         # {(N, kind): History}: one epoch per batch size
    batch_size.batch_size_figure(runs)

Notation (as in notebook 02 and docs/glossary.md): a batch holds N values x₁ … x_N of one
feature (here x = u, the values BN receives);
    μ_B = (1/N) Σ xᵢ,   σ²_B = (1/N) Σ (xᵢ − μ_B)²,   x̂ᵢ = (xᵢ − μ_B) / √(σ²_B + ε).
μ and σ² without B are the population values: over all 4,000 training images.
Theory for batches drawn at random: the spread (standard deviation) of μ_B is σ/√N, and the
average of σ²_B is (N − 1)/N · σ² (the biased variance is a little too small on average).
"""
import ipywidgets as widgets
import numpy as np

from .. import plots
from ..checks import NotYet, check
from ..i18n import N_, _
from ..model import MLP
from ..train import train
from ..widgets import Dashboard

SIZES = [784, 100, 100, 100, 10]
BATCH_SIZES = tuple(2 ** k for k in range(10))          # 1, 2, 4, …, 512
COUPLING_SIZES = (2, 4, 16, 64, 256)
TRAIN_SIZES = (2, 4, 8, 16, 32, 64, 128)
EPS = 1e-5
LABELS = {"plain": N_("without BN"), "bn": N_("with BN")}            # shown through label(kind)
KINDS = ("plain", "bn")
BINS = 60
LEGEND = 9                                              # legend font size (points)


def label(kind):
    """What a learner reads for a network kind: "without BN" / "with BN" (or the same in Japanese)."""
    return _(LABELS[kind])


def network(kind, seed=0):
    """The MLP of this notebook: 784-100-100-100-10 with ReLU and He initialization (weights
    with standard deviation √(2 / inputs)), without ("plain") or with ("bn") batch norm before
    each ReLU."""
    if kind not in KINDS:
        raise ValueError(_("kind must be one of {kinds}, got {kind!r}").format(kinds=KINDS, kind=kind))
    return MLP(SIZES, activation="relu", init="he", norm=None if kind == "plain" else "batch", seed=seed)


# ---------------------------------------------------------------- sampling μ_B and σ²_B
def population(data, unit=0, seed=0):
    """One feature of real data as a BN layer receives it: u = x W + b of the first layer of
    (an untrained) `network`, for every training image, unit `unit`. Returns a float64 array
    with one value per training image (4,000 for MNIST-5k): the population."""
    linear = network("bn", seed=seed).hidden[0][0]
    return linear.forward(data.x_train)[:, unit].astype(np.float64)


def sample_batches(n, size, count, rng):
    """Indices (count, size) of batches drawn as the training loop draws them: shuffle all n
    examples, cut the order into batches of `size` (dropping the leftover), repeat with a new shuffle."""
    per_shuffle = n // size
    shuffles = -(-count // per_shuffle)                         # ceil(count / per_shuffle)
    orders = rng.permuted(np.tile(np.arange(n), (shuffles, 1)), axis=1)
    return orders[:, :per_shuffle * size].reshape(-1, size)[:count]


def batch_statistics(values, sizes=BATCH_SIZES, count=2000, seed=0):
    """For each batch size N: μ_B and σ²_B (biased) of `count` sampled batches.
    Returns {N: (mu (count,), var (count,))}. Vectorized: one (count, N) array per N."""
    rng = np.random.default_rng(seed)
    out = {}
    for size in sizes:                                          # a loop over batch sizes only
        batches = values[sample_batches(len(values), size, count, rng)]
        mu = batches.mean(axis=1)
        out[size] = (mu, ((batches - mu[:, None]) ** 2).mean(axis=1))
    return out


def spread(stats):
    """(sizes, measured standard deviation of μ_B over the sampled batches, for each N)."""
    sizes = np.array(sorted(stats))
    return sizes, np.array([stats[size][0].std() for size in sizes])


def theory_spread(values, sizes):
    """σ/√N: the standard deviation of μ_B for random batches of N (σ: population std)."""
    return values.std() / np.sqrt(np.asarray(sizes, dtype=float))


def variance_ratio(values, stats, N):
    """Average of σ²_B over the sampled batches of size N, divided by the population σ²."""
    return float(stats[N][1].mean() / values.var())


def _histograms(samples, edges):
    """Fraction of samples per bin (values outside the edges are clipped into the end bins)."""
    counts, _ = np.histogram(np.clip(samples, edges[0], edges[-1]), bins=edges)
    return counts / len(samples)


def spread_dashboard(values, stats):
    """A batch-size slider (powers of two). Left: histogram of μ_B over the sampled batches;
    middle: histogram of σ²_B; right: the spread of μ_B against N (log axes), measured (dots)
    and σ/√N (line), with the chosen N circled. All histograms are computed before the slider
    moves, and each is scaled so that its tallest bar is 1 (the axes never change): the update
    only sets data, and the Dashboard redraws only the artists that change."""
    mu, var, sd = values.mean(), values.var(), values.std()
    sizes, measured = spread(stats)
    count = len(stats[sizes[0]][0])                             # batches sampled per batch size
    mu_edges = np.linspace(mu - 4 * sd, mu + 4 * sd, BINS + 1)
    var_edges = np.linspace(0, 4 * var, BINS + 1)

    def relative(h):
        return h / h.max()

    hist = {size: (relative(_histograms(stats[size][0], mu_edges)), relative(_histograms(stats[size][1], var_edges)))
            for size in sizes}
    blue, black, grey = plots.COLORS["bn"], plots.COLORS["black"], plots.COLORS["grey"]

    fig, (ax_mu, ax_var, ax_sp) = plots.new_figure(1, 3, width=plots.MAX_WIDTH, height=3.9,
                                                   margins=(0.065, 0.99, 0.14, 0.85, 0.33, 0))
    mu_bars = ax_mu.stairs(hist[sizes[0]][0], mu_edges, fill=True, color=blue, alpha=0.7,
                           label=_("μ_B of {count:,} batches").format(count=count))
    ax_mu.axvline(mu, color=black, ls="--", lw=1, label=_("population μ"))
    ax_mu.set(xlabel=_("batch mean μ_B"), ylabel=_("number of batches (tallest bar = 1)"), ylim=(0, 1.5),
              title=_("batch means μ_B"))
    ax_mu.legend(loc="upper left", fontsize=LEGEND)
    var_bars = ax_var.stairs(hist[sizes[0]][1], var_edges, fill=True, color=blue, alpha=0.45,
                             label=_("σ²_B of {count:,} batches").format(count=count))
    ax_var.axvline(var, color=black, ls="--", lw=1, label=_("population σ²"))
    var_mean = ax_var.axvline(var, color=blue, lw=2.5, label=_("average of σ²_B"))
    ax_var.set(xlabel=_("batch variance σ²_B (biased)"), ylabel=_("number of batches (tallest bar = 1)"),
               ylim=(0, 1.5), title=_("batch variances σ²_B"))
    ax_var.legend(loc="upper right", fontsize=LEGEND)
    line = np.geomspace(sizes[0], sizes[-1], 50)
    ax_sp.plot(line, theory_spread(values, line), color=grey, label=_("theory σ/√N"))
    ax_sp.plot(sizes, measured, "o", color=blue, ms=5, label=_("measured"))
    mark, = ax_sp.plot([], [], "o", ms=14, mfc="none", mec=black, mew=2, label=_("chosen N"))
    ax_sp.set(xscale="log", yscale="log", xlabel=_("batch size N (log scale)"),
              ylabel=_("spread of μ_B (std, log scale)"), title=_("spread of μ_B against N"))
    shown = sizes[::2]                                           # 1, 4, 16, 64, 256: room for 9-pt labels
    ax_sp.set_xticks(shown, [str(size) for size in shown])
    ax_sp.minorticks_off()
    ticks = [t for t in (0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100)
             if measured.min() / 2 <= t <= measured.max() * 2]
    ax_sp.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax_sp.legend(loc="lower left", fontsize=LEGEND)
    title = fig.suptitle(" ")

    def update(N):
        h_mu, h_var = hist[N]
        mu_bars.set_data(values=h_mu)
        var_bars.set_data(values=h_var)
        avg = stats[N][1].mean()
        var_mean.set_xdata([avg, avg])
        k = int(np.flatnonzero(sizes == N)[0])
        mark.set_data([N], [measured[k]])
        title.set_text(_("batch size N = {N}: {count:,} random batches of one feature u").format(N=N, count=count))
        theory = theory_spread(values, [N])[0]
        return _("N = {N}: spread of μ_B {spread:.3f} (theory σ/√N = {theory:.3f}); "
                 "average σ²_B = {ratio:.2f} × σ² (theory (N−1)/N = {theory_ratio:.2f})").format(
            N=N, spread=measured[k], theory=theory, ratio=avg / var, theory_ratio=(N - 1) / N)

    start = 4 if 4 in sizes else int(sizes[0])
    slider = widgets.SelectionSlider(options=[int(size) for size in sizes], value=start,
                                     description=_("batch size N"), continuous_update=True,
                                     style={"description_width": "initial"},
                                     layout=widgets.Layout(width="50%"))
    changing = [mu_bars, var_bars, var_mean, mark, title]
    return Dashboard(fig, update, animated=changing, N=slider)     # redraw only what changes


# ---------------------------------------------------------------- batch coupling
def coupling(values, example=0, sizes=COUPLING_SIZES, sets=200, seed=0):
    """One example's x̂ = (x − μ_B)/√(σ²_B + ε) when it shares its batch with `sets` random
    sets of N − 1 other examples, for each N in `sizes`. Returns {N: (sets,) array}."""
    rng = np.random.default_rng(seed)
    others = np.delete(np.arange(len(values)), example)
    out = {}
    for size in sizes:                                          # a loop over batch sizes only
        keys = rng.random((sets, len(others)))                  # a random order per set …
        mates = others[np.argpartition(keys, size - 2, axis=1)[:, :size - 1]]    # … keep its first N − 1
        batches = np.concatenate([np.full((sets, 1), values[example]), values[mates]], axis=1)
        mu, var = batches.mean(axis=1), batches.var(axis=1)
        out[size] = (values[example] - mu) / np.sqrt(var + EPS)
    return out


def population_xhat(values, example=0):
    """The example's x̂ if μ_B and σ²_B were the population's μ and σ²."""
    return float((values[example] - values.mean()) / np.sqrt(values.var() + EPS))


def coupling_figure(values, xs, example=0, seed=0):
    """Each dot: the same example's x̂ in one batch; columns: batch sizes. Dashed: its x̂ with
    the population statistics (where the dots gather as N grows)."""
    rng = np.random.default_rng(seed)
    sizes = sorted(xs)
    fig, ax = plots.new_figure(1, 1, width=7.5, height=3.8)
    for i, size in enumerate(sizes):
        jitter = rng.uniform(-0.18, 0.18, len(xs[size]))
        ax.plot(i + jitter, xs[size], "o", ms=3, alpha=0.45, color=plots.COLORS["bn"],
                label=_("x̂ in one batch (one dot per batch)") if i == 0 else None)
    ax.axhline(population_xhat(values, example), color=plots.COLORS["black"], ls="--", lw=1,
               label=_("x̂ with the population's μ and σ"))
    ax.set_xticks(range(len(sizes)), [str(size) for size in sizes])
    ax.set(xlabel=_("batch size N"), ylabel=_("x̂ of example {example}").format(example=example),
           title=_("One example, {sets} random sets of batchmates per batch size").format(sets=len(xs[sizes[0]])))
    ax.legend(loc="lower right", fontsize=LEGEND)
    return fig


# ---------------------------------------------------------------- training at each batch size
def batch_size_runs(data, sizes=TRAIN_SIZES, epochs=1, lr=0.05, seed=0):
    """Both networks at each batch size N, for the same number of epochs (passes over the
    training set): steps = epochs · (training images // N). Returns {(N, kind): History}; only
    the start and the end are recorded."""
    n = len(data.x_train)
    runs = {}
    for size in sizes:
        steps = epochs * (n // size)
        for kind in KINDS:
            runs[(size, kind)] = train(network(kind, seed), data, steps=steps, batch_size=size, lr=lr,
                                       record_every=steps, seed=seed, probe_size=10, progress=False)
    return runs


def accuracy_table(runs):
    """(sizes, {kind: final test accuracy per batch size}, steps per batch size)."""
    sizes = np.array(sorted({size for size, _ in runs}))
    acc = {kind: np.array([runs[(size, kind)].final_test_acc for size in sizes]) for kind in KINDS}
    steps = np.array([runs[(size, "bn")].config["steps"] for size in sizes])
    return sizes, acc, steps


def final_loss(history, share=0.1):
    """Average training loss over the last `share` of the run's steps (train-mode batches).
    In a one-epoch run the last tenth of the steps is the last tenth of the training images,
    whatever the batch size."""
    last = max(1, int(round(share * len(history.loss))))
    return float(history.loss[-last:].mean())


def batch_size_figure(runs):
    """Test accuracy after one epoch against the batch size, with and without BN."""
    sizes, acc, steps = accuracy_table(runs)
    fig, ax = plots.new_figure(1, 1, width=7.5, height=4.0)
    for kind in KINDS:
        ax.plot(sizes, acc[kind], "o-", color=plots.COLORS[kind], label=label(kind))
    ax.axhline(0.1, color=plots.COLORS["grey"], ls=":", label=_("chance (10 classes)"))
    ax.set_xscale("log")
    ax.set_xticks(sizes, [_("{size}\n({steps} steps)").format(size=size, steps=s) for size, s in zip(sizes, steps)],
                  fontsize=8.5)
    ax.minorticks_off()
    ax.set(xlabel=_("batch size N (and the number of steps in one epoch)"),
           ylabel=_("test accuracy after 1 epoch"), ylim=(0, 1),
           title=_("Same data seen once (1 epoch), different batch sizes"))
    ax.legend(loc="lower right", fontsize=LEGEND)
    return fig


def batch_of_one_error(data):
    """Try to train a BN network with batches of one; return the ValueError's message."""
    try:
        train(network("bn"), data, steps=1, batch_size=1, lr=0.05, progress=False)
    except ValueError as err:
        return str(err)
    return None


# ---------------------------------------------------------------- exercises
def check_theory_spread(answer, values, N=16):
    """Exercise 1: the theoretical spread of μ_B for batches of N: σ/√N."""
    sd = values.std()
    check(answer, sd / np.sqrt(N), _("spread of μ_B at N = {N}").format(N=N), wrong=[
        (sd / N, _("the spread shrinks with the square root of N: σ/√N")),
        (sd ** 2 / N, _("σ²/N is the variance of μ_B; the spread (std) is its square root, σ/√N")),
        (sd / np.sqrt(N - 1), _("divide by √N, not √(N − 1)")),
        (values.var() / np.sqrt(N), _("use σ, the standard deviation (u.std()), not the variance σ²")),
    ], rtol=5e-3)                                       # a value rounded to 3 significant digits is fine


def two_value_reference(a, b, eps=EPS):
    """x̂ for a batch of two values [a, b]."""
    x = np.array([a, b], dtype=np.float64)
    return (x - x.mean()) / np.sqrt(x.var() + eps)


def check_two_values(answer, a=5.0, b=1.0, eps=EPS):
    """Exercise 2: x̂ of a batch of two values; always close to [+1, −1]."""
    x = np.array([a, b], dtype=np.float64)
    mu = x.mean()
    name = _("x̂ for a batch of two")
    if answer is not None and answer is not Ellipsis and not isinstance(answer, (str, bytes)) \
            and np.ndim(answer) == 0:
        raise NotYet(_("{name}: not yet — give x̂ for both values: an array of two numbers").format(name=name))
    check(answer, two_value_reference(a, b, eps), name, wrong=[
        ((x - mu) / np.sqrt(x.var(ddof=1) + eps), _("σ²_B divides by N (here 2), not N − 1")),
        (x / np.sqrt(x.var() + eps), _("subtract μ_B first")),
        ((x - mu) / (x.var() + eps), _("divide by √(σ²_B + ε), the square root")),
        (x - mu, _("after subtracting μ_B, divide by √(σ²_B + ε)")),
    ], rtol=1e-4)


def check_variance_ratio(answer, values, stats, N=4):
    """Exercise 3: average σ²_B at batch size N over the population σ² (theory (N − 1)/N)."""
    var_b = stats[N][1]
    expected = var_b.mean() / values.var()
    wrong = [(var_b.mean() * N / (N - 1) / values.var(),
              _("stats[{N}][1] already holds σ²_B (biased, divided by N); do not rescale it by N/(N − 1)").format(N=N)),
             (values.var() / var_b.mean(), _("the ratio is (average of σ²_B) / σ², not the other way round")),
             ((N - 1) / N, _("that is the theory; measure it from stats[{N}][1] and u.var()").format(N=N)),
             (var_b.mean() / values.std(), _("divide by the variance σ² (u.var()), not by σ (u.std())"))]
    if 2 in stats and N != 2:
        wrong.append((stats[2][1].mean() / values.var(), _("use the batches of size {N}: stats[{N}]").format(N=N)))
    check(answer, expected, _("average σ²_B / σ² at N = {N}").format(N=N), wrong=wrong, rtol=2e-3, atol=1e-9)
