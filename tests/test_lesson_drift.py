"""Lesson 01 (distribution drift): the scores, the experiment's figures, the step-scrubbing
dashboard driven across its whole range, and the exercise checks with their hints."""
from types import SimpleNamespace

import numpy as np
import pytest

from bnlib import plots
from bnlib.checks import NotYet
from bnlib.lessons import drift


@pytest.fixture(scope="module")
def scores():
    return drift.teacher_scores()


@pytest.fixture(scope="module")
def short_run():
    """A few hundred steps: enough records for the figures and the dashboard, fast to train."""
    return drift.run_drift(steps=300, record_every=50)


def test_scores_are_one_class_on_three_scales(scores):
    assert set(scores) == set(drift.SCALES)
    base = scores[100]
    assert base.shape == (40,) and np.all(base == np.round(base)) and 0 <= base.min() and base.max() <= 100
    np.testing.assert_allclose(scores[10_000], base * 100)
    np.testing.assert_allclose(scores[0.1], base / 1000)
    np.testing.assert_array_equal(drift.teacher_scores()[100], base)          # seeded


def test_standardize_gives_mean_0_std_1_on_every_scale(scores):
    zs = [drift.standardize(x) for x in scores.values()]
    for z in zs:
        assert abs(z.mean()) < 1e-12 and abs(z.std() - 1) < 1e-12
    np.testing.assert_allclose(zs[0], zs[1], atol=1e-12)
    np.testing.assert_allclose(zs[0], zs[2], atol=1e-12)


def test_scales_figure_raw_first_then_identical_bars_standardized(scores):
    raw = drift.scales_figure(scores)
    assert len(raw.axes) == 3 and "standardized" not in raw.get_suptitle()
    both = drift.scales_figure(scores, standardized=True)
    assert len(both.axes) == 6
    for col in range(3):
        top, bottom = both.axes[col], both.axes[3 + col]
        heights = [[p.get_height() for p in ax.patches] for ax in (top, bottom)]
        assert heights[0] == heights[1] and sum(heights[0]) == 40      # the very same bars
        assert "standardized" in bottom.get_title()
    for fig in (raw, both):
        assert fig.get_figwidth() >= 6
        for ax in fig.axes:
            assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def test_static_figures_have_labelled_axes(scores, short_run):
    grid, fig1b = drift.histogram_grid(short_run, steps=(0, 100, 300)), drift.figure1b(short_run)
    for ax in fig1b.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert "first unit" in fig1b.axes[1].get_ylabel()
    for legend in (fig1b.axes[0].get_legend(), fig1b.axes[1].get_legend()):
        assert all(t.get_fontsize() >= 9 for t in legend.get_texts())
    assert grid.get_figwidth() >= 6 and fig1b.get_figwidth() >= 6
    assert len(grid.axes) == 3 * 3 and grid.get_suptitle()
    assert [ax.get_title() for ax in grid.axes[:3]] == ["step 0", "step 100", "step 300"]
    assert all(ax.get_xlabel() for ax in grid.axes[-3:]) and all(ax.get_ylabel() for ax in grid.axes[::3])
    assert fig1b.axes[0].get_legend() and fig1b.axes[1].get_legend()


def test_record_index_picks_the_record_at_or_before_a_step(short_run):
    assert list(short_run.record_steps) == [0, 50, 100, 150, 200, 250, 300]
    assert drift.record_index(short_run, 0) == 0
    assert drift.record_index(short_run, 149) == 2
    assert drift.record_index(short_run, 150) == 3
    assert drift.record_index(short_run, 10_000) == 6


def test_drift_numbers_shapes(short_run):
    d = drift.drift_numbers(short_run, early_step=150)
    for key in ("mean_start", "mean_early", "mean_end", "std_start", "std_early", "std_end",
                "width_start", "width_end", "unit_width_start", "unit_width_early", "unit_width_end"):
        assert d[key].shape == (3,)
    np.testing.assert_allclose(d["std_early"], [layer.pre.std[3] for layer in short_run.layers])
    p = short_run.layers[2].pre.unit_percentiles[-1]                      # (units, 3)
    assert d["unit_width_end"][2] == pytest.approx(np.median(p[:, 2] - p[:, 0]))
    assert np.all(d["unit_width_start"] > 0)


def test_settle_step():
    h = fake_history([[1.0]])
    h.record_steps = np.arange(6) * 10
    assert drift.settle_step(h, [1.0, 2.0, 3.0, 2.95, 3.05, 3.0]) == 20
    assert drift.settle_step(h, [3.0, 3.0, 3.0, 3.0, 3.0, 3.0]) == 0
    assert drift.settle_step(h, [1.0, 1.0, 1.0, 1.0, 1.0, 3.0]) == 50


def test_dashboard_scrubs_every_recorded_step(short_run):
    dash = drift.drift_dashboard(short_run)
    slider = dash.controls["step"]
    assert list(slider.options) == [int(s) for s in short_run.record_steps]
    stairs = [ax.patches[1] for ax in dash.fig.axes]                 # the filled "chosen step" stairs
    assert dash.fig.get_suptitle().endswith(f"step {int(short_run.record_steps[-1])}")
    assert all(t.get_fontsize() >= 9 for t in dash.fig.axes[-1].get_legend().get_texts())
    summaries = []
    for r, step in enumerate(short_run.record_steps):
        summary = dash.set(step=int(step))
        assert summary.startswith(f"step {int(step)} ")
        assert dash.fig.get_suptitle().endswith(f"training step {int(step)}")      # the title follows
        for i, (layer, artist) in enumerate(zip(short_run.layers, stairs)):
            np.testing.assert_array_equal(artist.get_data().values, layer.pre.hist[r])
            assert f"layer {i + 1}: μ {layer.pre.mean[r]:+.2f}, σ {layer.pre.std[r]:.2f}" in summary
        summaries.append(summary)
    assert len(set(summaries)) == len(summaries)


def test_layer_table_prints_every_layer(short_run, capsys):
    drift.layer_table(short_run, steps=(0, 300))
    out = capsys.readouterr().out
    assert all(f"hidden layer {i}" in out for i in (1, 2, 3))
    assert "all units mixed" in out and "one unit at a time" in out


def test_check_student_z(scores, capsys):
    x = scores[10_000]
    mu, sd = x.mean(), x.std()
    drift.check_student_z((x[5] - mu) / sd, scores, student=5)
    drift.check_student_z((scores[100][5] - scores[100].mean()) / scores[100].std(), scores)   # any scale
    drift.check_student_z((x[0] - mu) / sd, scores, student=0)
    assert capsys.readouterr().out.count("✓") == 3
    drift.check_student_z(..., scores)
    assert "not attempted" in capsys.readouterr().out
    for wrong, hint in [(x[5] - mu, "did not divide"), (x[5] / sd, "subtract the mean"),
                        (x[5] - mu / sd, "brackets around"),
                        ((x[5] - mu) / x.var(), "variance"), ((x[5] - mu) / x.std(ddof=1), "N − 1"),
                        (x[5], "raw score"), ((x[0] - mu) / sd, "index 0")]:
        with pytest.raises(NotYet, match=hint):
            drift.check_student_z(wrong, scores, student=5)


def test_check_standardized(scores, capsys):
    x = scores[0.1]
    drift.check_standardized((x - x.mean()) / x.std(), scores)
    assert "✓" in capsys.readouterr().out
    for wrong, hint in [((x - x.mean()) / x.std(ddof=1), "N − 1"), (x / x.std(), "subtract the mean"),
                        (x - x.mean() / x.std(), "brackets around"),
                        (x - x.mean(), "now divide"), ((x - x.mean()) / x.var(), "variance")]:
        with pytest.raises(NotYet, match=hint):
            drift.check_standardized(wrong, scores)
    with pytest.raises(NotYet, match="shape"):
        drift.check_standardized(drift.standardize(x)[:10], scores)


def fake_history(stds):
    """A History-shaped object with chosen σ per layer and record (steps 0, 10, 20, …)."""
    layers = [SimpleNamespace(pre=SimpleNamespace(std=np.array(s, dtype=float))) for s in stds]
    return SimpleNamespace(layers=layers, record_steps=np.arange(len(stds[0])) * 10)


def test_check_doubling_step_accepts_the_step_and_hints_each_mistake(capsys):
    h = fake_history([[1.0, 2.5, 3.0, 3.0, 3.0, 3.0],      # layer 1 doubles at step 10
                      [1.0, 1.2, 1.8, 2.0, 2.1, 2.2],      # layer 2 at step 30
                      [1.0, 1.1, 1.3, 1.5, 1.9, 2.2]])     # layer 3: σ ≥ √2 at 30, σ ≥ 2 at step 50
    assert drift.doubling_step(h, 2) == 50
    drift.check_doubling_step(50, h)
    drift.check_doubling_step(np.int64(50), h)
    assert capsys.readouterr().out.count("✓") == 2
    for wrong, hint in [(5, "index"), (10, "hidden layer 1"), (30, "hidden layer 2|variance")]:
        with pytest.raises(NotYet, match=hint):
            drift.check_doubling_step(wrong, h)
    with pytest.raises(NotYet) as generic:                 # not a known mistake: the generic message
        drift.check_doubling_step(40, h)
    assert not any(word in str(generic.value) for word in ("index", "hidden layer 1", "variance"))


def test_check_doubling_step_on_a_real_run(short_run, capsys):
    expected = drift.doubling_step(short_run, 0)
    assert expected is not None
    drift.check_doubling_step(expected, short_run, layer=0)
    assert "✓" in capsys.readouterr().out


# --------------------------------------------------------------------------- Japanese, and the canvas
def _texts_outside(fig):
    """Titles, labels and legend texts (not tick labels) that reach past the figure's edges."""
    import matplotlib
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ticks = {id(t) for ax in fig.axes for t in ax.get_xticklabels() + ax.get_yticklabels()}
    out = []
    for t in fig.findobj(matplotlib.text.Text):
        if t.get_visible() and t.get_text() and id(t) not in ticks:
            bb = t.get_window_extent(renderer)
            if bb.x0 < -1 or bb.y0 < -1 or bb.x1 > fig.bbox.width + 1 or bb.y1 > fig.bbox.height + 1:
                out.append(t.get_text())
    return out


@pytest.mark.parametrize("language", ["en", "ja"])
def test_figures_fit_their_canvas_and_draw_every_glyph(scores, short_run, language):
    import warnings
    import bnlib
    bnlib.set_language(language)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")                 # "Glyph … missing from font" would raise
            figures = [drift.scales_figure(scores), drift.scales_figure(scores, standardized=True),
                       drift.histogram_grid(short_run, steps=(0, 100, 300)), drift.figure1b(short_run),
                       drift.drift_dashboard(short_run).fig]
            for fig in figures:
                assert not _texts_outside(fig), f"{fig.get_suptitle() or fig.axes[0].get_title()}"
                assert not plots.layout_problems(fig), f"{fig.get_suptitle() or fig.axes[0].get_title()}"
            dash = drift.drift_dashboard(short_run)        # every step blits: only the changed artists redraw
            for step in (0, 100, int(short_run.record_steps[-1])):
                assert dash.would_blit(step=step), step
                assert not plots.layout_problems(dash.fig), step
    finally:
        bnlib.set_language("en")


def test_japanese_labels_summaries_tables_and_hints(scores, short_run, capsys):
    import bnlib
    bnlib.set_language("ja")
    try:
        assert drift.scale_name(10_000) == "10,000 点満点"
        fig = drift.figure1b(short_run)
        assert fig.axes[0].get_xlabel() == "学習ステップ" and "最初のユニット" in fig.axes[1].get_ylabel()
        dash = drift.drift_dashboard(short_run)
        summary = dash.set(step=100)
        assert summary.startswith("ステップ 100（テスト正解率 ") and "層 3: μ " in summary
        assert dash.fig.get_suptitle() == "BN なし: 学習ステップ 100 での各隠れ層のシグモイド関数の入力 z"
        assert dash.controls["step"].description == "ステップ"
        drift.layer_table(short_run, steps=(0, 300))
        assert "隠れ層 3" in capsys.readouterr().out
        drift.check_student_z(..., scores)
        assert "まだ解答がありません" in capsys.readouterr().out
        x = scores[10_000]
        with pytest.raises(NotYet, match="かっこで囲みましょう"):
            drift.check_student_z(x[5] - x.mean() / x.std(), scores, student=5)
    finally:
        bnlib.set_language("en")
    assert drift.scale_name(10_000) == "out of 10,000"
