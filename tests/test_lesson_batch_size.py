"""Lesson 05 (batch size): batch sampling as the training loop does it, μ_B/σ²_B statistics against
theory, batch coupling, the batch-size slider driven across its whole range, a short training
run per batch size, the batch-of-one error, and the exercise checks with their hints."""
import numpy as np
import pytest

import bnlib
from bnlib.checks import NotYet
from bnlib.lessons import batch_size


@pytest.fixture(scope="module")
def data():
    return bnlib.load_mnist5k()


@pytest.fixture(scope="module")
def u(data):
    return batch_size.population(data)


@pytest.fixture(scope="module")
def stats(u):
    return batch_size.batch_statistics(u, count=1000)


def test_population_is_one_feature_of_the_first_layer(data, u):
    assert u.shape == (4000,) and u.dtype == np.float64
    net = batch_size.network("plain")
    np.testing.assert_allclose(u, net.layers[0].forward(data.x_train)[:, 0], rtol=1e-6)
    assert u.std() > 0


def test_sample_batches_cuts_shuffles_like_the_training_loop():
    rng = np.random.default_rng(0)
    idx = batch_size.sample_batches(10, 3, 7, rng)
    assert idx.shape == (7, 3)
    for row in idx:
        assert len(set(row)) == 3                       # no repeated example within a batch
    first_shuffle = idx[:3].ravel()                     # 10 // 3 = 3 batches per shuffle
    assert len(set(first_shuffle)) == 9                 # disjoint within one shuffle
    assert batch_size.sample_batches(10, 1, 10, np.random.default_rng(0)).shape == (10, 1)


def test_statistics_match_theory(u, stats):
    assert set(stats) == set(batch_size.BATCH_SIZES)
    mu, var = stats[8]
    assert mu.shape == var.shape == (1000,)
    assert np.all(stats[1][1] == 0)
    sizes, measured = batch_size.spread(stats)
    ratio = measured / batch_size.theory_spread(u, sizes)
    assert np.all(np.abs(ratio - 1) < 0.2)
    assert 0.4 < batch_size.variance_ratio(u, stats, 2) < 0.6
    again = batch_size.batch_statistics(u, sizes=(8,), count=1000)       # seeded: same numbers
    np.testing.assert_array_equal(again[8][0], batch_size.batch_statistics(u, sizes=(8,), count=1000)[8][0])


def test_coupling_two_values_give_plus_or_minus_one_and_large_batches_converge(u):
    xs = batch_size.coupling(u, sizes=(2, 4, 256), sets=100)
    assert set(xs) == {2, 4, 256} and xs[2].shape == (100,)
    assert np.mean(np.abs(np.abs(xs[2]) - 1) < 0.05) > 0.9
    assert xs[256].std() < xs[4].std() / 3
    assert abs(xs[256].mean() - batch_size.population_xhat(u)) < 0.05
    fig = batch_size.coupling_figure(u, xs)
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title() and ax.get_legend()


def test_spread_dashboard_every_batch_size(u, stats):
    dash = batch_size.spread_dashboard(u, stats)
    assert list(dash.controls["N"].options) == list(batch_size.BATCH_SIZES)
    summaries = []
    mu_bars = dash.fig.axes[0].patches[0]
    for N in batch_size.BATCH_SIZES:
        s = dash.set(N=N)
        assert s.startswith(f"N = {N}:")
        assert mu_bars.get_data().values.max() == 1                   # scaled: the tallest bar is 1
        summaries.append(s)
    assert len(set(summaries)) == len(summaries)
    for ax in dash.fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


def test_training_per_batch_size_and_figure(data):
    small = bnlib.Dataset(data.x_train[:240], data.y_train[:240], data.x_test[:100], data.y_test[:100])
    runs = batch_size.batch_size_runs(small, sizes=(2, 8), epochs=1)
    assert set(runs) == {(2, "plain"), (2, "bn"), (8, "plain"), (8, "bn")}
    assert runs[(2, "bn")].config["steps"] == 120 and runs[(8, "plain")].config["steps"] == 30
    sizes, acc, steps = batch_size.accuracy_table(runs)
    assert sizes.tolist() == [2, 8] and steps.tolist() == [120, 30] and acc["bn"].shape == (2,)
    h = runs[(2, "bn")]
    assert batch_size.final_loss(h) == pytest.approx(h.loss[-12:].mean())      # the last tenth of 120 steps
    assert batch_size.final_loss(runs[(8, "bn")]) == pytest.approx(runs[(8, "bn")].loss[-3:].mean())
    fig = batch_size.batch_size_figure(runs)
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend()
    assert not bnlib.plots.layout_problems(fig)
    bnlib.set_language("ja")
    try:
        assert not bnlib.plots.layout_problems(batch_size.batch_size_figure(runs))
    finally:
        bnlib.set_language("en")


def test_batch_of_one_gives_a_clear_error(data):
    message = batch_size.batch_of_one_error(data)
    assert message is not None and "at least 2" in message and "LayerNorm" in message


def test_check_theory_spread(u, capsys):
    sd = u.std()
    batch_size.check_theory_spread(sd / 4, u, N=16)
    batch_size.check_theory_spread(float(f"{sd / 4:.3g}"), u, N=16)              # rounded to 3 digits
    assert capsys.readouterr().out.count("✓") == 2
    batch_size.check_theory_spread(..., u)
    assert "not attempted" in capsys.readouterr().out
    for wrong, hint in [(sd / 16, "square root"), (sd ** 2 / 16, "variance of μ_B"),
                        (sd / np.sqrt(15), "not √\\(N − 1\\)"), (u.var() / 4, "not the variance")]:
        with pytest.raises(NotYet, match=hint):
            batch_size.check_theory_spread(wrong, u, N=16)


def test_check_two_values(capsys):
    x = np.array([5.0, 1.0])
    right = (x - x.mean()) / np.sqrt(x.var() + 1e-5)
    batch_size.check_two_values(right)
    assert "✓" in capsys.readouterr().out
    batch_size.check_two_values(...)
    assert "not attempted" in capsys.readouterr().out
    for wrong, hint in [((x - 3) / np.sqrt(x.var(ddof=1) + 1e-5), "not N − 1"),
                        (x / np.sqrt(4 + 1e-5), "subtract"), ((x - 3) / (4 + 1e-5), "square root"),
                        (x - 3, "after subtracting"), (right[:1], "shape"), (right[0], "both values")]:
        with pytest.raises(NotYet, match=hint):
            batch_size.check_two_values(wrong)


def test_check_variance_ratio(u, stats, capsys):
    right = stats[4][1].mean() / u.var()
    batch_size.check_variance_ratio(right, u, stats, N=4)
    batch_size.check_variance_ratio(float(f"{right:.3f}"), u, stats, N=4)          # as the notebook prints it
    assert capsys.readouterr().out.count("✓") == 2
    batch_size.check_variance_ratio(None, u, stats)
    assert "not attempted" in capsys.readouterr().out
    for wrong, hint in [(right * 4 / 3, "do not rescale"), (1 / right, "other way round"),
                        (0.75, "that is the theory"), (stats[2][1].mean() / u.var(), "size 4"),
                        (stats[4][1].mean() / u.std(), "not by σ")]:
        with pytest.raises(NotYet, match=hint):
            batch_size.check_variance_ratio(wrong, u, stats, N=4)


@pytest.mark.parametrize("language", ["en", "ja"])
def test_figures_fit_jupyterlab_and_the_dashboard_blits(u, stats, data, language):
    """No figure wider than JupyterLab's output column at 1280 px with the file browser open;
    nothing cut off or overlapping in either language; every batch size blits."""
    import warnings
    import bnlib
    from bnlib import plots
    bnlib.set_language(language)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")               # "Glyph … missing from font" would raise
            dash = batch_size.spread_dashboard(u, stats)
            assert not plots.layout_problems(dash.fig)
            for N in dash.controls["N"].options[::-1]:
                assert dash.would_blit(N=N), N
            assert not plots.layout_problems(dash.fig)
            xs = batch_size.coupling(u, example=0, sizes=(2, 16), sets=20)
            assert not plots.layout_problems(batch_size.coupling_figure(u, xs, example=0))
    finally:
        bnlib.set_language("en")
