"""Lesson 08 (the normalization family): the statistic sets behind the picture, the hand
computation against bnlib, both dashboards driven across their whole ranges, a small batch-size
sweep, and the exercise checks with their hints."""
import numpy as np
import pytest
from matplotlib.colors import to_rgb

import bnlib
from bnlib.checks import NotYet
from bnlib.lessons import family


# ---------------------------------------------------------------- the sets and the hand computation
@pytest.mark.parametrize("kind, per, stats", [("batch", 36, 6), ("layer", 54, 4), ("instance", 9, 24),
                                              ("group", 27, 8)])
def test_counts_of_the_picture(kind, per, stats):
    assert family.counts(kind, (4, 6, 3, 3), groups=2) == (per, stats)
    text = " ".join(family.count_formula(kind, (4, 6, 3, 3), groups=2))
    assert f"= {per}" in text and f"= {stats}" in text


def test_statistic_sets_are_the_right_axes():
    shape = (4, 6, 3, 3)
    s = family.statistic_set("batch", 2, 3, shape)
    assert s[:, 3].all() and s.sum() == 4 * 9                       # channel 3 of every sample
    s = family.statistic_set("layer", 2, 3, shape)
    assert s[2].all() and s.sum() == 6 * 9                          # every channel of sample 2
    s = family.statistic_set("instance", 2, 3, shape)
    assert s[2, 3].all() and s.sum() == 9
    s = family.statistic_set("group", 2, 3, shape, groups=3)
    assert s[2, 2:4].all() and s.sum() == 2 * 9                     # channels 2, 3 form group 1


def test_bad_groups_are_refused():
    with pytest.raises(ValueError, match="divide"):
        family.set_ids("group", (4, 6, 3, 3), groups=4)
    with pytest.raises(ValueError, match="unknown norm"):
        family.set_ids("weight", (4, 6, 3, 3))


@pytest.mark.parametrize("shape", [(4, 6, 3, 3), (2, 8, 2, 1), (3, 4, 2, 5)])
def test_by_hand_matches_bnlib_for_every_norm(shape):
    x = family.random_picture_x(shape, seed=3)
    for kind in family.NORMS:
        for g in (family.divisors(shape[1]) if kind == "group" else [1]):
            np.testing.assert_allclose(family.by_hand(x, kind, g), family.bnlib_forward(x, kind, g), atol=1e-12)


def test_comparison_table_covers_every_group_setting():
    rows = family.compare_with_bnlib()
    assert len(rows) == 3 + len(family.divisors(6))
    assert all(r["diff"] < 1e-12 and r["diff_set"] < 1e-12 and r["set_size"] == r["per_stat"] for r in rows.values())


# ---------------------------------------------------------------- dashboards
def test_axes_dashboard_across_every_control():
    dash = family.axes_dashboard()
    seen = set()
    for kind in family.NORMS:
        seen.add(dash.set(norm=kind))
        assert family.NAMES[kind] in dash.summary.value
    assert len(seen) == 4
    dash.set(norm="group")
    by_g = {g: dash.set(groups=g) for g in family.divisors(6)}
    assert len(set(by_g.values())) == len(by_g)
    assert "27 values" in by_g[2] and "N·G = 4·2 = 8" in by_g[2]
    sets = {dash.set(n=n) for n in range(4)} | {dash.set(c=c) for c in range(6)}
    assert len(sets) > 4                                            # μ, σ of the chosen set change
    img = dash.fig.axes[0].images[0].get_array()
    assert img.shape == (4 * 4 - 1, 6 * 4 - 1, 3)


def test_axes_dashboard_highlights_exactly_the_set():
    dash = family.axes_dashboard()
    dash.set(norm="instance", n=1, c=2)
    img = np.asarray(dash.fig.axes[0].images[0].get_array())
    hi = np.all(np.isclose(img, np.array(to_rgb(family.COLOR["instance"]))), axis=-1)
    assert hi.sum() == 9 and hi[4:7, 8:11].all()


def test_renorm_dashboard_across_every_control():
    dash = family.renorm_dashboard(draws=300)
    by_b = {b: dash.set(batch_size=b) for b in dash.controls["batch_size"].options}
    assert 2 in by_b and 128 in by_b
    assert len(set(by_b.values())) == len(by_b)
    dash.set(batch_size=2)
    by_r = {r: dash.set(r_max=r) for r in np.arange(1.0, 5.01, 0.5)}
    assert len(set(by_r.values())) == len(by_r)
    assert "clipped in 100%" in by_r[1.0]                          # r_max = 1: every r is clipped
    by_d = {d: dash.set(d_max=d) for d in np.arange(0.0, 5.01, 0.5)}
    assert len(set(by_d.values())) > 3


def test_simulated_batch_std_is_biased_low_for_small_batches():
    r2, d2 = family.simulate_rd(2)
    r128, d128 = family.simulate_rd(128)
    assert np.median(r2) < 0.6 and abs(np.median(r128) - 1) < 0.05
    assert d2.std() > 3 * d128.std()


# ---------------------------------------------------------------- the sweep (small and fast)
@pytest.fixture(scope="module")
def small_sweep():
    return family.batch_size_sweep(sizes=(2, 8, 32), renorm_sizes=(2,), images=320)


def test_schedule_gives_every_batch_size_the_same_images():
    for n in family.BATCH_SIZES:
        steps, lr = family.schedule(n)
        assert steps * n == family.IMAGES                      # equal budget: same images seen
        assert lr == pytest.approx(0.1 * n / 32)               # linear scaling rule
    assert family.schedule(2, images=1000) == (500, 0.1 * 2 / 32)


def test_sweep_shapes_and_figures(small_sweep):
    s = small_sweep
    assert list(s.steps) == [160, 40, 10] and s.config["images"] == 320
    assert set(s.eval_acc) == {"batch", "layer", "group"} and all(len(a) == 3 for a in s.eval_acc.values())
    assert set(s.batch_acc) == {"batch", "renorm"} and set(s.renorm_acc) == {2}
    assert all(0 <= a <= 1 for a in s.eval_acc["layer"])
    fig = family.batch_size_figure(s)
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title() and ax.get_legend()
    fig = family.renorm_figure(s)
    assert all(a.get_xlabel() and a.get_ylabel() and a.get_title() and a.get_legend() for a in fig.axes)


def test_sweep_is_deterministic(small_sweep):
    family.batch_size_sweep.cache_clear()
    again = family.batch_size_sweep(sizes=(2, 8, 32), renorm_sizes=(2,), images=320)
    for k in small_sweep.eval_acc:
        np.testing.assert_array_equal(again.eval_acc[k], small_sweep.eval_acc[k])


def test_batch_mode_accuracy_leaves_running_stats_alone():
    data = bnlib.load_digits()
    model = bnlib.MLP([64, 20, 10], "relu", norm="batch", init="he")
    family.fit(model, data, 8, 20, 0.05)
    before = model.norm_layers()[0].running_mean.copy()
    acc = family.batch_mode_accuracy(model, data.x_test, data.y_test, 4)
    assert 0 <= acc <= 1
    np.testing.assert_array_equal(model.norm_layers()[0].running_mean, before)
    assert model.norm_layers()[0].track_running_stats


# ---------------------------------------------------------------- exercises
def test_exercise_1_counts():
    family.check_counts((784, 128))
    family.check_counts(...)                                        # not attempted: no error
    for wrong, hint in [((6272, 16), "LayerNorm"), ((3136, 32), "BatchNorm"), ((196, 512), "InstanceNorm"),
                        ((1568, 128), "C/G channels"), ((1568, 64), "C/G channels"),
                        ((100, 100), "differ from the correct")]:
        with pytest.raises(NotYet, match=hint):
            family.check_counts(wrong)


def _gn(x, groups, ddof=0, sqrt=True, interleave=False, eps=1e-5):
    N, C = x.shape[:2]
    xg = x.reshape(N, C // groups, groups, *x.shape[2:]) if interleave else x.reshape(N, groups, C // groups, *x.shape[2:])
    axes = (1, 3, 4) if interleave else (2, 3, 4)
    var = xg.var(axis=axes, ddof=ddof, keepdims=True) + eps
    return ((xg - xg.mean(axis=axes, keepdims=True)) / (np.sqrt(var) if sqrt else var)).reshape(x.shape)


def test_exercise_2_groupnorm():
    x = family.exercise_x()
    family.check_groupnorm(_gn(x, 3))
    family.check_groupnorm(...)
    cases = [(_gn(x, 1), "LayerNorm"), (_gn(x, 6), "InstanceNorm"), (family.bnlib_forward(x, "batch"), "BatchNorm"),
             (_gn(x, 3, interleave=True), "every G-th channel"), (_gn(x, 3, ddof=1), "K − 1"),
             (_gn(x, 3, sqrt=False), "square root"), (_gn(x, 3, eps=0.0), "ε inside the square root"),
             (_gn(x, 3).reshape(2, 3, 2, 2, 2), r"reshape it back to \(2, 6, 2, 2\)"),
             (_gn(x, 3).reshape(2, 24), "reshape it back"), (_gn(x, 3) + 0.5, "differ from the correct")]
    for wrong, hint in cases:
        with pytest.raises(NotYet, match=hint):
            family.check_groupnorm(wrong)
    x_ = x.reshape(2, 3, 2, 2, 2)                               # ε outside the square root
    c = x_ - x_.mean(axis=(2, 3, 4), keepdims=True)
    with pytest.raises(NotYet, match="ε inside"):
        family.check_groupnorm((c / (np.sqrt(x_.var(axis=(2, 3, 4), keepdims=True)) + 1e-5)).reshape(x.shape))


def test_exercise_3_renorm_matches_the_layer():
    brn = bnlib.BatchRenorm(1, r_max=3, d_max=5, warmup=0, dtype=np.float64)
    brn.running_mean[:], brn.running_var[:] = family.RD_RUNNING
    brn.track_running_stats = False
    brn.forward(family.RD_BATCH[:, None])
    np.testing.assert_allclose([brn.r[0], brn.d[0]], family.renorm_rd(), rtol=1e-12)


def test_exercise_3_renorm_hints():
    b, eps = family.RD_BATCH, 1e-5
    family.check_renorm((np.sqrt(b.var() + eps), 5.0))
    family.check_renorm(...)
    s = np.sqrt(1 + eps)
    cases = [((np.sqrt(b.var() + eps) / s, 6.0 / s), "clip it"), ((s / np.sqrt(b.var() + eps), 5.0), "other way"),
             ((np.sqrt(b.var(ddof=1) + eps) / s, 5.0), "N − 1"),
             ((np.sqrt(b.var() + eps) / s, 6.0 / np.sqrt(b.var() + eps)), "running σ"),
             ((b.var(), 5.0), "square roots"), ((3.0, 5.0), "differ from the correct")]
    for wrong, hint in cases:
        with pytest.raises(NotYet, match=hint):
            family.check_renorm(wrong)


# ---------------------------------------------------------------- Japanese
def _draws_every_glyph(fig):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")               # "Glyph … missing from font" is a UserWarning
        fig.canvas.draw()


def test_figures_summaries_tables_and_hints_in_japanese(small_sweep, capsys):
    bnlib.set_language("ja")
    try:
        d = family.axes_dashboard()
        s = d.set(norm="group", groups=3)
        assert s.startswith("グループ正規化（G = 3 グループ、各 2 チャネル）: 統計量 1 つが") and "個" in s
        assert d.controls["n"].description == "サンプル n" and d.fig.axes[0].get_ylabel() == "バッチ内のサンプル n"
        _draws_every_glyph(d.fig)
        capsys.readouterr()                           # what the dashboard printed
        family.print_comparison(family.compare_with_bnlib())
        table = capsys.readouterr().out.splitlines()
        assert table[0].startswith("正規化") and table[1].startswith("バッチ正規化")
        assert len({bnlib.i18n.columns(line) for line in table}) == 1            # columns line up with kana and kanji
        family.print_sweep(small_sweep)
        assert "バッチサイズ N" in capsys.readouterr().out
        for fig in (family.batch_size_figure(small_sweep), family.renorm_figure(small_sweep), family.renorm_dashboard().fig):
            _draws_every_glyph(fig)
        assert "クリップ" in family.renorm_dashboard(draws=100).set(r_max=1.0)
        with pytest.raises(NotYet, match="それはレイヤー正規化です"):
            family.check_counts((6272, 16))
        with pytest.raises(NotYet, match="d_max = 5 にクリップ"):
            b, eps = family.RD_BATCH, 1e-5
            family.check_renorm((np.sqrt(b.var() + eps) / np.sqrt(1 + eps), 6.0 / np.sqrt(1 + eps)))
        assert family.name("layer") == "レイヤー正規化"
    finally:
        bnlib.set_language("en")
    assert family.name("layer") == "LayerNorm"


# ---------------------------------------------------------------- fits the screen, answers fast
def test_the_g_slider_shows_only_for_groupnorm():
    """G means something only for GroupNorm, so its slider shows only then (disabled, it looked
    movable and a key press on it drew nothing); it keeps its value while hidden."""
    dash = family.axes_dashboard()
    groups = dash.controls["groups"]
    assert dash.controls["norm"].value == "batch" and groups.layout.display == "none"
    summary = dash.set(norm="group")
    assert groups.layout.display is None and "G = 2" in summary
    assert "G = 3" in dash.set(groups=3)
    dash.set(norm="layer")
    assert groups.layout.display == "none" and groups.value == 3


@pytest.mark.parametrize("language", ["en", "ja"])
def test_figures_fit_jupyterlab_and_the_dashboards_blit(small_sweep, language):
    """No figure wider than JupyterLab's output column at 1280 px with the file browser open;
    nothing cut off or overlapping in either language; every control of both dashboards redraws
    only the changed artists (blitting)."""
    import warnings
    from bnlib import plots
    bnlib.set_language(language)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")               # "Glyph … missing from font" would raise
            for fig in (family.batch_size_figure(small_sweep), family.renorm_figure(small_sweep)):
                assert not plots.layout_problems(fig)
            dash = family.axes_dashboard()
            for move in (dict(groups=3), dict(norm="layer"), dict(n=3), dict(c=5), dict(norm="instance"),
                         dict(groups=6), dict(norm="batch"), dict(groups=1)):
                assert dash.would_blit(**move), move
                assert not plots.layout_problems(dash.fig), move
            dash = family.renorm_dashboard(draws=300)
            for move in (dict(batch_size=128), dict(r_max=1.0), dict(d_max=0.0), dict(batch_size=2), dict(r_max=5.0)):
                assert dash.would_blit(**move), move
                assert not plots.layout_problems(dash.fig), move
    finally:
        bnlib.set_language("en")
