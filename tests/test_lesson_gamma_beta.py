"""Lesson 03 (bnlib.lessons.gamma_beta): the γ/β/ε dashboard across its full slider ranges, BN
undoing itself, the training helpers on a short run, and the exercise checks."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import bnlib  # noqa: E402
from bnlib.checks import NotYet  # noqa: E402
from bnlib.lessons import gamma_beta as gb  # noqa: E402


@pytest.fixture(scope="module")
def z():
    return gb.first_layer_preactivations(n=200)


@pytest.fixture(scope="module")
def dash(z):
    d = gb.sigmoid_dashboard(z)
    yield d
    plt.close(d.fig)


def slider_values(control, count=9):
    """count values spanning the control's full range (in exponent space for a log slider)."""
    if isinstance(control, gb.widgets.FloatLogSlider):
        return [control.base ** e for e in np.linspace(control.min, control.max, count)]
    return list(np.linspace(control.min, control.max, count))


@pytest.mark.parametrize("name", ["gamma", "beta", "eps"])
def test_dashboard_across_each_slider_range(dash, name):
    dash.set(gamma=1.0, beta=0.0, eps=1e-5)
    summaries = [dash.set(**{name: value}) for value in slider_values(dash.controls[name])]
    assert all(s.startswith("γ = ") and "saturated" in s for s in summaries)
    assert len(set(summaries)) == len(summaries), "the summary changes with every value"
    dash.set(gamma=1.0, beta=0.0, eps=1e-5)


def test_dashboard_summary_reports_the_regions(dash, z):
    s = dash.set(gamma=1.0, beta=0.0, eps=1e-5)
    f = gb.region_fractions(gb.normalize(z))
    assert f"{f['middle']:.0%}" in s and "γ = 1.00, β = +0.00, ε = 1e-05" in s
    s_wide = dash.set(gamma=5.0, beta=5.0)
    assert gb.region_fractions(5 * gb.normalize(z) + 5)["saturated"] > 0.5
    assert s_wide != s
    dash.set(gamma=1.0, beta=0.0)


def test_dashboard_figure_is_readable(dash):
    fig = dash.fig
    assert fig.get_figwidth() >= 6
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + fig.legends
    assert len(legends) == 3                         # the middle panel's entries are in the figure's legend
    assert all(t.get_fontsize() >= 9 for legend in legends for t in legend.get_texts())
    ax_y, ax_c, ax_s = fig.axes
    assert ax_c.get_title() == "Where the values land\non the sigmoid"
    assert "end bars" in ax_y.get_xlabel()
    dots, curve = ax_c.collections[-1], ax_c.lines[0]
    assert dots.get_sizes()[0] >= 15 and dots.get_zorder() > max(line.get_zorder() for line in ax_c.lines)
    assert "saturated output" in [t.get_text() for t in ax_s.get_legend().get_texts()]


def test_region_fractions_of_a_standard_batch(z):
    f = gb.region_fractions(gb.normalize(z))
    assert f["saturated"] == pytest.approx(f["low"] + f["high"])
    assert 0.6 < f["middle"] < 0.75 and f["saturated"] < 0.01
    assert f["p15"] == pytest.approx(-1.04, abs=0.1) and f["p85"] == pytest.approx(1.04, abs=0.1)
    assert 0.97 < f["r2"] <= 1.0
    assert gb.region_fractions(np.zeros(10))["middle"] == 1.0       # constant input: no crash


def test_bn_undoes_itself(z):
    y, gamma, beta = gb.undo(z)
    assert np.abs(y - z).max() < 1e-10
    assert np.allclose(beta, z.mean(axis=0)) and np.allclose(gamma, np.sqrt(z.var(axis=0) + 1e-5))


def test_short_training_run_and_its_figures():
    model, history, data = gb.train_bn_network(steps=30, lr=0.5)
    assert not history.diverged
    params = gb.learned_parameters(model)
    assert len(params) == 3 and all(g.shape == (100,) and b.shape == (100,) for g, b in params)
    assert any(np.abs(g - 1).max() > 0 for g, _ in params)             # they started moving
    report = gb.layer_report(model, data.x_test[:100])
    assert len(report) == 3 and all(set(a) == set(b) for a, b in report)
    running = [bn.running_mean.copy() for bn in model.norm_layers()]
    gb.sigmoid_inputs(model, data.x_test[:50])
    assert all(np.array_equal(r, bn.running_mean) for r, bn in zip(running, model.norm_layers()))
    fig = gb.learned_figure(model)
    a, b = fig.axes
    assert len(a.lines) == 4 and a.get_legend() is not None and fig.get_figwidth() >= 6
    assert all(t.get_fontsize() >= 9 for t in a.get_legend().get_texts())
    orange = matplotlib.colors.to_rgba(bnlib.plots.COLORS["plain"])
    assert all(matplotlib.colors.to_rgba(line.get_color()) != orange for line in a.lines + b.lines)
    plt.close(fig)
    text = gb.parameter_lines(params, report)
    assert text.count("hidden layer") == 3 and "γ from " in text and "(mean " in text


# --------------------------------------------------------------------------- exercises
def test_exercise_1_affine(capsys):
    z1 = gb.exercise_unit()
    gb.check_affine(...)
    assert "not attempted" in capsys.readouterr().out
    x_hat = (z1 - z1.mean()) / np.sqrt(z1.var() + 1e-5)
    gb.check_affine(2 * x_hat - 1)
    assert "✓" in capsys.readouterr().out
    for wrong, hint in [(2 * z1 - 1, "normalize first"),
                        (2 * (z1 - z1.mean()) / np.sqrt(z1.var(ddof=1) + 1e-5) - 1, "N − 1"),
                        (-x_hat + 2, "swapped"), (2 * x_hat, "β is missing"), (x_hat - 1, "γ is missing"),
                        (2 * x_hat + 1, "subtract 1, don't add it")]:
        with pytest.raises(NotYet, match=hint):
            gb.check_affine(wrong)


def test_exercise_2_undo(capsys):
    z2 = gb.exercise_undo_batch()
    gb.check_undo(..., ...)
    assert capsys.readouterr().out.count("not attempted") == 2
    gamma, beta = np.sqrt(z2.var(axis=0) + 1e-5), z2.mean(axis=0)
    gb.check_undo(gamma, beta)
    assert capsys.readouterr().out.count("✓") == 2
    with pytest.raises(NotYet, match="ε matters"):
        gb.check_undo(z2.std(axis=0), beta)
    with pytest.raises(NotYet, match="divides by N"):
        gb.check_undo(np.sqrt(z2.var(axis=0, ddof=1) + 1e-5), beta)
    with pytest.raises(NotYet, match="square root"):
        gb.check_undo(z2.var(axis=0) + 1e-5, beta)
    with pytest.raises(NotYet, match="swapped"):
        gb.check_undo(beta, gamma)
    with pytest.raises(NotYet, match="put the mean back"):
        gb.check_undo(gamma, np.zeros(3))
    with pytest.raises(NotYet, match="sign"):
        gb.check_undo(gamma, -beta)


def test_exercise_3_median_beta(capsys):
    gb.check_median_beta(...)
    assert "not attempted" in capsys.readouterr().out
    gb.check_median_beta(np.log(9))
    assert "✓" in capsys.readouterr().out
    assert gb.sigmoid(np.log(9)) == pytest.approx(0.9)
    gb.check_median_beta(2.197)                                      # three decimals are enough
    assert "✓" in capsys.readouterr().out
    for wrong, hint in [(0.9, "output you want"), (-np.log(9), "sign"), (np.log(0.9), "for e\\^\\(−β\\) first"),
                        (-np.log(0.9), "for e\\^\\(−β\\) first")]:
        with pytest.raises(NotYet, match=hint) as info:
            gb.check_median_beta(wrong)
        assert "ln 9" not in str(info.value)                         # the hint does not give the answer away
    with pytest.raises(NotYet):
        gb.check_median_beta(2.19)


def test_exercise_4_gamma_for_saturation(z, capsys):
    g = gb.gamma_for_saturation(z)
    assert gb.saturated_fraction(z, g) >= 0.10 > gb.saturated_fraction(z, g - 0.01)
    gb.check_gamma_for_saturation(..., z)
    assert "not attempted" in capsys.readouterr().out
    gb.check_gamma_for_saturation(round(g, 2), z)
    assert "✓" in capsys.readouterr().out
    with pytest.raises(NotYet, match="both tails"):
        gb.check_gamma_for_saturation(gb.gamma_for_saturation(z, one_tail=True), z)
    with pytest.raises(NotYet):
        gb.check_gamma_for_saturation(g + 0.2, z)


# --------------------------------------------------------------------------- Japanese
def test_dashboard_figures_and_hints_in_japanese(z, capsys):
    bnlib.set_language("ja")
    try:
        d = gb.sigmoid_dashboard(z)
        s = d.set(gamma=2.0, beta=0.5, eps=1e-5)
        assert s.startswith("γ = 2.00, β = +0.50, ε = 1e-05: ") and "飽和" in s
        ax_y, ax_c, ax_s = d.fig.axes
        assert ax_c.get_title() == "値がシグモイド曲線の\nどこに来るか"
        assert r"$\hat x$" in ax_y.get_legend().get_texts()[0].get_text()      # mathtext, not x + ̂
        plt.close(d.fig)
        gb.check_median_beta(...)
        assert "まだ解答がありません" in capsys.readouterr().out
        with pytest.raises(NotYet, match="符号を確かめましょう"):
            gb.check_median_beta(-np.log(9))
    finally:
        bnlib.set_language("en")
    assert gb.summary_line(1.0, 0.0, 1e-5, gb.region_fractions(gb.normalize(z))).count("saturated tails") == 1


# --------------------------------------------------------------------------- fits the screen, answers fast
@pytest.mark.parametrize("language", ["en", "ja"])
def test_figures_fit_jupyterlab_and_every_slider_blits(z, language):
    """No figure wider than JupyterLab's output column at 1280 px, nothing cut off or
    overlapping (in either language, at both ends of every slider), and every slider move is
    drawn by blitting (only the changed artists are redrawn)."""
    import warnings
    bnlib.set_language(language)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")               # "Glyph … missing from font" would raise
            d = gb.sigmoid_dashboard(z)
            assert not bnlib.plots.layout_problems(d.fig)
            for name, value in [("gamma", 5.0), ("beta", -5.0), ("eps", 1.0), ("gamma", 0.1), ("beta", 5.0)]:
                assert d.would_blit(**{name: value}), f"moving {name} needs a full redraw"
                assert not bnlib.plots.layout_problems(d.fig), (name, value)
            model, _, _ = gb.train_bn_network(steps=5, lr=0.5)
            fig = gb.learned_figure(model)
            assert not bnlib.plots.layout_problems(fig)
    finally:
        bnlib.set_language("en")
