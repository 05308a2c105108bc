"""Lesson 02 — batch normalization from scratch: 偏差値, the forward pass, ε, the backward pass.

Notation (the notebook's): a batch x of N samples and D features, x: (N, D). Per feature,

    μ  = (1/N) Σ_n x_n                    mean (平均) over the batch, axis 0
    σ² = (1/N) Σ_n (x_n − μ)²             variance (分散), biased: divide by N
    x̂  = (x − μ) / √(σ² + ε)              ε inside the square root
    y  = γ x̂ + β

A deviation score (偏差値) is the same computation on one feature with γ = 10, β = 50 (and ε = 0).
"""
import inspect
import timeit

import numpy as np

from ..checks import NotYet, check
from ..gradcheck import grad_check, rel_error
from ..i18n import N_, _
from ..norm import batchnorm_backward, batchnorm_backward_graph, batchnorm_forward
from ..plots import COLORS, MAX_WIDTH, new_figure


# --------------------------------------------------------------------------- 偏差値 = BN with γ=10, β=50
def class_scores(n=40, seed=0):
    """Test scores (out of 100) of one class of n students: whole numbers, seeded. Shape (n,)."""
    rng = np.random.default_rng(seed)
    return np.clip(np.round(rng.normal(62.0, 14.0, n)), 0, 100)


def deviation_scores(scores):
    """偏差値 = 50 + 10 · (x − μ) / σ, with σ the standard deviation that divides by N."""
    scores = np.asarray(scores, dtype=np.float64)
    return 50.0 + 10.0 * (scores - scores.mean()) / scores.std()


def deviation_scores_by_bn(scores, eps=1e-5):
    """The same scores through bnlib.batchnorm_forward as an (N, 1) batch with γ = 10, β = 50."""
    x = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
    y, _cache = batchnorm_forward(x, np.array([10.0]), np.array([50.0]), eps=eps)
    return y[:, 0]


def plot_deviation_scores(ax, scores):
    """Score (x axis) against deviation score (y axis): the formula as circles, batch norm as crosses.
    Figure text in the current language (bnlib.set_language)."""
    formula, bn = deviation_scores(scores), deviation_scores_by_bn(scores)
    ax.plot(scores, formula, "o", color=COLORS["plain"], markersize=8, label=_("formula: 50 + 10·z"))
    ax.plot(scores, bn, "x", color=COLORS["bn"], markersize=6, label="bnlib.batchnorm_forward, γ=10, β=50")
    for level, text in ((50, _("class mean μ")), (60, "μ + σ"), (40, "μ − σ")):
        ax.axhline(level, color=COLORS["grey"], linewidth=0.8, linestyle=":")
        ax.text(scores.min(), level + 0.6, text, color=COLORS["grey"], fontsize=9)
    ax.set_xlabel(_("test score (points out of 100)"))
    ax.set_ylabel(_("deviation score"))
    ax.set_title(_("Deviation scores are batch norm with γ = 10, β = 50\n(every × sits on a ●)"))
    ax.legend(loc="lower right", fontsize=9)


def deviation_figure(scores):
    """plot_deviation_scores in a figure of its own (plots.new_figure: no ipympl toolbar)."""
    fig, ax = new_figure(width=7.0, height=4.0)
    plot_deviation_scores(ax, scores)
    return fig


# --------------------------------------------------------------------------- the learner's forward pass
def forward_test_batch():
    """A small batch built so that each usual mistake gives a different answer.

    x: (6, 4). Feature 0 is ordinary, feature 1 is large (scores), feature 2 has a tiny
    variance (σ² ≈ ε, so ε matters), feature 3 is negative. γ and β are not 1 and 0.
    """
    rng = np.random.default_rng(2)
    scale = np.array([1.0, 12.0, 0.003, 0.5])
    shift = np.array([0.0, 60.0, 1.0, -2.0])
    x = rng.standard_normal((6, 4)) * scale + shift
    gamma = np.array([1.5, 0.5, 2.0, -1.0])
    beta = np.array([0.1, -0.3, 1.0, 2.0])
    return x, gamma, beta


def wrong_forward_answers(x, gamma, beta, eps=1e-5):
    """(wrong y, hint) for the usual mistakes in the forward pass, x: (N, D)."""
    n = x.shape[0]
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    xc = x - mu
    x_hat = xc / np.sqrt(var + eps)
    mu_rows = x.mean(axis=1, keepdims=True)            # statistics of each sample: layer norm
    x_hat_rows = (x - mu_rows) / np.sqrt(x.var(axis=1, keepdims=True) + eps)
    return [
        (gamma * xc / np.sqrt(var * n / (n - 1) + eps) + beta,
         _("you divided by N − 1. Batch norm in training uses the biased variance: "
           "σ² = mean((x − μ)²), which divides by N (np.var(x, axis=0) with the default ddof=0)")),
        (gamma * xc / np.sqrt(var) + beta,
         _("ε is missing. Write x̂ = (x − μ) / np.sqrt(σ² + eps): ε keeps the division safe "
           "when a feature hardly varies")),
        (gamma * xc / (np.sqrt(var) + eps) + beta,
         _("ε is outside the square root. Add it to the variance first: np.sqrt(σ² + eps), "
           "not np.sqrt(σ²) + eps")),
        (gamma * xc / (var + eps) + beta,
         _("the square root is missing: divide by the standard deviation √(σ² + ε), not by the variance")),
        (gamma * (x - x.mean()) / np.sqrt(x.var() + eps) + beta,
         _("you averaged over the whole array; use axis=0 so each feature (column) gets its own μ and σ²")),
        (gamma * xc / np.sqrt((xc ** 2).mean() + eps) + beta,
         _("your variance is taken over the whole array; use axis=0 so each feature (column) gets its own σ²")),
        (gamma * x_hat_rows + beta,
         _("your mean and variance run over axis 1 (the features of each sample). Batch norm averages "
           "over the batch: axis=0, so μ has one value per feature, shape (D,)")),
        (x_hat,
         _("γ and β are missing: the last step is y = gamma * x_hat + beta")),
        (gamma * x_hat,
         _("β is missing: the last step is y = gamma * x_hat + beta")),
        (x_hat + beta,
         _("γ is missing: the last step is y = gamma * x_hat + beta")),
        (beta * x_hat + gamma,
         _("γ and β are swapped: γ multiplies x̂ and β is added (y = gamma * x_hat + beta)")),
        (gamma * (x - mu) + beta,
         _("x − μ is not divided by the standard deviation: x̂ = (x − μ) / np.sqrt(σ² + eps)")),
    ]


def _call_learner(fn, x, gamma, beta, **kwargs):
    """Run the learner's function on copies (so an in-place edit cannot spoil the test batch)."""
    try:
        return fn(x.copy(), gamma.copy(), beta.copy(), **kwargs)
    except ValueError as e:
        if "broadcast" in str(e):
            raise NotYet(_("{name}: not yet — a shape error inside your function ({error}). "
                           "Usually the mean was taken over axis 1: use axis=0 (the batch axis), so μ and "
                           "σ² have one value per feature, shape (D,), and x − μ works for every row")
                         .format(name="my_batchnorm_forward", error=e)) from e
        raise


def check_forward(fn):
    """Compare the learner's my_batchnorm_forward(x, gamma, beta, eps=1e-5) with bnlib.

    Prints "not attempted" while the function still returns None (its body is `...`);
    raises NotYet with a specific hint for each usual mistake; prints ✓ when correct.
    (Returns None, so the notebook cell shows only the printed line.)
    """
    name = "my_batchnorm_forward"
    x, gamma, beta = forward_test_batch()
    out = _call_learner(fn, x, gamma, beta)
    if out is None or out is Ellipsis:
        print(_("… {name}: not attempted yet — it returns None. Replace the ... with your code and run both "
                "cells again (if you already did, check that the function ends with `return y`)").format(name=name))
        return
    if isinstance(out, tuple):
        raise NotYet(_("{name}: not yet — return only y (bnlib's batchnorm_forward returns (y, cache); "
                       "yours should return the array y)").format(name=name))
    expected, _cache = batchnorm_forward(x, gamma, beta)
    check(out, expected, name, wrong=wrong_forward_answers(x, gamma, beta))
    out_eps = _call_learner(fn, x, gamma, beta, eps=0.1)
    expected_eps, _cache = batchnorm_forward(x, gamma, beta, eps=0.1)
    check(out_eps, expected_eps, _("{name} with eps=0.1").format(name=name),
          wrong=[(expected, _("your function ignores its eps argument: use eps inside, not the number 1e-5"))])


def reference_forward(x, gamma, beta, eps=1e-5):
    """The solution of the notebook's exercise (also bnlib's computation, without input checks)."""
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).mean(axis=0)
    x_hat = (x - mu) / np.sqrt(var + eps)
    return gamma * x_hat + beta


# --------------------------------------------------------------------------- loops against vectors
def batchnorm_forward_loops(x, gamma, beta, eps=1e-5):
    """The forward pass one number at a time, with Python loops — deliberately slow, for comparison.

    Same result as batchnorm_forward(x, gamma, beta, eps)[0] for x: (N, D).
    """
    n, d = x.shape
    y = np.empty_like(x)
    for j in range(d):                                  # each feature ...
        mu = sum(x[i, j] for i in range(n)) / n         # ... its mean over the batch
        var = sum((x[i, j] - mu) ** 2 for i in range(n)) / n
        for i in range(n):                              # ... then each sample
            y[i, j] = gamma[j] * (x[i, j] - mu) / (var + eps) ** 0.5 + beta[j]
    return y


LOOP_TEXT = [  # the English words in batchnorm_forward_loops, for the notebook that prints its source
    N_("The forward pass one number at a time, with Python loops — deliberately slow, for comparison."),
    N_("Same result as batchnorm_forward(x, gamma, beta, eps)[0] for x: (N, D)."),
    N_("each feature ..."),
    N_("... its mean over the batch"),
    N_("... then each sample"),
]


def loop_source():
    """The source of batchnorm_forward_loops as the notebook prints it: the code as it is, its
    docstring and comments in the current language (bnlib.set_language)."""
    source = inspect.getsource(batchnorm_forward_loops)
    for text in LOOP_TEXT:
        source = source.replace(text, _(text))
    return source


def best_time(fn, *args, repeat=5, min_seconds=0.02):
    """Seconds per call of fn(*args): the best of `repeat` rounds of enough calls to last
    `min_seconds`. The minimum is the round least disturbed by other programs on the machine."""
    timer = timeit.Timer(lambda: fn(*args))
    number = 1
    while timer.timeit(number) < min_seconds and number < 10**6:
        number *= 4
    return min(timer.repeat(repeat=repeat, number=number)) / number


def layer_batch(n=60, d=100, seed=0, dtype=np.float64):
    """A batch the size of one hidden layer of the BN paper's network: x (n, d), γ, β (d,)."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, d) + rng.normal(0, 2, d)).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, d).astype(dtype)
    beta = rng.normal(0, 0.5, d).astype(dtype)
    return x, gamma, beta


# --------------------------------------------------------------------------- ε and constant features
def constant_pixels(data, batch_size=60, seed=0):
    """A batch of MNIST images x: (batch_size, 784) and a boolean mask of the pixels that have
    the same value in every image of the batch (mostly the blank border)."""
    rng = np.random.default_rng(seed)
    x = data.x_train[rng.choice(len(data.x_train), batch_size, replace=False)].astype(np.float64)
    constant = (x == x[0]).all(axis=0)
    return x, constant


def normalize_without_eps(x):
    """x̂ = (x − μ) / √σ² with no ε (bnlib refuses ε = 0). A constant feature gives 0/0 = NaN;
    numpy's warning about it is silenced here so the notebook output stays readable."""
    mu, var = x.mean(axis=0), x.var(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x - mu) / np.sqrt(var)


# --------------------------------------------------------------------------- the backward pass
GRAPH_NODES = [  # (name, formula, position (column, row)); formulas marked N_ are translated when drawn
    ("x", N_("x\n(one column:\nN values)"), (0.0, 0.0)),
    ("mu", "μ = mean(x)", (1.0, 1.0)),
    ("xc", "xc = x − μ", (2.0, 0.0)),
    ("var", "σ² = mean(xc²)", (2.75, -1.0)),
    ("inv", "inv = 1/√(σ² + ε)", (4.45, -1.0)),
    ("xhat", N_("x̂ = xc · inv"), (5.0, 0.0)),
    ("gb", "γ, β", (5.8, 1.0)),
    ("y", N_("y = γ x̂ + β"), (6.6, 0.0)),
]
GRAPH_EDGES = [("x", "mu"), ("x", "xc"), ("mu", "xc"), ("xc", "var"), ("var", "inv"),
               ("xc", "xhat"), ("inv", "xhat"), ("xhat", "y"), ("gb", "y")]


GRAPH_COLORS = {"data": COLORS["bn"], "step": COLORS["layer"], "param": COLORS["plain"],
                "backward": COLORS["instance"]}


def _node_color(name):
    return GRAPH_COLORS["data"] if name in ("x", "y") else (
        GRAPH_COLORS["param"] if name == "gb" else GRAPH_COLORS["step"])


def draw_graph(ax):
    """The forward computational graph of batch norm for one feature (one column of N values):
    boxes are nodes, arrows carry values forward (left to right); the backward pass sends
    gradients along the same arrows in reverse. Box colours: input and output (blue), the
    intermediate steps (green), the learned parameters (orange)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    boxes = {}
    for name, text, (cx, cy) in GRAPH_NODES:
        boxes[name] = ax.text(cx, cy, _(text), ha="center", va="center", fontsize=10, zorder=3,
                              bbox=dict(boxstyle="round,pad=0.45", facecolor="white", edgecolor=_node_color(name),
                                        linewidth=1.8))
    for a, b in GRAPH_EDGES:                 # arrows from box edge to box edge
        ax.annotate("", xy=(0.5, 0.5), xycoords=boxes[b], xytext=(0.5, 0.5), textcoords=boxes[a],
                    arrowprops=dict(arrowstyle="-|>", color=COLORS["grey"], lw=1.4, shrinkA=3, shrinkB=3,
                                    patchA=boxes[a].get_bbox_patch(), patchB=boxes[b].get_bbox_patch()))
    ax.annotate("", xy=(0.3, -1.75), xytext=(6.3, -1.75),
                arrowprops=dict(arrowstyle="-|>", color=GRAPH_COLORS["backward"], lw=1.6, linestyle="--"))
    ax.text(3.3, -1.6, _("backward pass: gradients flow right to left, through every arrow"),
            ha="center", va="bottom", fontsize=9, color=GRAPH_COLORS["backward"])
    handles = [Patch(facecolor="white", edgecolor=GRAPH_COLORS["data"], linewidth=1.8, label=_("BN's input and output")),
               Patch(facecolor="white", edgecolor=GRAPH_COLORS["step"], linewidth=1.8, label=_("intermediate step")),
               Patch(facecolor="white", edgecolor=GRAPH_COLORS["param"], linewidth=1.8, label=_("learned parameters")),
               Line2D([], [], color=COLORS["grey"], lw=1.4, label=_("forward: a value flows along the arrow"))]
    ax.legend(handles=handles, loc="upper center", ncol=2, fontsize=9, frameon=False)
    ax.set_xlim(-0.6, 7.3)
    ax.set_ylim(-2.0, 2.45)
    ax.axis("off")
    ax.set_title(_("Batch norm as a computational graph (one feature; means run over the batch)"))


def graph_figure():
    """draw_graph in a figure of its own (plots.new_figure: no ipympl toolbar)."""
    fig, ax = new_figure(width=MAX_WIDTH, height=3.6)
    draw_graph(ax)
    return fig


def backward_test_case(n=8, d=3, seed=1):
    """A float64 batch for gradient checks: x (n, d) on different scales, γ, β (d,), dy (n, d)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * np.array([1.0, 5.0, 0.2])[:d] + np.array([0.5, -3.0, 2.0])[:d]
    gamma = rng.uniform(0.5, 2.0, d)
    beta = rng.standard_normal(d)
    dy = rng.standard_normal((n, d))
    return x, gamma, beta, dy


def gradient_check(x, gamma, beta, dy):
    """Relative errors between the closed-form gradients and numerical ones (float64).

    Returns {"dx": e, "dγ": e, "dβ": e} with e = max |a − b| / max(1e-8, |a| + |b|).
    """
    _y, cache = batchnorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = batchnorm_backward(dy, cache)
    x, gamma, beta = x.copy(), gamma.copy(), beta.copy()       # grad_check perturbs in place
    num_dx = grad_check(lambda v: batchnorm_forward(v, gamma, beta)[0], x, dy)
    num_dgamma = grad_check(lambda v: batchnorm_forward(x, v, beta)[0], gamma, dy)
    num_dbeta = grad_check(lambda v: batchnorm_forward(x, gamma, v)[0], beta, dy)
    return {"dx": rel_error(dx, num_dx), "dγ": rel_error(dgamma, num_dgamma),
            "dβ": rel_error(dbeta, num_dbeta)}


def compare_backward(x, gamma, beta, dy):
    """Largest relative error between the graph form and the closed form, over dx, dγ, dβ."""
    _y, cache = batchnorm_forward(x, gamma, beta)
    closed = batchnorm_backward(dy, cache)
    graph = batchnorm_backward_graph(dy, cache)
    return max(rel_error(a, b) for a, b in zip(closed, graph))


def time_backward(n=60, d=100, dtype=np.float32, seed=0):
    """Seconds per call of the closed form and of the graph form on an (n, d) batch:
    returns (closed_seconds, graph_seconds)."""
    x, gamma, beta = layer_batch(n, d, seed, dtype)
    _y, cache = batchnorm_forward(x, gamma, beta)
    dy = np.random.default_rng(seed + 1).standard_normal((n, d)).astype(dtype)
    closed = best_time(batchnorm_backward, dy, cache)
    graph = best_time(batchnorm_backward_graph, dy, cache)
    return closed, graph


# --------------------------------------------------------------------------- end-of-notebook exercises
def exercise_scores():
    """The class for exercise 1: scores (40,)."""
    return class_scores(n=40, seed=7)


def check_top_deviation_score(answer):
    """Exercise 1: the 偏差値 of the student with the highest score in exercise_scores()."""
    s = exercise_scores()
    top = s.max()
    mu, sd, sd1 = s.mean(), s.std(), s.std(ddof=1)
    check(answer, 50 + 10 * (top - mu) / sd, _("偏差値 of the top student"), wrong=[
        (50 + 10 * (top - mu) / sd1, _("you used the standard deviation that divides by N − 1 (ddof=1). "
                                       "Here, as in batch norm, divide by N: np.std(scores)")),
        ((top - mu) / sd, _("that is z, the standardized score. The 偏差値 is 50 + 10 · z")),
        (10 * (top - mu) / sd, _("you scaled by 10 (γ) but did not add 50 (β)")),
        (50 + (top - mu) / sd, _("you added 50 (β) but did not multiply z by 10 (γ)")),
        (50 + 10 * (top - mu) / sd ** 2, _("you divided by the variance σ²; divide by the standard deviation σ")),
    ])


def exercise_backward_inputs():
    """Inputs for exercises 2 and 3: dy (5, 2), x̂ (5, 2), γ (2,), σ² (2,), ε."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 2)) * np.array([2.0, 0.5]) + np.array([1.0, -1.0])
    var = x.var(axis=0)
    eps = 1e-5
    x_hat = (x - x.mean(axis=0)) / np.sqrt(var + eps)
    gamma = np.array([1.5, 0.8])
    dy = rng.standard_normal((5, 2))
    return dy, x_hat, gamma, var, eps


def check_dgamma_dbeta(dgamma, dbeta):
    """Exercise 2: dγ = Σ_n dy·x̂ and dβ = Σ_n dy (sums over the batch, axis 0)."""
    dy, x_hat, gamma, _var, _eps = exercise_backward_inputs()
    check(dgamma, (dy * x_hat).sum(axis=0), "dgamma", wrong=[
        ((dy * x_hat).mean(axis=0), _("you averaged; every sample adds its own share, so sum over the batch")),
        (dy.sum(axis=0), _("that is dβ. For dγ, multiply dy by x̂ before summing (y = γ x̂ + β)")),
        ((dy * x_hat * gamma).sum(axis=0), _("no γ here: ∂y/∂γ = x̂, so dγ = Σ dy · x̂")),
    ])
    check(dbeta, dy.sum(axis=0), "dbeta", wrong=[
        (dy.mean(axis=0), _("you averaged; every sample adds its own share, so sum over the batch")),
        ((dy * x_hat).sum(axis=0), _("that is dγ. ∂y/∂β = 1, so dβ = Σ dy")),
    ])


def check_closed_form_dx(answer):
    """Exercise 3: dx = (γ/√(σ²+ε)) · (dy − mean(dy) − x̂ · mean(dy · x̂)), means over axis 0."""
    dy, x_hat, gamma, var, eps = exercise_backward_inputs()
    n = dy.shape[0]
    inv = 1.0 / np.sqrt(var + eps)
    m_dy, m_dyx = dy.mean(axis=0), (dy * x_hat).mean(axis=0)
    expected = gamma * inv * (dy - m_dy - x_hat * m_dyx)
    product_of_means = m_dy * x_hat.mean(axis=0)          # ≈ 0, because mean(x̂) = 0
    check(answer, expected, "dx", wrong=[
        (inv * (dy - m_dy - x_hat * m_dyx), _("γ is missing: the gradient reaching x̂ is γ · dy")),
        (gamma * inv * (dy - m_dy - x_hat * product_of_means),
         _("the last term is zero or missing. It is − x̂ · mean(dy · x̂), and mean(dy · x̂) is the mean of "
           "the product, not the product of the means (mean(x̂) is 0, so that product vanishes)")),
        (gamma * inv * (dy - x_hat * m_dyx), _("the term − mean(dy) is missing (it comes from μ depending on x)")),
        (gamma * inv * (dy - n * m_dy - x_hat * n * m_dyx), _("use means (divide by N), not sums")),
        (gamma / (var + eps) * (dy - m_dy - x_hat * m_dyx), _("divide by √(σ² + ε), not by σ² + ε")),
        (gamma * inv * (dy - dy.mean() - x_hat * (dy * x_hat).mean()),
         _("you averaged over the whole array; use axis=0 so each feature (column) gets its own means")),
        (gamma * inv * (dy - dy.mean(axis=1, keepdims=True) - x_hat * (dy * x_hat).mean(axis=1, keepdims=True)),
         _("the means run over the batch: axis=0, not axis=1")),
    ])


def reference_dgamma_dbeta():
    dy, x_hat, _gamma, _var, _eps = exercise_backward_inputs()
    return (dy * x_hat).sum(axis=0), dy.sum(axis=0)
