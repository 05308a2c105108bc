"""Lesson 11 (going deeper): the four kinds of network, a short depth sweep and its figures, table
and dashboard across every control, the gradient ratios, De & Smith's branch share, the
learning-rate schedules and the linear scaling runs, the exercise checks, and the Japanese edition."""
import numpy as np
import pytest

import bnlib
from bnlib.checks import NotYet
from bnlib.lessons import deeper
from bnlib.model import SkipAdd


@pytest.fixture(scope="module")
def data():
    return bnlib.load_mnist5k()


@pytest.fixture(scope="module")
def short_sweep(data):
    return deeper.depth_sweep(data, depths=(3, 6), steps=20)


@pytest.fixture(scope="module")
def short_scaling(data):
    return deeper.scaling_runs(data, batches=(50, 200), epochs=1)


@pytest.fixture(autouse=True)
def english_afterwards():
    yield
    bnlib.set_language("en")


def test_the_four_kinds_differ_only_in_bn_and_skip():
    nets = {k: deeper.network("relu", k, 6) for k in deeper.KINDS}
    assert [nets[k].norm for k in deeper.KINDS] == [None, "batch", None, "batch"]
    assert [nets[k].residual_blocks() for k in deeper.KINDS] == [0, 0, 5, 5]
    np.testing.assert_array_equal(nets["plain"].layers[0].W, nets["bn_skip"].layers[0].W)   # same initial weights
    assert deeper.network("sigmoid", "plain", 3).init == "xavier" and nets["bn"].init == "he"
    with pytest.raises(ValueError, match="kind must be one of"):
        deeper.network("relu", "resnet", 6)


def test_sweep_table_figure_and_gradient_figure(short_sweep, capsys):
    assert len(short_sweep) == 2 * 4 * 2
    deeper.sweep_table(short_sweep)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("test accuracy after 20 steps") and len(lines) == 1 + 8
    assert "sigmoid, BN + skip (lr 1)" in lines[4] and "%" in lines[4]
    fig = deeper.sweep_figure(short_sweep)
    assert len(fig.axes) == 2 and all(len(ax.get_lines()) >= 4 for ax in fig.axes)
    assert fig.get_size_inches()[0] <= bnlib.plots.MAX_WIDTH
    fig = deeper.gradient_figure(short_sweep, depth=6)
    assert all(ax.get_yscale() == "log" for ax in fig.axes)
    assert all(len(line.get_xdata()) == 7 for line in fig.axes[0].get_lines())   # 6 hidden + output
    for h in short_sweep.values():
        assert h.grad_norms.shape[0] == len(h.record_steps)


def test_gradient_ratio_and_growth_per_layer():
    class Fake:
        grad_norms = np.array([[5.0, 8.0, 4.0, 2.0, 1.0, 3.0]])     # W_1 … W_5 hidden-side, then output
    assert deeper.gradient_ratio(Fake()) == 8.0
    assert deeper.growth_per_layer(Fake()) == pytest.approx(2.0)    # 8 → 4 → 2 → 1: ×2 per layer


def test_dashboard_across_every_control(short_sweep):
    dash = deeper.depth_dashboard(short_sweep, depth=6)
    seen = set()
    for depth in (3, 6):
        for kind in deeper.KINDS:
            for activation in deeper.ACTIVATIONS:
                for when in (0, -1):
                    summary = dash.set(depth=depth, kind=kind, activation=activation, when=when)
                    assert f"{depth} layers" in summary and deeper.label(kind) in summary
                    image = np.ma.filled(dash.fig.axes[0].images[0].get_array(), np.nan)
                    assert np.isfinite(image[:depth]).all() and np.isnan(image[depth:]).all()
                    seen.add(summary)
    assert len(seen) > 20
    assert len(dash.animated) == 2 + 4              # the image, the title and one line per kind


def test_dashboard_says_when_a_run_diverged():
    h = bnlib.train(bnlib.MLP([64, 16, 16, 10], activation="tanh", init="he"), bnlib.load_digits(), steps=200,
                    batch_size=32, lr=50.0, progress=False)
    fine = bnlib.train(bnlib.MLP([64, 16, 16, 10]), bnlib.load_digits(), steps=5, batch_size=32, lr=0.1,
                       record_every=5, progress=False)
    assert h.diverged
    sweep = {(a, k, 2): (h if k == "skip" else fine) for a in deeper.ACTIVATIONS for k in deeper.KINDS}
    dash = deeper.depth_dashboard(sweep, depth=2)
    summary = dash.set(kind="skip", when=-1)
    assert "diverged" in summary
    assert np.isnan(np.ma.filled(dash.fig.axes[0].images[0].get_array(), np.nan)).all()


def test_branch_share_is_scaled_down_by_about_the_square_root_of_depth():
    """De & Smith (2020): with BN the branch's share of the stream falls like 1/√l; without BN it
    stays near 1 (ReLU, He initial weights: the stream's variance doubles per block)."""
    share = deeper.branch_share(depth=24)
    blocks = np.arange(1, 24)
    assert len(share["bn_skip"]) == len(share["skip"]) == 23
    np.testing.assert_allclose(share["bn_skip"][9:], 1 / np.sqrt(blocks[9:]), rtol=0.25)
    assert np.all(share["skip"] > 0.6)


def test_first_steps_records_every_step(data):
    h = deeper.first_steps(data, depth=6, steps=3)
    np.testing.assert_array_equal(h.record_steps, [0, 1, 2, 3])
    assert h.grad_norms.shape == (4, 7) and np.isfinite(h.grad_norms).all()


def test_make_schedule():
    assert deeper.make_schedule("constant", 3.0) == 3.0
    s = deeper.make_schedule("warmup_decay", 3.0, steps=100, warmup=20)
    assert s(0) == pytest.approx(0.3) and s(20) == pytest.approx(3.0 * (1 + np.cos(np.pi * 0.2)) / 2)
    assert deeper.make_schedule("decay", 3.0)(deeper.LR_STEPS) == 0.0
    with pytest.raises(ValueError, match="schedule must be one of"):
        deeper.make_schedule("step", 3.0)


def test_schedule_runs_table_and_figure(data, monkeypatch, capsys):
    monkeypatch.setattr(deeper, "LR_STEPS", 20)
    monkeypatch.setattr(deeper, "WARMUP_STEPS", 5)
    rates = deeper.constant_rates(data, rates=(1.0, 30.0))
    deeper.rates_table(rates)
    assert "learned" in capsys.readouterr().out
    assert deeper.largest_learning_rate(rates) == 1.0
    runs = deeper.schedule_runs(data, peaks=(1.0,), seeds=(0, 1), reuse=rates)
    assert runs[(1.0, "constant", 0)] is rates[1.0] and len(runs) == 8
    np.testing.assert_allclose(runs[(1.0, "warmup", 1)].lr[:5], [0.1, 0.28, 0.46, 0.64, 0.82])
    deeper.schedule_table(runs)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5 and "peak η = 1" in out[0] and out[4].startswith("warm-up + decay")
    fig = deeper.schedule_figure(runs)
    assert len(fig.axes) == 3 and fig.get_size_inches()[0] <= bnlib.plots.MAX_WIDTH


def test_scaling_runs(short_scaling):
    assert deeper.scaling_lr(200, "scaled") == pytest.approx(0.8) and deeper.scaling_lr(200, "fixed") == 0.2
    runs = short_scaling
    assert runs[(50, "scaled")] is runs[(50, "fixed")]
    h = runs[(200, "scaled")]
    assert h.config["batch_size"] == 200 and h.config["lr"] == pytest.approx(0.8) and len(h.loss) == 20
    np.testing.assert_allclose(deeper.epochs_of(h), [0, 0.25, 0.5, 0.75, 1.0])
    assert 0 <= deeper.accuracy_at_epoch(h, 1) <= 1
    with pytest.raises(ValueError, match="no record after 3 epochs"):
        deeper.accuracy_at_epoch(h, 3)
    assert len(deeper.scaling_figure(runs).axes) == 2


# ---------------------------------------------------------------- exercises
def test_exercise_1_warmup():
    deeper.check_warmup(0.975)
    deeper.check_warmup(bnlib.Warmup(3.0, steps=40, start_factor=0.1)(10))
    deeper.check_warmup(...)
    for wrong, hint in [(0.75, "does not start at 0"), (0.075, "the part that grows"), (3.0, "still inside"),
                        (0.3, "rate at step 0"), (2.0, "too high")]:
        with pytest.raises(NotYet, match=hint):
            deeper.check_warmup(wrong)


def test_exercise_2_growth():
    n = deeper.EXERCISE_NORMS
    right = (n[1] / n[11]) ** (1 / 10)
    assert 1.1 < right < 1.3
    deeper.check_growth(right)
    deeper.check_growth(round(right, 3))
    deeper.check_growth(...)
    for wrong, hint in [(n[1] / n[11], "take the root"), ((n[1] / n[11]) ** (1 / 11), "count the steps"),
                        (n[1] / n[11] / 10, "do not divide"), ((n[11] / n[1]) ** 0.1, "larger near the input"),
                        ((n[0] / n[-1]) ** (1 / 12), "leave out")]:
        with pytest.raises(NotYet, match=hint):
            deeper.check_growth(wrong)


def test_exercise_3_scaled_lr():
    deeper.check_scaled_lr(0.8)
    for wrong, hint in [(0.2, "multiply it by N / 50"), (0.05, "larger rate"), (0.4, "square-root")]:
        with pytest.raises(NotYet, match=hint):
            deeper.check_scaled_lr(wrong)


def test_exercise_4_skip_product():
    deeper.check_skip_product(1.5 ** 10)
    for wrong, hint in [(0.5 ** 10, "without skip connections"), (1 + 0.5 ** 10, "once per block"),
                        (6.0, "do not add"), (15.0, "a power")]:
        with pytest.raises(NotYet, match=hint):
            deeper.check_skip_product(wrong)


def test_the_wrong_answers_of_every_check_differ_from_the_right_one():
    """A hint must never fire for the correct answer: no listed mistake may equal it."""
    n = deeper.EXERCISE_NORMS
    right = (n[1] / n[11]) ** (1 / 10)
    for wrong in ((n[1] / n[11]), (n[1] / n[11]) ** (1 / 11), (n[0] / n[-1]) ** (1 / 12)):
        assert abs(wrong - right) > 1e-3 * right


# ---------------------------------------------------------------- Japanese
def test_tables_figures_summaries_and_hints_in_japanese(short_sweep, capsys):
    bnlib.set_language("ja")
    deeper.sweep_table(short_sweep)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("20 ステップ後のテスト正解率") and "3 層" in lines[0]
    assert lines[4].startswith("シグモイド関数・BN + スキップ（学習率 1）")
    assert len({bnlib.i18n.columns(line.rstrip()) for line in lines[1:]}) == 1       # columns line up
    fig = deeper.sweep_figure(short_sweep)
    assert fig.axes[0].get_xlabel() == "隠れ層の数（各 64 ユニット）"
    dash = deeper.depth_dashboard(short_sweep, depth=6)
    assert dash.set(kind="bn_skip", when=-1).startswith("ReLU・6 層・BN + スキップ・学習後: ")
    assert deeper.schedule_name("warmup_decay") == "ウォームアップ + 減衰"
    with pytest.raises(NotYet, match="累乗根"):
        deeper.check_growth(deeper.EXERCISE_NORMS[1] / deeper.EXERCISE_NORMS[11])
    bnlib.set_language("en")
    assert deeper.label("bn_skip") == "BN + skip"


# ---------------------------------------------------------------- fits the screen, answers fast
@pytest.fixture(scope="module")
def short_schedules(data):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(deeper, "LR_STEPS", 20)
        mp.setattr(deeper, "WARMUP_STEPS", 5)
        return deeper.schedule_runs(data, seeds=(0, 1))          # the notebook's peaks 3 and 6


@pytest.mark.parametrize("language", ["en", "ja"])
def test_figures_fit_jupyterlab_and_the_dashboards_blit(short_sweep, short_schedules, short_scaling, language):
    """No figure wider than JupyterLab's output column at 1280 px with the file browser open;
    nothing cut off or overlapping in either language, no text under 8 pt; every control of the
    depth dashboard, moved to every value and back, redraws only the changed artists."""
    import warnings

    from matplotlib.text import Text

    from bnlib import plots
    bnlib.set_language(language)
    with warnings.catch_warnings():
        warnings.simplefilter("error")               # "Glyph … missing from font" would raise
        figures = [deeper.sweep_figure(short_sweep), deeper.gradient_figure(short_sweep, depth=6),
                   deeper.branch_figure(deeper.branch_share(depth=6)), deeper.schedule_figure(short_schedules),
                   deeper.scaling_figure(short_scaling)]
        dash = deeper.depth_dashboard(short_sweep, depth=6)
        for fig in figures + [dash.fig]:
            assert not plots.layout_problems(fig)
            small = {t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text() and t.get_fontsize() < 8}
            assert not small
        moves = ([dict(depth=3), dict(depth=6)] + [dict(kind=k) for k in deeper.KINDS[::-1]]
                 + [dict(activation=a) for a in deeper.ACTIVATIONS] + [dict(when=-1), dict(depth=3), dict(when=0)]
                 + [dict(kind=k) for k in deeper.KINDS] + [dict(activation="sigmoid"), dict(depth=6)])
        for move in moves:
            assert dash.would_blit(**move), move
            assert not plots.layout_problems(dash.fig), move
