"""Lesson 07 (bnlib.lessons.placement): before or after the activation. The training helper on a
short run, the histogram dashboard across both controls, the measurements, the redundant-bias
demo, and every exercise check (reference accepted, each common mistake rejected with its hint)."""
import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bnlib.checks import NotYet  # noqa: E402
from bnlib.lessons import placement as pl  # noqa: E402
from exercise_support import accepts, not_attempted

NOTEBOOK = "07_before_or_after_activation.ipynb"


@pytest.fixture(scope="module")
def short():
    return pl.train_placements(steps=60, record_every=20)      # six short runs: the mechanics only


def test_train_placements_builds_six_runs_with_the_right_layout(short):
    runs, data = short
    assert set(runs) == {(a, p) for a in pl.ACTIVATIONS for p in pl.POSITIONS}
    for (act, pos), run in runs.items():
        assert run.model.activation == act
        assert (run.model.norm is None) == (pos == "none")
        if pos != "none":
            assert run.model.norm_position == pos
        assert list(run.history.record_steps) == [0, 20, 40, 60]
        assert act in run.label
    assert len(data.x_test) == 1000


def test_train_placements_returns_copies(short):
    runs, _ = short
    again, _ = pl.train_placements(steps=60, record_every=20)
    again["relu", "before"].model.hidden[0][0].b[...] = 7.0
    assert not np.any(runs["relu", "before"].model.hidden[0][0].b == 7.0)


def test_without_baselines(short):
    runs, _ = pl.train_placements(steps=60, record_every=20, baselines=False)
    assert set(runs) == {(a, p) for a in pl.ACTIVATIONS for p in ("before", "after")}
    full, _ = short
    assert np.array_equal(runs["sigmoid", "after"].history.test_acc, full["sigmoid", "after"].history.test_acc)
    dash = pl.histogram_dashboard(runs)                   # works without the "no BN" runs too
    assert "no BN" not in dash.set(activation="relu", step=40)
    plt.close(dash.fig)


def test_measurements_have_sane_ranges(short):
    runs, data = short
    x = data.x_test[:200]
    for (act, pos), run in runs.items():
        for f in (pl.saturated_fraction, pl.dead_fraction, pl.zero_fraction):
            v = f(run.model, x)
            assert v.shape == (3,) and np.all((v >= 0) & (v <= 1))
        assert pl.stability(run).shape == (3,) and pl.pre_std(run).shape == (3,)
        assert 0 <= pl.final_accuracy(run) <= 1
    relu = runs["relu", "before"].model
    assert np.all(pl.dead_fraction(relu, x) <= pl.zero_fraction(relu, x))


def test_biases_before_bn_do_not_move(short):
    runs, _ = short
    for act in pl.ACTIVATIONS:
        assert pl.linear_biases(runs[act, "before"]).max() < 1e-5
        assert pl.linear_biases(runs[act, "after"]).min() > 1e-3


def test_bias_shift_demo():
    d = pl.bias_shift_demo(shift=5.0, n=20)
    assert d["y_change"] < 1e-10 and d["db"] < 1e-10
    assert d["dW"] > 1e-3 and d["dbeta"] > 1e-3 and d["y_size"] > 1


def test_figures_and_table(short, capsys):
    runs, data = short
    plt.close(pl.accuracy_figure(runs))
    plt.close(pl.stability_figure(runs))
    pl.layer_table(runs, data)
    out = capsys.readouterr().out
    assert "saturated" in out and "dead units" in out and out.count("\n") == 7


def test_histogram_dashboard_across_both_controls(short):
    runs, _ = short
    dash = pl.histogram_dashboard(runs)
    summaries = [dash.set(activation=act, step=step)
                 for act in pl.ACTIVATIONS for step in dash.controls["step"].options]
    assert len(set(summaries)) == len(summaries), "the summary names activation and step"
    assert all(("saturated" in s) == s.startswith("sigmoid") for s in summaries)
    dash.set(activation="relu")
    assert dash.fig.axes[0].get_xlim() == pl.XLIM["relu"]           # ReLU, BN after: wide layer 1
    dash.set(activation="sigmoid")
    assert dash.fig.axes[0].get_xlim() == pl.XLIM["sigmoid"]
    fills = {p.get_label(): p.get_fill() for p in dash.fig.axes[0].patches}
    assert fills[pl.POSITION_LABELS["before"]] and not fills[pl.POSITION_LABELS["after"]]   # no mixed third color
    assert not fills[pl.POSITION_LABELS["none"]]
    plt.close(dash.fig)


# --------------------------------------------------------------------------- numbers the notebook quotes
def test_other_seeds_are_measured_and_quoted_as_stored():
    """07 §5 quotes the accuracy gaps of seeds 1–4 (too slow to train in the notebook). Measured again,
    they must show what §5 says: sigmoid, BN after ahead by 2–3 points every time; ReLU, before ahead
    or level, never more than about a point apart. The exact numbers depend on the processor (numpy's
    BLAS picks its matrix-product code by CPU, and each rounds differently; 400 steps turn that into up
    to about half a point), so the notebook quotes those of two machines, and each measured gap must lie
    within 0.6 point of the stored ones. Every edition must quote exactly the stored numbers."""
    for seed in (1, 2, 3, 4):
        gaps = pl.placement_gaps(seed)
        assert 1.5 < gaps["sigmoid"] < 3.5, (seed, gaps)
        assert -2.0 < gaps["relu"] <= 0.05, (seed, gaps)
        near = [abs(gaps["relu"] - stored[seed]) for stored in (pl.OTHER_SEEDS["relu"], pl.OTHER_MACHINE_RELU)]
        assert abs(gaps["sigmoid"] - pl.OTHER_SEEDS["sigmoid"][seed]) < 0.6 and min(near) < 0.6, (seed, gaps)
    root = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
    for path in [root / NOTEBOOK, root / "ja" / NOTEBOOK]:
        if not path.exists():
            continue
        md = "".join("".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
                     if c["cell_type"] == "markdown")
        for numbers in (*pl.OTHER_SEEDS.values(), pl.OTHER_MACHINE_RELU):
            quoted = [f"{v:+.1f}".replace("-", "−").replace("+0.0", "0.0") for v in numbers.values()]
            assert all(q in md for q in quoted), (path.name, quoted)


# --------------------------------------------------------------------------- exercises

def rejects(fn, answer, *args, hint):
    with pytest.raises(NotYet) as err:
        fn(answer, *args)
    assert hint in str(err.value), str(err.value)


def test_exercise_1(capsys):
    accepts(capsys, pl.check_removable_biases, 300)
    not_attempted(capsys, pl.check_removable_biases, ...)
    for wrong, hint in [(310, "output layer"), (100, "three hidden"), (600, "γ and β stay"),
                        (900, "only the biases"), (3, "count numbers")]:
        rejects(pl.check_removable_biases, wrong, hint=hint)


def test_exercise_2(capsys):
    h = np.random.default_rng(0).uniform(0, 1, size=(50, 10))
    accepts(capsys, pl.check_saturated, np.mean((h < 0.05) | (h > 0.95)), h)
    not_attempted(capsys, pl.check_saturated, None, h)
    rejects(pl.check_saturated, np.mean(h > 0.95), h, hint="top tail")
    rejects(pl.check_saturated, np.mean(h < 0.05), h, hint="bottom tail")
    rejects(pl.check_saturated, np.mean((h < 0.1) | (h > 0.9)), h, hint="0.05 and 0.95")
    rejects(pl.check_saturated, np.sum((h < 0.05) | (h > 0.95)), h, hint="count")
    rejects(pl.check_saturated, np.mean((h > 0.05) & (h < 0.95)), h, hint="NOT saturated")
    with pytest.raises(NotYet, match="shape"):
        pl.check_saturated(np.mean((h < 0.05) | (h > 0.95), axis=0), h)


def test_exercise_3(capsys):
    rng = np.random.default_rng(0)
    a = np.maximum(rng.normal(size=(40, 20)), 0)
    a[:, :5] = 0                                   # five dead units
    a[:30, 5:12] = 0                               # often zero, not dead
    accepts(capsys, pl.check_dead, 0.25, a)
    rejects(pl.check_dead, np.mean(a <= 0), a, hint="zero OUTPUTS")
    rejects(pl.check_dead, 5, a, hint="number of dead units")
    rejects(pl.check_dead, np.mean(np.any(a <= 0, axis=0)), a, hint="np.any")
    a2 = a.copy()
    a2[:4, :] = 0                                  # four images with all units off: axis=1 gives 0.1
    accepts(capsys, pl.check_dead, 0.25, a2)
    rejects(pl.check_dead, 0.1, a2, hint="wrong axis")


def test_exercise_4(capsys):
    p = pl.EX4
    accepts(capsys, pl.check_eval_shift, p["running_mean"] + p["c"])
    rejects(pl.check_eval_shift, p["running_mean"], hint="stored running mean")
    rejects(pl.check_eval_shift, p["running_mean"] - p["c"], hint="wrong direction")
    rejects(pl.check_eval_shift, p["b"] + p["c"], hint="new bias")


# --------------------------------------------------------------------------- Japanese
def _has_japanese(text):
    return any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in text)


def test_what_a_learner_reads_is_japanese(short, capsys):
    import bnlib
    runs, data = short
    bnlib.set_language("ja")
    try:
        dash = pl.histogram_dashboard(runs)
        assert _has_japanese(dash.set(activation="relu", step=40)) and _has_japanese(dash.set(activation="sigmoid"))
        assert _has_japanese(dash.controls["step"].description)
        assert _has_japanese(dash.fig.axes[0].get_title()) and _has_japanese(dash.fig.axes[0].get_xlabel())
        plt.close(dash.fig)
        for fig in (pl.accuracy_figure(runs), pl.stability_figure(runs)):
            assert _has_japanese(fig.axes[0].get_ylabel()) and _has_japanese(fig.axes[0].get_xlabel())
            plt.close(fig)
        capsys.readouterr()                                   # what the dashboard displayed
        pl.layer_table(runs, data)
        out = capsys.readouterr().out
        assert _has_japanese(out.splitlines()[0]) and out.count("\n") == 7
        with pytest.raises(NotYet) as err:
            pl.check_removable_biases(310)
        assert _has_japanese(str(err.value))
    finally:
        bnlib.set_language("en")
    assert pl.position_label("after") == "BN after the activation"


# --------------------------------------------------------------------------- fits the screen, answers fast
@pytest.mark.parametrize("language", ["en", "ja"])
def test_figures_fit_jupyterlab_and_the_dashboard_blits(short, language):
    """No figure wider than JupyterLab's output column at 1280 px with the file browser open;
    nothing cut off or overlapping in either language; the activation toggle and every step
    redraw only the histograms, shading and title (blitting): fixed axes."""
    import warnings
    import bnlib
    from bnlib import plots
    runs, _ = short
    bnlib.set_language(language)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")               # "Glyph … missing from font" would raise
            for fig in (pl.accuracy_figure(runs), pl.stability_figure(runs)):
                assert not plots.layout_problems(fig)
            dash = pl.histogram_dashboard(runs)
            ylim = dash.fig.axes[0].get_ylim()
            assert not plots.layout_problems(dash.fig)
            for move in [dict(step=step) for step in dash.controls["step"].options] + [
                    dict(activation="relu"), dict(step=0), dict(activation="sigmoid")]:
                assert dash.would_blit(**move), move
                assert not plots.layout_problems(dash.fig), move
            assert dash.fig.axes[0].get_ylim() == ylim
    finally:
        bnlib.set_language("en")
