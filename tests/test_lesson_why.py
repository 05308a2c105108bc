"""Lesson 09 (why does BN work?): the noise layer, the distribution-change measure, the walk
along the gradient, scale invariance, weight growth, every dashboard driven across its range
(on short runs), and the exercise checks with their hints."""
import numpy as np
import pytest

import bnlib
from bnlib.checks import NotYet
from bnlib.lessons import why


# ---------------------------------------------------------------- noisy BN
def test_batch_noise_redraws_after_each_backward_only():
    layer = why.BatchNoise(5, max_shift=1.0, max_scale=2.0, seed=3)
    x = np.random.default_rng(0).normal(size=(8, 5)).astype(np.float32)
    y1, y2 = layer.forward(x), layer.forward(x)
    np.testing.assert_array_equal(y1, y2)                          # a forward alone draws nothing
    assert np.all(np.abs(layer.a) <= 1) and np.all((layer.s >= 0.5) & (layer.s <= 2))
    s_before = layer.s.copy()
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_allclose(dx, np.ones_like(x) * s_before)     # gradient of y = s·x + m
    assert not np.allclose(layer.s, s_before)                      # the next step gets new noise
    layer.eval()
    np.testing.assert_allclose(layer.forward(x), 1.25 * x, rtol=1e-6)


def test_insert_noise_puts_one_layer_after_each_batchnorm():
    model = why.insert_noise(bnlib.MLP([6, 5, 5, 3], "sigmoid", norm="batch"))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Linear", "BatchNorm", "BatchNoise", "Sigmoid"] * 2 + ["Linear"]
    seeds = [layer.rng.bit_generator.state["state"]["state"] for layer in model.layers if isinstance(layer, why.BatchNoise)]
    assert len(set(seeds)) == 2                                     # each noise layer its own stream


def test_noisy_network_trains_and_is_deterministic():
    def run():
        model = why.insert_noise(bnlib.MLP([64, 20, 20, 10], "sigmoid", norm="batch", seed=1), seed=1)
        return bnlib.train(model, bnlib.load_digits(), steps=40, batch_size=30, lr=0.5, record_every=20,
                           progress=False)
    a, b = run(), run()
    np.testing.assert_array_equal(a.loss, b.loss)
    assert a.loss[-5:].mean() < a.loss[:5].mean()


def test_distribution_change_formula():
    h = bnlib.train(bnlib.MLP([64, 8, 8, 10], "sigmoid"), bnlib.load_digits(), steps=20, batch_size=30,
                    lr=0.5, record_every=10, probe_size=50, progress=False)
    change = why.distribution_change(h)
    assert change.shape == (2,)
    p = h.layers[0].pre.unit_percentiles
    assert change[0] == pytest.approx(np.abs(p[1:] - p[:-1]).mean())


@pytest.fixture(scope="module")
def short_runs():
    return why.run_ics(steps=60, record_every=20, probe_size=100)


def test_ics_dashboard_across_its_range(short_runs):
    dash = why.ics_dashboard(short_runs)
    bands = dash.fig.axes[1:]
    ylim = bands[0].get_ylim()

    def assert_bands_inside_the_fixed_range():
        assert all(ax.get_ylim() == ylim for ax in bands)
        ys = np.concatenate([line.get_ydata() for ax in bands for line in ax.get_lines()])
        assert ylim[0] <= ys.min() and ys.max() <= ylim[1]

    by_layer = {}
    for l in range(1, 4):
        by_layer[l] = dash.set(layer=l)
        assert_bands_inside_the_fixed_range()
    assert len(set(by_layer.values())) == 3
    by_unit = {}
    for u in [*range(0, 100, 9), 99]:
        by_unit[u] = dash.set(unit=u)
        assert_bands_inside_the_fixed_range()
    assert len(set(by_unit.values())) == len(by_unit)
    assert all("noisy BN" in s for s in by_unit.values())


def test_ics_figures_are_labeled(short_runs):
    fig = why.change_figure(short_runs)
    ax = fig.axes[0]
    assert ax.get_title() and ax.get_ylabel() and ax.get_legend() and "every 20 steps" in ax.get_ylabel()
    assert why.accuracy_at(short_runs["bn"], 45) == short_runs["bn"].test_acc[2]


# ---------------------------------------------------------------- landscape
def test_along_gradient_restores_parameters_and_running_stats():
    data = bnlib.load_digits(dtype=np.float64)
    model = bnlib.MLP([64, 10, 10], "relu", norm="batch", init="he", dtype=np.float64)
    params = [p.copy() for p in model.parameters()]
    running = model.norm_layers()[0].running_mean.copy()
    loss0, gnorm, losses, changes = why.along_gradient(model, data.x_train[:50], data.y_train[:50], np.array([1e-4, 0.1]))
    for p, q in zip(model.parameters(), params):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(model.norm_layers()[0].running_mean, running)
    assert losses.shape == changes.shape == (2,) and gnorm > 0
    assert losses[0] == pytest.approx(loss0 - 1e-4 * gnorm ** 2, rel=1e-3, abs=1e-9)   # first-order step
    assert changes[0] < changes[1]


@pytest.fixture(scope="module")
def short_land():
    return why.run_landscape(steps=40, every=20, probe=100)


def test_landscape_measures(short_land):
    land = short_land
    assert list(land.steps) == [0, 20, 40]
    for kind in ("plain", "bn"):
        assert land.loss[kind].shape == land.change[kind].shape == (3, len(why.ETAS))
        assert np.all(land.loss_range(kind) >= 0) and np.all(land.beta(kind) > 0)
        expected = (land.change[kind] / (why.ETAS * land.grad_norm[kind][:, None])).max(axis=1)
        np.testing.assert_allclose(land.beta(kind), expected)
        np.testing.assert_array_equal(land.overshoots(kind), land.loss[kind][:, -1] > land.loss0[kind])
        falling = np.all(np.diff(np.column_stack([land.loss0[kind], land.loss[kind]]), axis=1) < 0, axis=1)
        np.testing.assert_array_equal(land.keeps_falling(kind), falling)


def test_landscape_dashboard_across_its_range(short_land):
    dash = why.landscape_dashboard(short_land)
    summaries = {s: dash.set(step=int(s)) for s in short_land.steps}
    assert len(set(summaries.values())) == len(summaries)
    fig = why.landscape_figure(short_land)
    assert all(ax.get_title() and ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() for ax in fig.axes)


# ---------------------------------------------------------------- scale invariance
@pytest.mark.parametrize("c", [0.1, 0.5, 2.0, 10.0])
def test_scale_invariance_is_exact_without_eps(c):
    r = why.scale_experiment(c, eps=1e-12)
    assert r["out_change"] < 1e-8 and r["loss_change"] < 1e-8
    assert r["grad_ratio"] == pytest.approx(1 / c, rel=1e-8) and r["grad_error"] < 1e-8
    assert r["cosine"] < 1e-8 and r["bias_grad"] < 1e-12


def test_eps_breaks_scale_invariance_a_little():
    assert why.scale_experiment(0.1, eps=1e-5)["out_change"] > 1e-3            # tiny weights: ε matters
    assert why.scale_experiment(10.0, eps=1e-5)["out_change"] < 1e-3


def test_scale_dashboard_across_its_range():
    dash = why.scale_dashboard()
    cs = [10 ** e for e in np.arange(-1, 1.01, 0.1)]
    summaries = [dash.set(c=c) for c in cs]
    assert len(set(summaries)) == len(cs)
    assert "1/c = 0.100" in dash.set(c=10.0)


def test_weight_growth_short():
    g = why.weight_growth(lrs=(0.1, 0.5), steps=30)
    for lr in g.lrs:
        assert g.norms[lr].shape == (31, 3)
        assert np.all(np.diff(g.norms[lr], axis=0) >= 0)
    assert g.effective_lr(0.5)[-1] < g.effective_lr(0.5)[0]
    fig = why.growth_figure(g)
    assert all(ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() for ax in fig.axes)


# ---------------------------------------------------------------- exercises
def test_exercise_1_change():
    p = why.EXERCISE_PERCENTILES
    why.check_change(np.abs(np.diff(p, axis=0)).mean())
    why.check_change(...)
    for wrong, hint in [(np.diff(p, axis=0).mean(), "absolute value"), (np.abs(p[-1] - p[0]).mean(), "last record"),
                        (np.abs(np.diff(p, axis=1)).mean(), "between units"),
                        (np.abs(np.diff(p, axis=2)).mean(), "between percentiles"),
                        (np.abs(np.diff(p, axis=0)).sum(), "not the sum")]:
        with pytest.raises(NotYet, match=hint):
            why.check_change(wrong)


def test_exercise_2_step_length():
    exact = np.sqrt(2.0 ** 2 + (0.5 * 0.8) ** 2)
    assert why.step_length_expected() == pytest.approx(exact)
    why.check_step_length(exact)
    why.check_step_length(2.04)                                   # three decimals are enough
    why.check_step_length(...)
    for wrong, hint in [(2.4, "do not simply add"), (1.6, "cannot make W shorter"), (np.sqrt(4 + 0.64), "η·g, not g"),
                        (4.16, "square root"), (np.sqrt(4 + 0.5 * 0.64), "square the whole step"),
                        (2.0, "grows a little"), (2.2, "too high"), (1.9, "too low")]:
        with pytest.raises(NotYet, match=hint):
            why.check_step_length(wrong)


def test_exercise_3_effective_lr():
    why.check_effective_lr(1.5625)
    why.check_effective_lr(...)
    for wrong, hint in [(1.25, "square the ratio"), (0.8, "above 1"), (0.64, "old ÷ new"), (0.016, "factor old")]:
        with pytest.raises(NotYet, match=hint):
            why.check_effective_lr(wrong)


def test_exercise_4_beta():
    why.check_beta(2.0)
    why.check_beta(...)
    for wrong, hint in [(4.0, "divide by ‖g‖"), (np.mean([2.0, 1.25, 1.5]), "not their mean"),
                        (1.5, "ratio of the"), (1.25, "take the maximum")]:
        with pytest.raises(NotYet, match=hint):
            why.check_beta(wrong)


# ---------------------------------------------------------------- Japanese
def _draws_every_glyph(fig):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")               # "Glyph … missing from font" is a UserWarning
        fig.canvas.draw()


def test_figures_summaries_and_hints_in_japanese(short_runs, short_land, capsys):
    bnlib.set_language("ja")
    try:
        why.print_accuracies(short_runs, steps=(20, 60))
        lines = capsys.readouterr().out.splitlines()
        assert [line.strip().split(":")[0] for line in lines] == ["BN なし", "BN あり", "ノイズ入り BN"]
        assert len({bnlib.i18n.columns(line.split(":")[0]) for line in lines}) == 1      # names right-aligned
        assert "ステップ 20 で" in lines[0] and "、" in lines[0]
        d = why.ics_dashboard(short_runs)
        assert d.set(unit=3).startswith("層 3・ユニット 3 — ")
        _draws_every_glyph(d.fig)
        d = why.landscape_dashboard(short_land)
        assert d.set(step=20).startswith("ステップ 20: 損失の幅 BN なし")
        _draws_every_glyph(d.fig)
        d = why.scale_dashboard()
        assert "1/c = 0.500" in d.set(c=2.0) and "出力の変化の最大" in d.set(c=2.0)
        for fig in (d.fig, why.change_figure(short_runs), why.landscape_figure(short_land),
                    why.growth_figure(why.weight_growth(lrs=(0.1, 0.5), steps=30))):
            _draws_every_glyph(fig)
        with pytest.raises(NotYet, match="三平方の定理"):
            why.check_step_length(2.4)
        assert why.label("noisy") == "ノイズ入り BN"
    finally:
        bnlib.set_language("en")
    assert why.label("noisy") == "noisy BN"


# ---------------------------------------------------------------- fits the screen, answers fast
@pytest.mark.parametrize("language", ["en", "ja"])
def test_figures_fit_jupyterlab_and_the_dashboards_blit(short_runs, short_land, language):
    """No figure wider than JupyterLab's output column at 1280 px with the file browser open;
    nothing cut off or overlapping in either language; every control of the three dashboards
    redraws only the changed artists (an axis whose range follows the data included)."""
    import warnings
    from bnlib import plots
    bnlib.set_language(language)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")               # "Glyph … missing from font" would raise
            for fig in (why.change_figure(short_runs), why.landscape_figure(short_land),
                        why.growth_figure(why.weight_growth(lrs=(0.1, 0.5), steps=10))):
                assert not plots.layout_problems(fig)
            dashboards = [(why.ics_dashboard(short_runs), [dict(unit=99), dict(layer=1), dict(unit=0), dict(layer=3)]),
                          (why.landscape_dashboard(short_land), [dict(step=int(s)) for s in short_land.steps[::-1]]),
                          (why.scale_dashboard(), [dict(c=0.1), dict(c=10.0), dict(c=1.0)])]
            for dash, moves in dashboards:
                assert not plots.layout_problems(dash.fig)
                for move in moves:
                    assert dash.would_blit(**move), move
                    assert not plots.layout_problems(dash.fig), move
    finally:
        bnlib.set_language("en")
