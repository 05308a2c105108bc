"""Lesson 05 — batch size, the article's demerit: BN estimates μ and σ² from the batch, and a
small batch gives noisy estimates that also tie each example to its batchmates.

    z = batch_size.population(data)                 # one feature of real pre-activations (4,000 values)
    stats = batch_size.batch_statistics(z)          # {m: (μ_B, σ²_B) of 2,000 sampled batches}
    batch_size.spread_dashboard(z, stats).show()    # batch-size slider: histograms + spread vs m
    xs = batch_size.coupling(z)                     # {m: one example's x̂ with 200 sets of batchmates}
    batch_size.coupling_figure(z, xs)
    runs = batch_size.batch_size_runs(data)         # {(m, kind): History}: one epoch per batch size
    batch_size.batch_size_figure(runs)

Notation (as in notebook 02): a batch holds m values x₁ … xₘ of one feature;
    μ_B = (1/m) Σ xᵢ,   σ²_B = (1/m) Σ (xᵢ − μ_B)²,   x̂ᵢ = (xᵢ − μ_B) / √(σ²_B + ε).
μ and σ² without B are the population values: over all 4,000 training images.
Theory for batches drawn at random: the spread (standard deviation) of μ_B is σ/√m, and the
average of σ²_B is (m − 1)/m · σ² (the biased variance is a little too small on average).
"""
import ipywidgets as widgets
import numpy as np

from .. import plots
from ..checks import check
from ..model import MLP
from ..train import train
from ..widgets import Dashboard

SIZES = [784, 100, 100, 100, 10]
BATCH_SIZES = tuple(2 ** k for k in range(10))          # 1, 2, 4, …, 512
COUPLING_SIZES = (2, 4, 16, 64, 256)
TRAIN_SIZES = (2, 4, 8, 16, 32, 64, 128)
EPS = 1e-5
LABELS = {"plain": "without BN", "bn": "with BN"}
KINDS = ("plain", "bn")
BINS = 60


def network(kind, seed=0):
    """The MLP of this notebook: 784-100-100-100-10 with ReLU and He initialisation,
    without ("plain") or with ("bn") batch norm before each ReLU."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return MLP(SIZES, activation="relu", init="he", norm=None if kind == "plain" else "batch", seed=seed)


# ---------------------------------------------------------------- sampling μ_B and σ²_B
def population(data, unit=0, seed=0):
    """One feature of real pre-activations: u = x W + b of the first layer of `network`, for
    every training image, unit `unit`. Returns a (N,) float64 array: the population."""
    linear = network("bn", seed=seed).hidden[0][0]
    return linear.forward(data.x_train)[:, unit].astype(np.float64)


def sample_batches(n, m, count, rng):
    """Indices (count, m) of batches drawn as the training loop draws them: shuffle all n
    examples, cut the order into batches of m (dropping the leftover), repeat with a new shuffle."""
    per_shuffle = n // m
    shuffles = -(-count // per_shuffle)                         # ceil(count / per_shuffle)
    orders = rng.permuted(np.tile(np.arange(n), (shuffles, 1)), axis=1)
    return orders[:, :per_shuffle * m].reshape(-1, m)[:count]


def batch_statistics(values, sizes=BATCH_SIZES, count=2000, seed=0):
    """For each batch size m: μ_B and σ²_B (biased) of `count` sampled batches.
    Returns {m: (mu (count,), var (count,))}. Vectorized: one (count, m) array per m."""
    rng = np.random.default_rng(seed)
    out = {}
    for m in sizes:                                             # a loop over batch sizes only
        batches = values[sample_batches(len(values), m, count, rng)]
        mu = batches.mean(axis=1)
        out[m] = (mu, ((batches - mu[:, None]) ** 2).mean(axis=1))
    return out


def spread(stats):
    """(sizes, measured standard deviation of μ_B over the sampled batches, for each m)."""
    sizes = np.array(sorted(stats))
    return sizes, np.array([stats[m][0].std() for m in sizes])


def theory_spread(values, sizes):
    """σ/√m: the standard deviation of μ_B for random batches of m (σ: population std)."""
    return values.std() / np.sqrt(np.asarray(sizes, dtype=float))


def variance_ratio(values, stats, m):
    """Average of σ²_B over the sampled batches of size m, divided by the population σ²."""
    return float(stats[m][1].mean() / values.var())


def _histograms(samples, edges):
    """Fraction of samples per bin (values outside the edges are clipped into the end bins)."""
    counts, _ = np.histogram(np.clip(samples, edges[0], edges[-1]), bins=edges)
    return counts / len(samples)


def spread_dashboard(values, stats):
    """A batch-size slider (powers of two). Left: histogram of μ_B over the sampled batches;
    middle: histogram of σ²_B; right: the spread of μ_B against m (log axes), measured (dots)
    and σ/√m (line), with the chosen m circled. All histograms are computed before the slider
    moves; the update only sets data."""
    mu, var, sd = values.mean(), values.var(), values.std()
    sizes, measured = spread(stats)
    mu_edges = np.linspace(mu - 4 * sd, mu + 4 * sd, BINS + 1)
    var_edges = np.linspace(0, 4 * var, BINS + 1)
    hist = {m: (_histograms(stats[m][0], mu_edges), _histograms(stats[m][1], var_edges)) for m in sizes}

    fig, (ax_mu, ax_var, ax_sp) = plots.new_figure(1, 3, width=9.0, height=3.4)
    mu_bars = ax_mu.stairs(hist[sizes[0]][0], mu_edges, fill=True, color=plots.COLORS["bn"], alpha=0.7,
                           label="μ_B of 2,000 batches")
    ax_mu.axvline(mu, color=plots.COLORS["black"], ls="--", lw=1, label="population μ")
    ax_mu.set(xlabel="batch mean μ_B", ylabel="fraction of batches", title="batch means μ_B")
    ax_mu.legend(loc="upper right", fontsize=8)
    var_bars = ax_var.stairs(hist[sizes[0]][1], var_edges, fill=True, color=plots.COLORS["layer"], alpha=0.7,
                             label="σ²_B of 2,000 batches")
    ax_var.axvline(var, color=plots.COLORS["black"], ls="--", lw=1, label="population σ²")
    var_mean = ax_var.axvline(var, color=plots.COLORS["layer"], lw=2, label="average of σ²_B")
    ax_var.set(xlabel="batch variance σ²_B (biased)", ylabel="fraction of batches",
               title="batch variances σ²_B")
    ax_var.legend(loc="upper right", fontsize=8)
    m_line = np.geomspace(sizes[0], sizes[-1], 50)
    ax_sp.plot(m_line, theory_spread(values, m_line), color=plots.COLORS["grey"], label="theory σ/√m")
    ax_sp.plot(sizes, measured, "o", color=plots.COLORS["bn"], ms=5, label="measured")
    mark, = ax_sp.plot([], [], "o", ms=14, mfc="none", mec=plots.COLORS["instance"], mew=2, label="chosen m")
    ax_sp.set(xscale="log", yscale="log", xlabel="batch size m (log scale)",
              ylabel="spread of μ_B (std, log scale)", title="spread of μ_B against m")
    ax_sp.set_xticks(sizes, [str(m) for m in sizes], fontsize=7)
    ax_sp.minorticks_off()
    ticks = [t for t in (0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100)
             if measured.min() / 2 <= t <= measured.max() * 2]
    ax_sp.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax_sp.legend(loc="lower left", fontsize=8)

    def update(m):
        h_mu, h_var = hist[m]
        mu_bars.set_data(values=h_mu)
        var_bars.set_data(values=h_var)
        ax_mu.set_ylim(0, max(h_mu.max() * 1.4, 0.05))           # headroom for the legend
        ax_var.set_ylim(0, max(h_var.max() * 1.4, 0.05))
        avg = stats[m][1].mean()
        var_mean.set_xdata([avg, avg])
        k = int(np.flatnonzero(sizes == m)[0])
        mark.set_data([m], [measured[k]])
        fig.suptitle(f"batch size m = {m}: 2,000 batches of real pre-activations (one feature)")
        theory = theory_spread(values, [m])[0]
        return (f"m = {m}: spread of μ_B {measured[k]:.3f} (theory σ/√m = {theory:.3f}); "
                f"average σ²_B = {avg / var:.2f} × σ² (theory (m−1)/m = {(m - 1) / m:.2f})")

    start = 4 if 4 in sizes else int(sizes[0])
    slider = widgets.SelectionSlider(options=[int(m) for m in sizes], value=start,
                                     description="batch size m", continuous_update=True,
                                     style={"description_width": "initial"},
                                     layout=widgets.Layout(width="50%"))
    return Dashboard(fig, update, m=slider)


# ---------------------------------------------------------------- batch coupling
def coupling(values, example=0, sizes=COUPLING_SIZES, sets=200, seed=0):
    """One example's x̂ = (x − μ_B)/√(σ²_B + ε) when it shares its batch with `sets` random
    sets of m − 1 other examples, for each m in `sizes`. Returns {m: (sets,) array}."""
    rng = np.random.default_rng(seed)
    others = np.delete(np.arange(len(values)), example)
    out = {}
    for m in sizes:                                             # a loop over batch sizes only
        keys = rng.random((sets, len(others)))                  # a random order per set …
        mates = others[np.argpartition(keys, m - 2, axis=1)[:, :m - 1]]    # … keep its first m − 1
        batches = np.concatenate([np.full((sets, 1), values[example]), values[mates]], axis=1)
        mu, var = batches.mean(axis=1), batches.var(axis=1)
        out[m] = (values[example] - mu) / np.sqrt(var + EPS)
    return out


def population_xhat(values, example=0):
    """The example's x̂ if μ_B and σ²_B were the population's μ and σ²."""
    return float((values[example] - values.mean()) / np.sqrt(values.var() + EPS))


def coupling_figure(values, xs, example=0, seed=0):
    """Each dot: the same example's x̂ in one batch; columns: batch sizes. Dashed: its x̂ with
    the population statistics (where the dots gather as m grows)."""
    rng = np.random.default_rng(seed)
    sizes = sorted(xs)
    fig, ax = plots.new_figure(1, 1, width=7.5, height=3.6)
    for i, m in enumerate(sizes):
        jitter = rng.uniform(-0.18, 0.18, len(xs[m]))
        ax.plot(i + jitter, xs[m], "o", ms=3, alpha=0.45, color=plots.COLORS["bn"],
                label="x̂ in one batch" if i == 0 else None)
    ax.axhline(population_xhat(values, example), color=plots.COLORS["black"], ls="--", lw=1,
               label="x̂ with population μ, σ")
    ax.set_xticks(range(len(sizes)), [str(m) for m in sizes])
    ax.set(xlabel="batch size m", ylabel=f"x̂ of example {example}",
           title=f"One example, {len(xs[sizes[0]])} random sets of batchmates per batch size")
    ax.legend(loc="lower right", fontsize=8)
    return fig


# ---------------------------------------------------------------- training at each batch size
def batch_size_runs(data, sizes=TRAIN_SIZES, epochs=1, lr=0.05, seed=0):
    """Both networks at each batch size m, for the same number of epochs (passes over the
    training set): steps = epochs · (N // m). Returns {(m, kind): History}; only the start and
    the end are recorded."""
    n = len(data.x_train)
    runs = {}
    for m in sizes:
        steps = epochs * (n // m)
        for kind in KINDS:
            runs[(m, kind)] = train(network(kind, seed), data, steps=steps, batch_size=m, lr=lr,
                                    record_every=steps, seed=seed, probe_size=10, progress=False)
    return runs


def accuracy_table(runs):
    """(sizes, {kind: final test accuracy per batch size}, steps per batch size)."""
    sizes = np.array(sorted({m for m, _ in runs}))
    acc = {kind: np.array([runs[(m, kind)].final_test_acc for m in sizes]) for kind in KINDS}
    steps = np.array([runs[(m, "bn")].config["steps"] for m in sizes])
    return sizes, acc, steps


def final_loss(history, last=100):
    """Average training loss over the last `last` steps (train-mode batches)."""
    return float(history.loss[-last:].mean())


def batch_size_figure(runs):
    """Test accuracy after one epoch against the batch size, with and without BN."""
    sizes, acc, steps = accuracy_table(runs)
    fig, ax = plots.new_figure(1, 1, width=7.5, height=3.8)
    for kind in KINDS:
        ax.plot(sizes, acc[kind], "o-", color=plots.COLORS[kind], label=LABELS[kind])
    ax.axhline(0.1, color=plots.COLORS["grey"], ls=":", label="chance (10 classes)")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [f"{m}\n({s} steps)" for m, s in zip(sizes, steps)], fontsize=8)
    ax.minorticks_off()
    ax.set(xlabel="batch size m (and the number of steps in one epoch)", ylabel="test accuracy after 1 epoch",
           ylim=(0, 1), title="Same data seen once (1 epoch), different batch sizes")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def batch_of_one_error(data):
    """Try to train a BN network with batches of one; return the ValueError's message."""
    try:
        train(network("bn"), data, steps=1, batch_size=1, lr=0.05, progress=False)
    except ValueError as err:
        return str(err)
    return None


# ---------------------------------------------------------------- exercises
def check_theory_spread(answer, values, m=16):
    """Exercise 1: the theoretical spread of μ_B for batches of m: σ/√m."""
    sd = values.std()
    check(answer, sd / np.sqrt(m), f"spread of μ_B at m = {m}", wrong=[
        (sd / m, "the spread shrinks with the square root of m: σ/√m"),
        (sd ** 2 / m, "σ²/m is the variance of μ_B; the spread (std) is its square root, σ/√m"),
        (sd / np.sqrt(m - 1), "divide by √m, not √(m − 1)"),
    ], rtol=1e-3)


def two_value_reference(a, b, eps=EPS):
    """x̂ for a batch of two values [a, b]."""
    x = np.array([a, b], dtype=np.float64)
    return (x - x.mean()) / np.sqrt(x.var() + eps)


def check_two_values(answer, a=5.0, b=1.0, eps=EPS):
    """Exercise 2: x̂ of a batch of two values; always close to [+1, −1]."""
    x = np.array([a, b], dtype=np.float64)
    mu = x.mean()
    check(answer, two_value_reference(a, b, eps), "x̂ for a batch of two", wrong=[
        ((x - mu) / np.sqrt(x.var(ddof=1) + eps), "σ²_B divides by m (here 2), not m − 1"),
        (x / np.sqrt(x.var() + eps), "subtract μ_B first"),
        ((x - mu) / (x.var() + eps), "divide by √(σ²_B + ε), the square root"),
        (x - mu, "after subtracting μ_B, divide by √(σ²_B + ε)"),
    ], rtol=1e-4)


def check_variance_ratio(answer, values, stats, m=4):
    """Exercise 3: average σ²_B at batch size m over the population σ² (theory (m − 1)/m)."""
    var_b = stats[m][1]
    expected = var_b.mean() / values.var()
    wrong = [(var_b.mean() * m / (m - 1) / values.var(),
              "stats[m][1] already holds σ²_B (biased, divided by m); do not rescale it by m/(m − 1)"),
             (values.var() / var_b.mean(), "the ratio is (average of σ²_B) / σ², not the other way round"),
             ((m - 1) / m, "that is the theory; measure it from stats[4][1] and values.var()")]
    if 2 in stats:
        wrong.append((stats[2][1].mean() / values.var(), f"use the batches of size {m}: stats[{m}]"))
    check(answer, expected, f"average σ²_B / σ² at m = {m}", wrong=wrong, rtol=1e-6, atol=1e-9)
