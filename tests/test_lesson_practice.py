"""Lesson 12 (bnlib.lessons.practice): BN in real projects. The shifted digits, the four ways to
fine-tune, AdaBN and its dashboard across the slider's whole range, per-device statistics, bad
stored orders, weight decay, every figure and table in both languages, and every exercise check
(reference accepted, each common mistake rejected with its own hint)."""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import bnlib  # noqa: E402
from bnlib.checks import NotYet  # noqa: E402
from bnlib.lessons import practice as pr  # noqa: E402
from exercise_support import accepts, not_attempted  # noqa: E402


@pytest.fixture(scope="module")
def base():
    return pr.train_base()


# --------------------------------------------------------------------------- data
def test_shifts_are_deterministic_and_stay_pixels(base):
    _model, _history, data = base
    x = data.x_test[:50]
    for kind in ("clean",) + pr.SHIFTS:
        a, b = pr.shift(x, kind, seed=3), pr.shift(x, kind, seed=3)
        np.testing.assert_array_equal(a, b)
        assert a.dtype == x.dtype and a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    np.testing.assert_allclose(pr.shift(x, "faded"), 0.3 * x + 0.35, rtol=1e-6)
    np.testing.assert_allclose(pr.shift(x, "inverted"), 1 - x)
    assert not np.array_equal(pr.shift(x, "scanner", seed=1), pr.shift(x, "scanner", seed=2))
    np.testing.assert_allclose(pr.rotate(x, 0), x, atol=1e-6)
    np.testing.assert_allclose(pr.rotate(pr.rotate(x, 90), 90), pr.rotate(x, 180), atol=1e-5)
    np.testing.assert_allclose(pr.rotate(x, 180).reshape(-1, 28, 28), x.reshape(-1, 28, 28)[:, ::-1, ::-1], atol=1e-5)
    with pytest.raises(ValueError, match="unknown shift"):
        pr.shift(x, "blurred")
    sets = pr.shifted_sets(data)
    assert set(sets) == {"clean", *pr.SHIFTS} and sets is pr.shifted_sets(data), "cached for the lesson's data"
    np.testing.assert_array_equal(sets["rotated"].y_test, data.y_test)


def test_train_base_gives_independent_copies_in_eval_mode(base):
    model, history, data = base
    again, _, _ = pr.train_base()
    assert again is not model and not any(layer.training for layer in model.layers)
    again.norm_layers()[0].running_mean[...] = 7.0
    assert not np.any(model.norm_layers()[0].running_mean == 7.0)
    assert history.final_test_acc > 0.9 and history.weight_norms.shape == (11, 3)


# --------------------------------------------------------------------------- fine-tuning
def test_the_four_ways_to_fine_tune_change_what_they_should(base):
    model, _, data = base
    new = pr.shifted_sets(data)["scanner"]
    kw = dict(images=40, steps=8, batch_size=5)
    tuned = {p: pr.fine_tune(model, new, p, **kw) for p in pr.POLICIES}
    for policy, t in tuned.items():
        weights, means = pr.backbone_changed(model, t)
        head_moved = not np.array_equal(t.layers[-1].W, model.layers[-1].W)
        assert head_moved, policy
        assert (weights == 0) == policy.startswith("head"), policy
        assert (means == 0) == policy.endswith("frozen"), policy
        assert not any(layer.training for layer in t.layers) and not any(bn.frozen for bn in t.norm_layers())
    with pytest.raises(ValueError, match="unknown policy"):
        pr.fine_tune(model, new, "everything")
    assert pr.policy_label("head").startswith("(c)")


def test_fine_tune_table_print_and_figure_in_both_languages(base, capsys):
    model, _, data = base
    table = pr.fine_tune_table(model, data)
    assert set(table.accuracy) == {(s, p) for s in ("scanner", "rotated") for p in pr.POLICIES}
    assert all(0 <= v <= 1 for pair in table.accuracy.values() for v in pair)
    for lang, word in (("en", "before fine-tuning"), ("ja", "ファインチューニング前")):
        bnlib.set_language(lang)
        pr.print_fine_tune_table(table)
        out = capsys.readouterr().out
        assert word in out and out.count("%") == 2 * 2 * 5
        fig = pr.fine_tune_figure(table)
        assert len(fig.axes) == 2 and fig.get_size_inches()[0] <= pr.MAX_WIDTH
    with pytest.raises(ValueError, match="train_base"):
        pr.fine_tune_table(model, bnlib.load_mnist5k(seed=1))


# --------------------------------------------------------------------------- domain shift and AdaBN
def test_adabn_undoes_fading_exactly_and_inversion_not_at_all(base):
    model, _, data = base
    sets = pr.shifted_sets(data)
    pool = slice(0, 1000)
    ada = {k: pr.adapted(model, sets[k].x_train[pool]) for k in ("clean", "faded", "inverted")}
    x_hat = {k: pr.first_x_hat(ada[k], sets[k].x_test[:200]) for k in ada}
    assert np.abs(x_hat["faded"] - x_hat["clean"]).max() < 1e-2
    assert np.abs(x_hat["inverted"] + x_hat["clean"]).max() < 1e-2
    assert pr.same_predictions(ada["clean"], ada["clean"], data.x_test[:100]) == 1.0
    np.testing.assert_array_equal(model.norm_layers()[0].running_mean, pr.train_base()[0].norm_layers()[0].running_mean)


def test_domain_shift_table_and_its_print(base, capsys):
    model, _, data = base
    table = pr.domain_shift_table(model, data)
    assert list(table) == ["clean", *pr.SHIFTS]
    pr.print_domain_shift_table(table)
    out = capsys.readouterr().out
    assert "AdaBN" in out and pr.shift_label("rotated") in out


def test_adabn_dashboard_across_the_whole_slider(base):
    model, _, data = base
    dash = pr.adabn_dashboard(model, data)
    for n in pr.ADABN_COUNTS:
        summary = dash.set(n=n)
        assert f"n = {n} " in summary and summary.count("%") == 5
    acc, means = pr.adabn_curve(model, data)
    assert [len(acc[n]) for n in pr.ADABN_COUNTS] == [5] * (len(pr.ADABN_COUNTS) - 1) + [1]
    assert all(m.shape == (100,) for n in means for m in means[n])
    bnlib.set_language("ja")
    summary = pr.adabn_dashboard(model, data).set(n=100)
    assert "枚で AdaBN" in summary


# --------------------------------------------------------------------------- precise statistics, devices
def test_precise_runs_share_weights_and_draw(base, capsys):
    model, _, data = base
    precise = pr.precise_runs(data)
    assert precise.same_weights and set(precise.running) == set(pr.MOMENTA)
    assert len({round(v, 6) for v in precise.recomputed.values()}) == 1, "same weights, same recomputed statistics"
    pr.print_precise(precise)
    assert capsys.readouterr().out.count("%") == 2 * len(pr.MOMENTA)
    assert len(pr.precise_figure(precise).axes) == 2


def test_mean_spread_is_one_over_root_n(base):
    model, _, data = base
    for n in (60, 12, 4):
        assert abs(pr.mean_spread(model, data, n) * np.sqrt(n) - 1) < 0.08
    devices = pr.device_runs(data)
    assert set(devices.accuracy) == set(pr.DEVICE_SIZES)
    assert devices.accuracy[60] == pytest.approx(base[1].final_test_acc)
    assert len(pr.devices_figure(devices).axes) == 2


# --------------------------------------------------------------------------- orders, weight decay
def test_stored_orders():
    y = np.repeat(np.arange(3), [130, 125, 70])[np.random.default_rng(0).permutation(325)]
    sorted_idx = pr.stored_order(y, "sorted")
    assert np.all(np.diff(y[sorted_idx]) >= 0) and sorted(sorted_idx) == list(range(325))
    pure = pr.stored_order(y, "class_pure", batch=60, seed=1)
    assert len(pure) == 60 * (2 + 2 + 1) and len(set(pure)) == len(pure)
    assert all(len(set(y[block])) == 1 for block in pure.reshape(-1, 60))
    np.testing.assert_array_equal(pure, pr.stored_order(y, "class_pure", batch=60, seed=1))
    assert pr.order_label("sorted", "bn").endswith(pr.NORM_LABELS["bn"])


def test_order_runs_print_and_figure(base, capsys):
    _, _, data = base
    orders = pr.order_runs(data)
    assert set(orders.accuracy) == {("shuffled", "bn")} | {(o, n) for o in pr.ORDERS for n in ("bn", "plain")}
    assert all(abs(p.sum() - 1) < 1e-9 for p in orders.predicted.values())
    assert all(h.config["shuffle"] is False for k, h in orders.histories.items() if k[0] != "shuffled")
    pr.print_orders(orders)
    assert capsys.readouterr().out.count("%") == 5
    assert len(pr.orders_figure(orders).axes) == 1


def test_weight_decay_runs_and_scale_invariance(base):
    model, _, data = base
    runs = pr.weight_decay_runs(data)
    assert set(runs) == {0.0, pr.WEIGHT_DECAY}
    assert runs[pr.WEIGHT_DECAY][1].config["weight_decay"] == pr.WEIGHT_DECAY
    assert len(pr.weight_decay_figure(runs).axes) == 2
    assert pr.scale_invariance_gap(model, data.x_test[:100], factor=3.0) < 1e-3
    assert [p.shape for p in pr.decayed_arrays(model)] == [(784, 100), (100, 100), (100, 10)]


def test_every_figure_has_its_japanese_text(base):
    model, _, data = base
    bnlib.set_language("ja")
    fig = pr.shift_examples(data)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0] == pr.shift_label("clean") and "きれい" in labels[0]
    fig = pr.weight_decay_figure(pr.weight_decay_runs(data))
    assert "学習ステップ" in fig.axes[0].get_xlabel()


# --------------------------------------------------------------------------- fits the screen, answers fast
@pytest.mark.parametrize("language", ["en", "ja"])
def test_figures_fit_jupyterlab_and_the_dashboards_blit(base, language):
    """No figure wider than JupyterLab's output column at 1280 px with the file browser open;
    nothing cut off or overlapping in either language; the AdaBN slider redraws only the marker
    and the recomputed-mean line, at every one of its values, moved up and back down."""
    import warnings
    from bnlib import plots
    model, _, data = base
    bnlib.set_language(language)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # "Glyph … missing from font" would raise
        for fig in (pr.shift_examples(data), pr.fine_tune_figure(pr.fine_tune_table(model, data)),
                    pr.precise_figure(pr.precise_runs(data)), pr.devices_figure(pr.device_runs(data)),
                    pr.orders_figure(pr.order_runs(data)), pr.weight_decay_figure(pr.weight_decay_runs(data))):
            assert fig.get_figwidth() <= plots.MAX_WIDTH
            assert not plots.layout_problems(fig)
        dash = pr.adabn_dashboard(model, data)
        assert not plots.layout_problems(dash.fig)
        counts = list(pr.ADABN_COUNTS)
        for n in counts[1:] + counts[-2::-1]:             # the slider starts at counts[0]: up, then back down
            assert dash.would_blit(n=n), n
            assert not plots.layout_problems(dash.fig), n


# --------------------------------------------------------------------------- exercises
def test_exercise_1(capsys):
    not_attempted(capsys, pr.check_sync_noise, ...)
    accepts(capsys, pr.check_sync_noise, 1 / np.sqrt(32))
    for wrong, hint in ((0.5, "one device"), (1 / 32, "square root"), (1 / np.sqrt(8), "counts images")):
        with pytest.raises(NotYet, match=hint):
            pr.check_sync_noise(wrong)


def test_exercise_2(capsys):
    not_attempted(capsys, pr.check_adabn_by_hand, ...)
    accepts(capsys, pr.check_adabn_by_hand, [2.0, 4.0])
    for wrong, hint in (([2.0, 8.0], "square"), ([1.5, 4.0], "every pixel"), ([1.75, 4.0], "own weight"),
                        ([2.0, 4.25], "does not change the variance"), ([3.0, 16.0], "old statistics")):
        with pytest.raises(NotYet, match=hint):
            pr.check_adabn_by_hand(wrong)


def test_exercise_3(capsys):
    p = pr.EX3
    not_attempted(capsys, pr.check_frozen_backward, ...)
    accepts(capsys, pr.check_frozen_backward, p["dy"] * p["gamma"] / np.sqrt(p["running_var"] + p["eps"]))
    std = np.sqrt(p["running_var"] + p["eps"])
    for wrong, hint in ((p["dy"] * p["gamma"] / p["running_var"], "not by the variance"), (p["dy"] / std, "forgot γ"),
                        (p["dy"] * p["gamma"], "forgot to divide"),
                        ((p["dy"] - p["dy"].mean(axis=0)) * p["gamma"] / std, "constants")):
        with pytest.raises(NotYet, match=hint):
            pr.check_frozen_backward(wrong)
    with pytest.raises(NotYet, match="shape"):
        pr.check_frozen_backward(np.zeros(2))


def test_exercise_4(capsys):
    not_attempted(capsys, pr.check_decayed_count, ...)
    accepts(capsys, pr.check_decayed_count, 784 * 100 + 100 * 100 + 100 * 10)
    everything = 784 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10 + 4 * 100
    for wrong, hint in ((everything, "every parameter"), (everything - 210, "not only the biases"),
                        (89_400 + 210, "biases b are exempt"), (88_400, "output layer")):
        with pytest.raises(NotYet, match=hint):
            pr.check_decayed_count(wrong)


def test_exercise_hints_in_japanese():
    bnlib.set_language("ja")
    with pytest.raises(NotYet, match="平方根"):
        pr.check_sync_noise(1 / 32)
    with pytest.raises(NotYet, match="定数"):
        p = pr.EX3
        pr.check_frozen_backward((p["dy"] - p["dy"].mean(axis=0)) * p["gamma"] / np.sqrt(p["running_var"] + p["eps"]))
