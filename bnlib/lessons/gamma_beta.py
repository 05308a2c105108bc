"""Lesson 03 — γ and β: where batch norm puts the sigmoid's inputs, and what training chooses.

Notation (the notebook's): z is a batch of pre-activations (BN's input), shape (N, D)
(N samples, D units). Per unit, batch norm computes

    x̂ = (z − μ) / √(σ² + ε)            normalized z (μ, σ²: mean and biased variance over the batch)
    y = γ x̂ + β                         BN's output = what the sigmoid receives
    s = σ(y) = 1 / (1 + e^(−y))         the sigmoid's output

Regions of the sigmoid used throughout (y is the sigmoid's input):
    near-linear middle   |y| ≤ 1          the slope σ'(y) stays above 3/4 of its top value 1/4,
                                          and the curve stays within 0.02 of a straight line
    saturated tails      σ(y) < 0.05 or σ(y) > 0.95, i.e. |y| > ln 19 ≈ 2.94 (the slope is
                                          below 0.048: almost no gradient passes)
"""
import ipywidgets as widgets
import numpy as np

from ..checks import check
from ..data import load_mnist5k
from ..i18n import _
from ..model import MLP
from ..norm import batchnorm_forward
from ..plots import COLORS, MAX_WIDTH, new_figure
from ..train import train
from ..widgets import Dashboard

MIDDLE = 1.0                      # |y| ≤ MIDDLE: the near-linear middle
SATURATED = float(np.log(19.0))   # |y| > ln 19 ⇔ σ(y) < 0.05 or σ(y) > 0.95
SIZES = [784, 100, 100, 100, 10]


def sigmoid(y):
    """σ(y) = 1 / (1 + e^(−y))."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-y))


# --------------------------------------------------------------------------- a real batch
def first_layer_preactivations(n=500, seed=0):
    """z = x W + b of the first hidden layer of the BN paper's network (784-100-..., untrained,
    Xavier initialization, `seed`) for the first n MNIST-5k test images. Shape (n, 100), float64."""
    data = load_mnist5k()
    model = MLP(SIZES, activation="sigmoid", seed=seed)
    return model.layers[0].forward(data.x_test[:n]).astype(np.float64)


def normalize(z, eps=1e-5):
    """x̂ = (z − μ)/√(σ² + ε) per unit (column) of z: (N, D)."""
    mu, var = z.mean(axis=0), z.var(axis=0)
    return (z - mu) / np.sqrt(var + eps)


def region_fractions(y):
    """Where the sigmoid inputs y (any shape) land. Returns a dict:
    middle (fraction with |y| ≤ 1), saturated (fraction with σ(y) < 0.05 or > 0.95), of which
    low (σ(y) < 0.05) and high (σ(y) > 0.95); p15, p50, p85 (percentiles of y); r2 (how well a
    straight line fits σ(y) against y: 1.0 means the sigmoid acts exactly like a linear function
    on these values)."""
    y = np.ravel(y)
    s = sigmoid(y)
    p15, p50, p85 = np.percentile(y, (15, 50, 85))
    r = np.corrcoef(y, s)[0, 1] if y.std() > 0 and s.std() > 0 else 1.0
    low, high = float(np.mean(y < -SATURATED)), float(np.mean(y > SATURATED))
    return dict(middle=float(np.mean(np.abs(y) <= MIDDLE)), saturated=low + high, low=low, high=high,
                p15=float(p15), p50=float(p50), p85=float(p85), r2=float(r * r))


def saturated_fraction(z, gamma, beta=0.0, eps=1e-5):
    """Fraction of y = γ x̂ + β (x̂: z normalized per unit) in the sigmoid's saturated tails."""
    return region_fractions(gamma * normalize(z, eps) + beta)["saturated"]


def summary_line(gamma, beta, eps, f):
    """One line: the slider values and where the sigmoid inputs land (f: region_fractions)."""
    return _("γ = {gamma:.2f}, β = {beta:+.2f}, ε = {eps:.0e}: {middle:.0%} of sigmoid inputs in the "
             "near-linear middle (|y| ≤ 1), {saturated:.1%} in the saturated tails (σ < 0.05 or > 0.95); "
             "15–85th percentile of y: [{p15:.2f}, {p85:.2f}]; straight-line fit R² = {r2:.3f}").format(
        gamma=gamma, beta=beta, eps=eps, middle=f["middle"], saturated=f["saturated"], p15=f["p15"],
        p85=f["p85"], r2=f["r2"])


# --------------------------------------------------------------------------- the dashboard
SHADE = {"tails": dict(color=COLORS["grey"], alpha=0.32, linewidth=0),
         "middle": dict(color=COLORS["layer"], alpha=0.25, linewidth=0)}


def _shade_regions(ax):
    ax.axvspan(-8, -SATURATED, **SHADE["tails"])
    ax.axvspan(SATURATED, 8, **SHADE["tails"])
    ax.axvspan(-MIDDLE, MIDDLE, **SHADE["middle"])


def sigmoid_dashboard(z, n_points=300):
    """Sliders for γ, β and ε on the batch z: (N, D) of pre-activations (BN's input).

    Left: histogram of y = γ x̂ + β (BN's output, the sigmoid's input). Middle: the sigmoid
    curve, its near-linear middle and saturated tails shaded, a sample of the values as dots and
    their 15–85th percentile span as a thick stretch of the curve. Right: histogram of σ(y), with
    the saturated outputs (σ < 0.05 or > 0.95) shaded. Returns a bnlib Dashboard.
    """
    from matplotlib.patches import Patch

    z = np.asarray(z, dtype=np.float64)
    mu, var = z.mean(axis=0), z.var(axis=0)
    zc = (z - mu).ravel()                                   # precomputed: a slider only rescales it
    var_b = np.broadcast_to(var, z.shape).ravel()
    sample = np.random.default_rng(0).choice(zc.size, n_points, replace=False)
    y_edges = np.linspace(-8, 8, 65)
    s_edges = np.linspace(0, 1, 41)
    curve_y = np.linspace(-8, 8, 400)

    fig, (ax_y, ax_c, ax_s) = new_figure(1, 3, width=MAX_WIDTH, height=3.8,
                                         margins=(0.075, 0.975, 0.21, 0.76, 0.42, 0))
    for ax in (ax_y, ax_c):
        _shade_regions(ax)
    hist_y = ax_y.stairs(np.zeros(64), y_edges, fill=True, color=COLORS["bn"], alpha=0.75, label=_("y = γx̂ + β"))
    ax_y.set(xlim=(-8, 8), xlabel=_("sigmoid input y\n(beyond ±8: counted in the end bars)"),
             ylabel=_("values per bin (tallest bar = 1)"), ylim=(0, 1.4))
    ax_y.set_title(_("What the sigmoid receives"), fontsize=10)
    ax_y.legend(loc="upper left", fontsize=9)

    (curve,) = ax_c.plot(curve_y, sigmoid(curve_y), color=COLORS["black"], linewidth=1.2, zorder=2, label="σ(y)")
    (span,) = ax_c.plot([], [], color=COLORS["bn"], linewidth=10, alpha=0.45, solid_capstyle="butt",
                        zorder=3, label=_("15–85th percentile of y"))
    dots = ax_c.scatter(np.zeros(n_points), np.zeros(n_points), s=15, color=COLORS["plain"], alpha=0.8,
                        edgecolors="none", zorder=4,
                        label=_("{n} of the values").format(n=n_points))
    ax_c.set(xlim=(-8, 8), ylim=(-0.03, 1.03), xlabel=_("sigmoid input y"), ylabel=_("sigmoid output σ(y)"))
    ax_c.set_title(_("Where the values land\non the sigmoid"), fontsize=10)
    # one legend above the panels for the shading and the middle panel (a narrow panel has no
    # corner free of the curve's dots)
    fig.legend(handles=[Patch(**SHADE["middle"], label=_("near-linear middle: |y| ≤ 1")),
                        Patch(**SHADE["tails"], label=_("saturated tails: σ(y) < 0.05 or > 0.95 (|y| > 2.94)")),
                        curve, span, dots], loc="upper center", ncol=3, fontsize=9, frameon=False)

    hist_s = ax_s.stairs(np.zeros(40), s_edges, fill=True, color=COLORS["layer"], alpha=0.75, label="σ(y)")
    ax_s.axvspan(0, 0.05, **SHADE["tails"], label=_("saturated output"))
    ax_s.axvspan(0.95, 1, **SHADE["tails"])
    ax_s.set(xlim=(0, 1), xlabel=_("sigmoid output σ(y)"), ylabel=_("values per bin (tallest bar = 1)"),
             ylim=(0, 1.4))
    ax_s.set_title(_("What the sigmoid sends on"), fontsize=10)
    ax_s.legend(loc="upper center", fontsize=9)

    def update(gamma, beta, eps):
        y = gamma * zc / np.sqrt(var_b + eps) + beta
        f = region_fractions(y)
        h_y = np.histogram(np.clip(y, -8, 8), y_edges)[0]
        h_s = np.histogram(sigmoid(y), s_edges)[0]
        hist_y.set_data(h_y / h_y.max())                    # tallest bar = 1: fixed axes, below the legends
        hist_s.set_data(h_s / h_s.max())
        stretch = np.linspace(f["p15"], f["p85"], 50)
        span.set_data(stretch, sigmoid(stretch))
        dots.set_offsets(np.column_stack([y[sample], sigmoid(y[sample])]))
        return summary_line(gamma, beta, eps, f)

    changing = [hist_y, hist_s, span, dots]
    controls = dict(
        gamma=widgets.FloatSlider(value=1.0, min=0.1, max=5.0, step=0.05, description="γ", readout_format=".2f"),
        beta=widgets.FloatSlider(value=0.0, min=-5.0, max=5.0, step=0.1, description="β", readout_format="+.1f"),
        eps=widgets.FloatLogSlider(value=1e-5, base=10, min=-8, max=0, step=0.5, description="ε",
                                   readout_format=".0e"),
    )
    return Dashboard(fig, update, animated=changing, **controls)


# --------------------------------------------------------------------------- BN can undo itself
def undo(z, eps=1e-5):
    """Batch norm with γ = √(σ² + ε) and β = μ (per unit of z: (N, D)) gives back z.
    Returns (y, gamma, beta)."""
    z = np.asarray(z, dtype=np.float64)
    gamma, beta = np.sqrt(z.var(axis=0) + eps), z.mean(axis=0)
    y, _cache = batchnorm_forward(z, gamma, beta, eps=eps)
    return y, gamma, beta


# --------------------------------------------------------------------------- what training chooses
def train_bn_network(steps=1000, lr=0.5, batch_size=60, seed=0):
    """Train the BN paper's network (784-100-100-100-10, sigmoid, BN before each sigmoid) on
    MNIST-5k with plain SGD. Returns (model, history, data)."""
    data = load_mnist5k()
    model = MLP(SIZES, activation="sigmoid", norm="batch", seed=seed)
    history = train(model, data, steps=steps, batch_size=batch_size, lr=lr, record_every=steps,
                    seed=seed, progress=False)
    return model, history, data


def learned_parameters(model):
    """[(γ, β), ...] per hidden layer, float64 copies."""
    return [(bn.gamma.astype(np.float64), bn.beta.astype(np.float64)) for bn in model.norm_layers()]


LAYER_COLORS = (COLORS["bn"], COLORS["layer"], COLORS["group"])   # not orange: orange means "without BN"


def plot_learned(ax_gamma, ax_beta, model):
    """Each layer's learned γ (left) and β (right), sorted from smallest to largest, against the
    start values γ = 1, β = 0. One line per hidden layer: its 100 values in increasing order."""
    for i, (gamma, beta) in enumerate(learned_parameters(model)):
        rank = np.arange(1, gamma.size + 1)
        color = LAYER_COLORS[i % len(LAYER_COLORS)]
        label = _("hidden layer {layer}").format(layer=i + 1)
        ax_gamma.plot(rank, np.sort(gamma), color=color, linewidth=2, label=label)
        ax_beta.plot(rank, np.sort(beta), color=color, linewidth=2, label=label)
    ax_gamma.axhline(1.0, color=COLORS["grey"], linestyle="--", linewidth=1, label=_("start value γ = 1"))
    ax_beta.axhline(0.0, color=COLORS["grey"], linestyle="--", linewidth=1, label=_("start value β = 0"))
    ax_gamma.set(xlabel=_("unit, sorted by its γ (smallest first)"), ylabel=_("learned γ"),
                 title=_("Learned γ per layer"))
    ax_beta.set(xlabel=_("unit, sorted by its β (smallest first)"), ylabel=_("learned β"),
                title=_("Learned β per layer"))
    ax_gamma.legend(fontsize=9)
    ax_beta.legend(fontsize=9)


def learned_figure(model):
    """plot_learned in a figure of its own (plots.new_figure: no ipympl toolbar)."""
    fig, (ax_gamma, ax_beta) = new_figure(1, 2, width=MAX_WIDTH, height=3.6)
    plot_learned(ax_gamma, ax_beta, model)
    return fig


def parameter_lines(params, report):
    """Text, one block per hidden layer: the learned γ and β (range and mean) from
    learned_parameters(model), and where the sigmoid inputs land with γ = 1, β = 0 (x̂) and with
    the learned γ, β, from layer_report(model, x)."""
    lines = []
    for i, ((g, b), (fixed, learned)) in enumerate(zip(params, report)):
        lines.append(_("hidden layer {layer}: γ from {g_min:.2f} to {g_max:.2f} (mean {g_mean:.2f}), "
                       "β from {b_min:+.2f} to {b_max:+.2f} (mean {b_mean:+.2f})").format(
            layer=i + 1, g_min=g.min(), g_max=g.max(), g_mean=g.mean(), b_min=b.min(), b_max=b.max(),
            b_mean=b.mean()))
        lines.append(_("   γ = 1, β = 0 → learned γ, β:  saturated {sat_0:.1%} → {sat_1:.1%},  "
                       "middle {mid_0:.0%} → {mid_1:.0%},  R² {r2_0:.3f} → {r2_1:.3f}").format(
            sat_0=fixed["saturated"], sat_1=learned["saturated"], mid_0=fixed["middle"], mid_1=learned["middle"],
            r2_0=fixed["r2"], r2_1=learned["r2"]))
    return "\n".join(lines)


def sigmoid_inputs(model, x):
    """For each hidden layer: (x̂, y) on the batch x — x̂ is what a sigmoid would receive with
    γ = 1, β = 0, y = γ x̂ + β what it receives with the learned γ, β. Batch statistics of x;
    the running averages are left untouched."""
    bns = model.norm_layers()
    for bn in bns:
        bn.track_running_stats = False
    try:
        model.train()
        _out, pre, _post = model.forward(x, keep=True)
    finally:
        for bn in bns:
            bn.track_running_stats = True
    out = []
    for y, (gamma, beta) in zip(pre, learned_parameters(model)):
        y = y.astype(np.float64)
        out.append(((y - beta) / gamma, y))
    return out


def layer_report(model, x):
    """Per hidden layer: region_fractions of x̂ (γ = 1, β = 0) and of y (learned γ, β)."""
    return [(region_fractions(x_hat), region_fractions(y)) for x_hat, y in sigmoid_inputs(model, x)]


# --------------------------------------------------------------------------- exercises
# Each check_* prints ✓ / "not attempted", or raises NotYet with a hint; it returns None so the
# notebook cell shows only the printed line.
def exercise_unit():
    """Exercise 1: one unit's pre-activations over a batch of 8 samples, shape (8,)."""
    return np.array([0.8, -1.2, 2.5, 0.1, -0.4, 1.9, -2.2, 0.7])


def check_affine(answer):
    """Exercise 1: y = γ x̂ + β with γ = 2, β = −1 for exercise_unit() (ε = 1e-5, divide by N)."""
    z = exercise_unit()
    gamma, beta, eps = 2.0, -1.0, 1e-5
    zc = z - z.mean()
    x_hat = zc / np.sqrt(z.var() + eps)
    check(answer, gamma * x_hat + beta, "y = γ x̂ + β", wrong=[
        (gamma * z + beta, _("normalize first: x̂ = (z − μ)/√(σ² + ε), then y = γ x̂ + β")),
        (gamma * x_hat - beta, _("β = −1: subtract 1, don't add it")),
        (gamma * zc / np.sqrt(z.var(ddof=1) + eps) + beta, _("divide by N in the variance (np.var's default), "
                                                            "not N − 1")),
        (beta * x_hat + gamma, _("γ and β are swapped: y = γ · x̂ + β with γ = 2, β = −1")),
        (gamma * x_hat, _("β is missing: add β = −1")),
        (x_hat + beta, _("γ is missing: multiply x̂ by γ = 2")),
        (x_hat, _("that is x̂; now apply γ = 2 and β = −1")),
    ])


def exercise_undo_batch():
    """Exercise 2: a batch z: (6, 3) whose features vary only a little (σ of about 0.01)."""
    rng = np.random.default_rng(5)
    return rng.standard_normal((6, 3)) * 0.01 + np.array([0.3, -0.2, 1.0])


def check_undo(gamma, beta):
    """Exercise 2: the γ and β (shape (3,)) for which batch norm (ε = 1e-5) returns z unchanged."""
    z = exercise_undo_batch()
    eps = 1e-5
    mu, var = z.mean(axis=0), z.var(axis=0)
    check(gamma, np.sqrt(var + eps), _("gamma that undoes BN"), wrong=[
        (np.sqrt(var), _("close, but BN divided by √(σ² + ε), so γ must be √(σ² + ε), not σ — with a variance "
                         "this small, ε matters")),
        (np.sqrt(z.var(axis=0, ddof=1) + eps), _("BN used the variance that divides by N; use np.var's default")),
        (var + eps, _("take the square root: γ = √(σ² + ε)")),
        (var, _("take the square root, and include ε: γ = √(σ² + ε)")),
        (mu, _("γ and β are swapped: γ undoes the division (√(σ² + ε)), β undoes the subtraction (μ)")),
    ], rtol=1e-6, atol=1e-9)
    check(beta, mu, _("beta that undoes BN"), wrong=[
        (np.sqrt(var + eps), _("γ and β are swapped: β must put the mean back, β = μ")),
        (np.zeros_like(mu), _("β = 0 keeps the mean at 0; to undo BN, β must put the mean back: β = μ")),
        (-mu, _("check the sign: y = γ x̂ + β must equal z, so β = +μ")),
    ], rtol=1e-6, atol=1e-9)


def check_median_beta(answer):
    """Exercise 3: with γ = 1 and median x̂ = 0, the β that puts the median σ(y) at 0.9: β = ln 9
    (to three decimals: within 0.001)."""
    check(answer, np.log(9.0), _("β for a median output of 0.9"), wrong=[
        (0.9, _("0.9 is the output you want; β is the input y with σ(y) = 0.9. Solve 1/(1 + e^(−β)) = 0.9")),
        (-np.log(9.0), _("check the sign: σ(β) = 0.9 > 0.5 needs β > 0")),
        (np.log(0.9), _("ln 0.9 is not it: solve 1/(1 + e^(−β)) = 0.9 for e^(−β) first, then take the logarithm")),
        (-np.log(0.9), _("solve 1/(1 + e^(−β)) = 0.9 for e^(−β) first, then take the logarithm")),
    ], rtol=0, atol=1e-3)


def gamma_for_saturation(z, target=0.10, eps=1e-5, one_tail=False):
    """The smallest γ (β = 0) with at least `target` of the values γx̂ in the saturated tails."""
    x_hat = normalize(z, eps).ravel()
    size = np.abs(x_hat) if not one_tail else x_hat
    k = int(np.ceil(target * x_hat.size))            # need k values beyond the threshold
    kth_largest = np.sort(size)[-k]
    return SATURATED / kth_largest * (1 + 1e-9)     # just above: the tails are |y| > ln 19


def check_gamma_for_saturation(answer, z):
    """Exercise 4: the smallest γ (β = 0, ε = 1e-5) putting ≥ 10% of z's values in the saturated
    tails, to ±0.02."""
    check(answer, gamma_for_saturation(z), _("γ for 10% saturated"), wrong=[
        (gamma_for_saturation(z, one_tail=True), _("count both tails: σ(y) < 0.05 and σ(y) > 0.95")),
        (gamma_for_saturation(z, target=0.9), _("10% should be in the tails, not 90%")),
    ], rtol=0, atol=0.02)
