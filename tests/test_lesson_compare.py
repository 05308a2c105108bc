"""Lesson 04 (with and without BN): the experiment helpers on short runs, the learning-rate
dashboard driven across every learning rate with BN on and off, and the exercise checks with
their hints (on hand-made Histories where the answer must be exact)."""
import numpy as np
import pytest

import bnlib
from bnlib.checks import NotYet
from bnlib.lessons import compare
from bnlib.train import History


@pytest.fixture(scope="module")
def data():
    return bnlib.load_mnist5k()


@pytest.fixture(scope="module")
def pair(data):
    """A short Figure-1 pair: 100 steps, a record every 20."""
    return compare.figure1_runs(data, lr=0.3, steps=100, record_every=20, probe_size=50)


@pytest.fixture(scope="module")
def small_grid(data):
    """Two learning rates, 40 steps: one that trains, and one (1000) so large that the loss of
    both networks stays above 10·ln 10 for 20 steps in a row, so bnlib.train stops them."""
    return compare.lr_grid(data, lrs=(0.3, 1000.0), steps=40, record_every=20)


def fake(test_acc, train_acc=None, diverged=False, lr=0.1, steps=200):
    """A History with chosen accuracies (records every 100 steps)."""
    test_acc = np.asarray(test_acc, dtype=float)
    train_acc = test_acc if train_acc is None else np.asarray(train_acc, dtype=float)
    r = len(test_acc)
    loss = np.full(2 if diverged else steps, 2.3)
    return History(np.arange(len(loss)), loss, np.arange(r) * 100, train_acc, test_acc, [],
                   dict(steps=steps, lr=lr, batch_size=60, seed=0), diverged)


def test_networks_are_the_papers_twins():
    plain, bn = compare.network("plain"), compare.network("bn")
    assert plain.sizes == bn.sizes == [784, 100, 100, 100, 10]
    assert plain.norm is None and bn.norm == "batch" and plain.activation == bn.activation == "sigmoid"
    np.testing.assert_array_equal(plain.layers[0].W, bn.layers[0].W)     # same start
    with pytest.raises(ValueError, match="kind"):
        compare.network("layer")


def test_figure1_pair_and_its_numbers(pair):
    assert set(pair) == {"plain", "bn"}
    for h in pair.values():
        assert list(h.record_steps) == [0, 20, 40, 60, 80, 100]
    assert compare.accuracy_at(pair["bn"], 40) == pair["bn"].test_acc[2]
    with pytest.raises(ValueError, match="no record"):
        compare.accuracy_at(pair["bn"], 30)
    b = compare.band_numbers(pair["bn"])
    assert b["width_start"] > 1.0 and b["width_min"] <= b["width_max"]        # BN: a wide band from step 0
    assert compare.band_growth_all_units(pair["plain"]).shape == (100,)
    plain_w, bn_w = compare.start_band_widths(pair["plain"]), compare.start_band_widths(pair["bn"])
    assert plain_w.shape == bn_w.shape == (3,)
    assert np.all(plain_w[1:] < plain_w[:-1] / 3)               # Xavier + sigmoid: the spread shrinks per layer
    assert np.all((1.5 < bn_w) & (bn_w < 2.5))                  # BN: x̂ has std 1 in every layer
    p = pair["plain"].layers[0].pre.unit_percentiles[0]
    assert plain_w[0] == pytest.approx(np.median(p[:, 2] - p[:, 0]))


def test_figures_have_labeled_axes_and_legends(pair, small_grid, data):
    sweep = compare.init_sweep(data, stds=(0.01, 1.0), steps=20)
    figs = [compare.figure1(pair), compare.init_figure(sweep), compare.gap_figure(pair),
            compare.lr_dashboard(small_grid).fig]
    for fig in figs:
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    f1 = figs[0]
    assert all(ax.get_legend() for ax in f1.axes)
    assert f1.axes[1].get_ylim() == f1.axes[2].get_ylim()          # (b) and (c) share the y range


def test_truncate_equals_the_shorter_run(data):
    long = compare.run_pair(data, 0.3, 60, 20)
    short = compare.run_pair(data, 0.3, 40, 20)
    for kind in compare.KINDS:
        cut = compare.truncate(long[kind], 40)
        np.testing.assert_array_equal(cut.loss, short[kind].loss)
        np.testing.assert_array_equal(cut.test_acc, short[kind].test_acc)
        np.testing.assert_array_equal(cut.layers[0].pre.unit_percentiles, short[kind].layers[0].pre.unit_percentiles)
        assert cut.config["steps"] == 40
    grid = compare.lr_grid(data, lrs=(0.3,), steps=40, record_every=20, reuse=long)
    np.testing.assert_array_equal(grid[(0.3, "bn")].loss, short["bn"].loss)
    with pytest.raises(ValueError, match="no record"):
        compare.truncate(long["bn"], 30)


def test_grid_outcomes_and_table(small_grid, capsys):
    assert compare.grid_lrs(small_grid) == [0.3, 1000.0]
    assert compare.outcome(small_grid[(1000.0, "plain")]) == "diverged"
    assert np.isnan(compare.final_accuracy(small_grid[(1000.0, "bn")]))
    assert small_grid[(1000.0, "bn")].config["steps"] == 40 and len(small_grid[(1000.0, "bn")].loss) == 20
    assert compare.outcome(fake([0.1, 0.12])) == "stalled" and compare.outcome(fake([0.1, 0.6])) == "learned"
    compare.sweep_table(small_grid)
    out = capsys.readouterr().out
    assert "learning rate 1000" in out and "diverged" in out


def test_a_loss_spike_that_recovers_is_not_stopped(data):
    """BN at lr 10: the loss jumps above 10·ln 10 in the first steps, then comes back down."""
    pair = compare.run_pair(data, 10.0, 30, 10, probe_size=20)
    bn = pair["bn"]
    assert not bn.diverged and len(bn.loss) == 30
    assert compare.first_loss_peak(bn) > 10 * np.log(10) > bn.loss[-5:].max()
    assert 0 <= compare.stuck_units(bn) <= 1 and 0 <= compare.stuck_units(pair["plain"]) <= 1
    stuck, others = compare.beta_gamma_ratio(bn)
    assert np.isnan(stuck) or stuck >= 0
    assert others >= 0
    assert bn.network.norm == "batch" and pair["plain"].network.norm is None


def test_stuck_units_counts_narrow_bands():
    units = np.zeros((2, 4, 3))
    units[-1, :, 2] = [0.005, 0.02, 0.5, 0.0]           # 85th − 15th percentile of each unit's output
    h = fake([0.1, 0.1])
    h.layers = [type("Layer", (), {"act": type("Stats", (), {"unit_percentiles": units})})()]
    assert compare.stuck_units(h) == 0.5


def test_lr_dashboard_every_lr_with_bn_on_and_off(small_grid):
    dash = compare.lr_dashboard(small_grid)
    assert [v for _, v in dash.controls["lr"].options] == [0.3, 1000.0]
    summaries = set()
    for lr in (0.3, 1000.0):
        for bn in (True, False):
            s = dash.set(lr=lr, bn=bn)
            assert s.startswith(f"lr {lr:g}, {'with' if bn else 'without'} BN")
            h = small_grid[(lr, "bn" if bn else "plain")]
            assert ("diverged" in s) == h.diverged
            summaries.add(s)
    assert len(summaries) == 4
    ax_sweep, ax_acc, _ = dash.fig.axes
    dash.set(lr=0.3, bn=True)
    h = small_grid[(0.3, "bn")]
    np.testing.assert_array_equal(ax_acc.get_lines()[1].get_ydata(), h.test_acc)
    assert dash.controls["bn"].description == "batch norm on"
    dash.set(bn=False)
    assert dash.controls["bn"].description == "batch norm off"


def test_check_gap_accepts_the_answer_and_hints_each_mistake(capsys):
    runs = {"plain": fake([0.1, 0.5], [0.1, 0.52]), "bn": fake([0.1, 0.9], [0.13, 0.98])}
    compare.check_gap(0.98 - 0.9, runs)
    assert "✓" in capsys.readouterr().out
    compare.check_gap(..., runs)
    assert "not attempted" in capsys.readouterr().out
    for wrong, hint in [(0.9 - 0.98, "test − training"), (0.52 - 0.5, "without BN"), (0.13 - 0.1, "step 0"),
                        (8.0, "not in percent")]:
        with pytest.raises(NotYet, match=hint):
            compare.check_gap(wrong, runs)


def test_check_plain_mask_accepts_the_answer_and_hints_each_mistake(capsys):
    lrs = (0.03, 0.3, 1.0, 10.0)
    plain = [fake([0.1, 0.1]), fake([0.1, 0.2]), fake([0.1, 0.4]), fake([0.1], diverged=True)]
    bn = [fake([0.1, 0.85]), fake([0.1, 0.9]), fake([0.1, 0.9]), fake([0.1], diverged=True)]
    grid = {}
    for lr, p, b in zip(lrs, plain, bn):
        grid[(lr, "plain")], grid[(lr, "bn")] = p, b
    right = np.array([compare.final_accuracy(grid[(lr, "plain")]) >= 0.3 for lr in lrs])
    assert right.tolist() == [False, False, True, False]
    compare.check_plain_mask(right, grid)
    compare.check_plain_mask(right.tolist(), grid)
    assert capsys.readouterr().out.count("✓") == 2
    compare.check_plain_mask(..., grid)
    assert "not attempted" in capsys.readouterr().out
    for wrong, hint in [([True, True, True, False], "with BN"), ([False, False, True, True], "diverged"),
                        ([True, True, False, True], "DID reach"), ([False, False, False, False], "fraction"),
                        ([0.1, 0.2, 0.4, 0.0], "not the accuracies"), ([False, False, True], "4 entries, not 3")]:
        with pytest.raises(NotYet, match=hint):
            compare.check_plain_mask(np.array(wrong), grid)
    with pytest.raises(NotYet, match="not a dict"):
        compare.check_plain_mask(dict(zip(lrs, right)), grid)


def test_check_scale_invariance(data, capsys):
    net = compare.network("bn")
    linear, bn, _ = net.hidden[0]
    u = linear.forward(data.x_train[:60])
    y1 = bn.forward(u).copy()
    y2 = bn.forward(10 * u)
    answer = np.abs(y2 - y1).max()
    assert answer < 1e-3
    compare.check_scale_invariance(answer, data)
    assert "✓" in capsys.readouterr().out
    compare.check_scale_invariance(None, data)
    assert "not attempted" in capsys.readouterr().out
    for wrong, hint in [(np.abs(10 * u - u).max(), "inputs"), (np.abs(10 * y1 - y1).max(), "scaled BN's output"),
                        (np.abs(y2 - y1), "one number"), ("0.0", "text")]:
        with pytest.raises(NotYet, match=hint):
            compare.check_scale_invariance(wrong, data)


@pytest.mark.parametrize("language", ["en", "ja"])
def test_figures_fit_jupyterlab_and_the_dashboard_blits(pair, small_grid, data, language):
    """No figure wider than JupyterLab's output column at 1280 px with the file browser open;
    nothing cut off or overlapping, in either language; every move of the learning-rate slider
    and the BN switch redraws only the changed artists (blitting)."""
    import warnings
    import bnlib
    from bnlib import plots
    bnlib.set_language(language)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")               # "Glyph … missing from font" would raise
            sweep = compare.init_sweep(data, stds=(0.01, 1.0), steps=20)
            for fig in (compare.figure1(pair), compare.init_figure(sweep), compare.gap_figure(pair)):
                assert not plots.layout_problems(fig)
            dash = compare.lr_dashboard(small_grid)
            assert not plots.layout_problems(dash.fig)
            for move in (dict(lr=1000.0), dict(bn=False), dict(lr=0.3), dict(bn=True)):
                assert dash.would_blit(**move), move
                assert not plots.layout_problems(dash.fig), move
    finally:
        bnlib.set_language("en")
