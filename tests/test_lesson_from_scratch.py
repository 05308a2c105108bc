"""Lesson 02 (bnlib.lessons.from_scratch): the forward-pass check accepts the solution and names
each usual mistake; the backward helpers agree; the end-of-notebook exercises check correctly."""
import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import bnlib  # noqa: E402
from bnlib.checks import NotYet  # noqa: E402
from bnlib.lessons import from_scratch as fs  # noqa: E402


# --------------------------------------------------------------------------- 偏差値
def test_deviation_scores_are_batchnorm_with_gamma_10_beta_50():
    scores = fs.class_scores()
    assert scores.shape == (40,)
    gap = np.abs(fs.deviation_scores(scores) - fs.deviation_scores_by_bn(scores)).max()
    assert 0 < gap < 1e-4
    assert np.abs(fs.deviation_scores(scores) - fs.deviation_scores_by_bn(scores, eps=1e-12)).max() < 1e-9
    assert fs.deviation_scores(scores).mean() == pytest.approx(50)
    assert fs.deviation_scores(scores).std() == pytest.approx(10)


def test_deviation_figure_draws():
    fig = fs.deviation_figure(fs.class_scores())
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
    assert fig.get_figwidth() >= 6 and all(t.get_fontsize() >= 9 for t in ax.get_legend().get_texts())
    assert "SD" not in " ".join(t.get_text() for t in ax.texts)
    plt.close(fig)


# --------------------------------------------------------------------------- the learner's forward pass
def empty(x, gamma, beta, eps=1e-5):
    ...


def solution(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).mean(axis=0)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta


def in_place(x, gamma, beta, eps=1e-5):        # correct, but edits x: the check must not mind
    x -= x.mean(axis=0)
    x /= np.sqrt((x ** 2).mean(axis=0) + eps)
    return gamma * x + beta


MISTAKES = {
    "n_minus_1": (lambda x, g, b, eps=1e-5: g * (x - x.mean(0)) / np.sqrt(np.var(x, 0, ddof=1) + eps) + b,
                  "N − 1"),
    "no_eps": (lambda x, g, b, eps=1e-5: g * (x - x.mean(0)) / np.sqrt(x.var(0)) + b, "ε is missing"),
    "eps_outside": (lambda x, g, b, eps=1e-5: g * (x - x.mean(0)) / (np.sqrt(x.var(0)) + eps) + b,
                    "outside the square root"),
    "std_plus_eps": (lambda x, g, b, eps=1e-5: g * (x - x.mean(0)) / (x.std(0) + eps) + b,
                     "outside the square root"),
    "no_sqrt": (lambda x, g, b, eps=1e-5: g * (x - x.mean(0)) / (x.var(0) + eps) + b, "square root is missing"),
    "axis1_keepdims": (lambda x, g, b, eps=1e-5: g * (x - x.mean(1, keepdims=True))
                       / np.sqrt(x.var(1, keepdims=True) + eps) + b, "axis 1"),
    "axis1": (lambda x, g, b, eps=1e-5: g * (x - x.mean(axis=1)) / np.sqrt(x.var(axis=1) + eps) + b, "axis=0"),
    "no_axis": (lambda x, g, b, eps=1e-5: g * (x - x.mean()) / np.sqrt(x.var() + eps) + b,
                "averaged over the whole array; use axis=0"),
    "var_no_axis": (lambda x, g, b, eps=1e-5: g * (x - x.mean(0)) / np.sqrt(((x - x.mean(0)) ** 2).mean() + eps) + b,
                    "variance is taken over the whole array"),
    "no_gamma_beta": (lambda x, g, b, eps=1e-5: (x - x.mean(0)) / np.sqrt(x.var(0) + eps), "γ and β are missing"),
    "no_beta": (lambda x, g, b, eps=1e-5: g * (x - x.mean(0)) / np.sqrt(x.var(0) + eps), "β is missing"),
    "no_gamma": (lambda x, g, b, eps=1e-5: (x - x.mean(0)) / np.sqrt(x.var(0) + eps) + b, "γ is missing"),
    "swapped": (lambda x, g, b, eps=1e-5: b * (x - x.mean(0)) / np.sqrt(x.var(0) + eps) + g, "swapped"),
    "no_division": (lambda x, g, b, eps=1e-5: g * (x - x.mean(0)) + b, "not divided"),
    "fixed_eps": (lambda x, g, b, eps=1e-5: g * (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5) + b,
                  "ignores its eps"),
    "returns_tuple": (lambda x, g, b, eps=1e-5: bnlib.batchnorm_forward(x, g, b, eps), "return only y"),
}


def test_check_forward_not_attempted_prints_and_does_not_raise(capsys):
    assert fs.check_forward(empty) is None
    assert "not attempted" in capsys.readouterr().out


@pytest.mark.parametrize("fn", [solution, in_place, fs.reference_forward], ids=lambda f: f.__name__)
def test_check_forward_accepts_correct_functions(fn, capsys):
    fs.check_forward(fn)
    out = capsys.readouterr().out
    assert out.count("✓") == 2, out


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_check_forward_names_each_usual_mistake(mistake):
    fn, hint = MISTAKES[mistake]
    with pytest.raises(NotYet, match=hint):
        fs.check_forward(fn)


def test_test_batch_separates_every_mistake():
    x, g, b = fs.forward_test_batch()
    answers = [bnlib.batchnorm_forward(x, g, b)[0]] + [w for w, _ in fs.wrong_forward_answers(x, g, b)]
    for i, j in itertools.combinations(range(len(answers)), 2):
        assert not np.allclose(answers[i], answers[j], rtol=1e-4, atol=1e-6), (i, j)


def test_a_learner_error_that_is_not_about_shapes_propagates():
    def broken(x, gamma, beta, eps=1e-5):
        raise ZeroDivisionError("oops")
    with pytest.raises(ZeroDivisionError):
        fs.check_forward(broken)


# --------------------------------------------------------------------------- loops, ε
def test_loop_version_equals_vectorized():
    x, g, b = fs.layer_batch(n=20, d=10)
    assert np.abs(fs.batchnorm_forward_loops(x, g, b) - bnlib.batchnorm_forward(x, g, b)[0]).max() < 1e-12


def test_constant_pixels_give_nan_without_eps_and_zero_with_it():
    images, constant = fs.constant_pixels(bnlib.load_digits(), batch_size=30)
    assert constant.any() and not constant.all()
    no_eps = fs.normalize_without_eps(images)
    assert np.isnan(no_eps[:, constant]).all() and np.isfinite(no_eps[:, ~constant]).all()
    y, _ = bnlib.batchnorm_forward(images, np.ones(images.shape[1]), np.zeros(images.shape[1]))
    assert (y[:, constant] == 0).all()


# --------------------------------------------------------------------------- backward
def test_gradient_check_and_agreement():
    case = fs.backward_test_case()
    errors = fs.gradient_check(*case)
    assert set(errors) == {"dx", "dγ", "dβ"}
    assert max(errors.values()) <= 1e-7
    assert fs.compare_backward(*case) <= 1e-10


def test_time_backward_returns_two_positive_times():
    closed, graph = fs.time_backward(n=8, d=4)
    assert closed > 0 and graph > 0


def test_graph_figure_draws():
    fig = fs.graph_figure()
    ax = fig.axes[0]
    fig.canvas.draw()
    assert len(ax.texts) >= len(fs.GRAPH_NODES)
    assert "one column" in ax.texts[0].get_text()
    legend = ax.get_legend()
    assert legend is not None and all(t.get_fontsize() >= 9 for t in legend.get_texts())
    plt.close(fig)


# --------------------------------------------------------------------------- exercises
def test_exercise_1_top_deviation_score(capsys):
    s = fs.exercise_scores()
    fs.check_top_deviation_score(...)
    assert "not attempted" in capsys.readouterr().out
    fs.check_top_deviation_score(50 + 10 * (s.max() - s.mean()) / s.std())
    assert "✓" in capsys.readouterr().out
    for wrong, hint in [(50 + 10 * (s.max() - s.mean()) / s.std(ddof=1), "N − 1"),
                        ((s.max() - s.mean()) / s.std(), "50 \\+ 10"),
                        (10 * (s.max() - s.mean()) / s.std(), "did not add 50"),
                        (50 + (s.max() - s.mean()) / s.std(), "did not multiply")]:
        with pytest.raises(NotYet, match=hint):
            fs.check_top_deviation_score(wrong)


def test_exercise_2_dgamma_dbeta(capsys):
    dy, x_hat, gamma, _, _ = fs.exercise_backward_inputs()
    fs.check_dgamma_dbeta(..., ...)
    assert capsys.readouterr().out.count("not attempted") == 2
    dgamma, dbeta = fs.reference_dgamma_dbeta()
    fs.check_dgamma_dbeta(dgamma, dbeta)
    assert capsys.readouterr().out.count("✓") == 2
    with pytest.raises(NotYet, match="averaged"):
        fs.check_dgamma_dbeta((dy * x_hat).mean(axis=0), dbeta)
    with pytest.raises(NotYet, match="that is dβ"):
        fs.check_dgamma_dbeta(dbeta, dbeta)
    with pytest.raises(NotYet, match="that is dγ"):
        fs.check_dgamma_dbeta(dgamma, dgamma)
    with pytest.raises(NotYet, match="shape"):
        fs.check_dgamma_dbeta((dy * x_hat).sum(axis=1), dbeta)


def test_exercise_3_closed_form_dx(capsys):
    dy, x_hat, gamma, var, eps = fs.exercise_backward_inputs()
    fs.check_closed_form_dx(...)
    assert "not attempted" in capsys.readouterr().out
    inv = 1 / np.sqrt(var + eps)
    right = gamma * inv * (dy - dy.mean(0) - x_hat * (dy * x_hat).mean(0))
    fs.check_closed_form_dx(right)
    assert "✓" in capsys.readouterr().out
    # the exercise's dx is what bnlib computes for the batch behind these inputs
    for wrong, hint in [(inv * (dy - dy.mean(0) - x_hat * (dy * x_hat).mean(0)), "γ is missing"),
                        (gamma * inv * (dy - dy.mean(0)), "last term"),
                        (gamma * inv * (dy - dy.mean(0) - x_hat * dy.mean(0) * x_hat.mean(0)),
                         "mean of the product, not the product of the means"),
                        (gamma * inv * (dy - dy.mean() - x_hat * (dy * x_hat).mean()),
                         "averaged over the whole array; use axis=0"),
                        (gamma * inv * (dy - x_hat * (dy * x_hat).mean(0)), "mean\\(dy\\) is missing"),
                        (gamma * inv * (dy - dy.sum(0) - x_hat * (dy * x_hat).sum(0)), "not sums"),
                        (gamma / (var + eps) * (dy - dy.mean(0) - x_hat * (dy * x_hat).mean(0)), "not by σ²")]:
        with pytest.raises(NotYet, match=hint):
            fs.check_closed_form_dx(wrong)


# --------------------------------------------------------------------------- Japanese
def test_figures_hints_and_messages_in_japanese(capsys):
    bnlib.set_language("ja")
    try:
        fig = fs.deviation_figure(fs.class_scores())
        assert fig.axes[0].get_ylabel() == "偏差値"
        fig = fs.graph_figure()
        texts = [t.get_text() for t in fig.axes[0].texts]
        assert "計算グラフ" in fig.axes[0].get_title() and "1 列" in texts[0]
        assert any(r"$\hat x$" in t for t in texts) and not any("x̂" in t for t in texts)   # mathtext, not x + ̂
        fs.check_forward(empty)
        assert "まだ解答がありません" in capsys.readouterr().out
        with pytest.raises(NotYet, match="N − 1 で割っています"):
            fs.check_forward(MISTAKES["n_minus_1"][0])
        with pytest.raises(NotYet, match="偏差値は 50 \\+ 10 · z"):
            s = fs.exercise_scores()
            fs.check_top_deviation_score((s.max() - s.mean()) / s.std())
    finally:
        bnlib.set_language("en")
    assert fs.graph_figure().axes[0].get_title().startswith("Batch norm as a computational graph")


def test_loop_source_is_the_code_with_translated_words():
    import ast
    import inspect
    import textwrap
    assert fs.loop_source() == inspect.getsource(fs.batchnorm_forward_loops)
    bnlib.set_language("ja")
    try:
        ja = fs.loop_source()
    finally:
        bnlib.set_language("en")
    assert "特徴量ごとに" in ja and "deliberately" not in ja and "each feature" not in ja
    def strip(src):                                   # the code after the docstring
        return [ast.dump(node) for node in ast.parse(textwrap.dedent(src)).body[0].body[1:]]
    assert strip(ja) == strip(fs.loop_source())


@pytest.mark.parametrize("language", ["en", "ja"])
def test_figures_fit_jupyterlab(language):
    """No figure wider than JupyterLab's output column at 1280 px with the file browser open;
    nothing cut off or overlapping, in either language."""
    bnlib.set_language(language)
    try:
        for fig in (fs.deviation_figure(fs.class_scores()), fs.graph_figure()):
            assert not bnlib.plots.layout_problems(fig)
            plt.close(fig)
    finally:
        bnlib.set_language("en")
