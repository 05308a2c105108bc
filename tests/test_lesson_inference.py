"""Lesson 06 (bnlib.lessons.inference): train vs inference. Both dashboards across their full
range, the batch-statistics context, population statistics, the momentum conventions, folding,
and every exercise check (reference accepted, each common mistake rejected with its own hint)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import bnlib  # noqa: E402
from bnlib.checks import NotYet  # noqa: E402
from bnlib.lessons import inference as inf  # noqa: E402
from exercise_support import accepts, not_attempted


@pytest.fixture(scope="module")
def trained():
    return inf.train_bn_network(steps=120, lr=0.5)        # short run: enough for the mechanics


@pytest.fixture(scope="module")
def stream(trained):
    model, _, data = trained
    return inf.batch_stat_stream(model, data, batches=80)


def drive(dash, name, values):
    return [dash.set(**{name: value}) for value in values]


# --------------------------------------------------------------------------- model and modes
def test_train_bn_network_returns_independent_copies(trained):
    model, history, data = trained
    again, _, _ = inf.train_bn_network(steps=120, lr=0.5)
    assert again is not model
    again.norm_layers()[0].running_mean[...] = 123.0
    assert not np.any(model.norm_layers()[0].running_mean == 123.0)
    assert all(not layer.training for layer in model.layers), "comes back in eval mode"
    assert history.final_test_acc > 0.7


def test_batch_statistics_context_restores_modes_and_leaves_running_stats(trained):
    model, _, data = trained
    before = inf.running_state(model)
    with model.batch_statistics():
        assert all(layer.training for layer in model.layers)
        assert not any(bn.track_running_stats for bn in model.norm_layers())
        model.forward(data.x_test[:50])
    assert all(not layer.training for layer in model.layers)
    assert all(bn.track_running_stats for bn in model.norm_layers())
    assert inf.same_state(before, inf.running_state(model))
    with pytest.raises(RuntimeError):                       # restored even when the block fails
        with model.batch_statistics():
            raise RuntimeError("boom")
    assert all(not layer.training for layer in model.layers)


def test_batch_of_one_in_training_mode_raises(trained):
    model, _, data = trained
    with pytest.raises(ValueError, match="single value"):
        inf.logits_with_batch_statistics(model, data.x_test[:1])
    with pytest.raises(ValueError):
        inf.accuracy_in_batches(model, data, 1)


def test_batchmates_change_train_mode_but_not_eval_mode(trained):
    model, _, data = trained
    probs = inf.batchmate_probabilities(model, data, index=0)
    assert len(probs) == 11 and "mixed digits" in probs and "all 9s" in probs
    ev = np.array([p["eval"] for p in probs.values()])
    tr = np.array([p["train"] for p in probs.values()])
    assert np.allclose(ev.sum(axis=1), 1) and np.allclose(tr.sum(axis=1), 1)
    assert np.abs(ev - ev[0]).max() < 1e-5
    assert np.abs(tr - tr[0]).max() > 0.05


def test_sorted_batches_hurt_only_training_mode(trained):
    model, _, data = trained
    acc = inf.sorted_vs_shuffled(model, data)
    assert acc["eval", "shuffled"] == acc["eval", "sorted"]
    assert acc["train", "sorted"] < acc["train", "shuffled"] - 0.2


def test_print_accuracies_names_each_order(trained, capsys):
    model, _, data = trained
    inf.print_accuracies(inf.sorted_vs_shuffled(model, data))
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[1].startswith("train mode, batches sorted by digit") and out[1].endswith("%")


# --------------------------------------------------------------------------- dashboards
def test_batchmates_dashboard_across_every_choice(trained):
    model, _, data = trained
    dash = inf.batchmates_dashboard(model, data, index=0)
    options = [value for _label, value in dash.controls["batchmates"].options]
    summaries = drive(dash, "batchmates", options[1:] + options[:1])
    assert all(s.startswith("batchmates ") and "eval mode says" in s for s in summaries)
    assert len(set(summaries)) == len(options), "the summary names the chosen batchmates"
    plt.close(dash.fig)


def test_running_dashboard_across_every_momentum(stream):
    dash = inf.running_dashboard(stream)
    options = [value for _, value in inf.MOMENTUM_OPTIONS]
    summaries = drive(dash, "momentum", options[::-1])
    assert len(set(summaries)) == len(options)
    assert any("cumulative" in s for s in summaries) and any("α = 0.001" in s for s in summaries)
    plt.close(dash.fig)


# --------------------------------------------------------------------------- running and population statistics
def test_running_trace_matches_the_batchnorm_layer():
    rng = np.random.default_rng(0)
    batches = rng.normal(2.0, 1.0, size=(30, 8, 5))
    for momentum in (0.1, 0.5, None):
        bn = bnlib.BatchNorm(5, momentum=momentum, dtype=np.float64)
        for x in batches:
            bn.forward(x)
        trace = inf.running_trace(batches.mean(axis=1), "cumulative" if momentum is None else momentum)
        assert np.allclose(bn.running_mean, trace[-1])


def test_running_trace_cumulative_is_the_plain_mean():
    v = np.arange(1.0, 11.0)
    assert np.allclose(inf.running_trace(v, "cumulative"), np.cumsum(v) / np.arange(1, 11))
    assert np.allclose(inf.running_trace(v, 1.0), v)
    assert np.allclose(inf.running_trace(v, 0.0, start=3.0), 3.0)


def test_tracking_numbers():
    v = np.full(100, 2.0)
    slow = inf.tracking_numbers(inf.running_trace(v, 0.001), v, 2.0)
    fast = inf.tracking_numbers(inf.running_trace(v, 0.5), v, 2.0)
    assert slow["settle"] is None
    assert fast["settle"] == 4                       # gap 2·0.5^k ≤ 0.2 first at k = 4
    assert fast["rms"] < 1e-12 and fast["batch_rms"] == 0


def test_population_statistics_equal_a_cumulative_average(trained, stream):
    model, _, data = trained
    pop = inf.population_statistics(stream)
    n = stream.batch_size
    assert np.allclose(pop[0][1], n / (n - 1) * stream.variances[0].mean(axis=0))
    cumulative = inf.cumulative_copy(model, data, stream)
    for bn, (mean, var) in zip(cumulative.norm_layers(), pop):
        assert np.allclose(bn.running_mean, mean, rtol=1e-4, atol=1e-5)
        assert np.allclose(bn.running_var, var, rtol=1e-4)
    swapped = inf.with_statistics(model, pop)
    assert np.allclose(swapped.norm_layers()[1].running_mean, pop[1][0])
    assert not np.allclose(model.norm_layers()[1].running_mean, pop[1][0]), "the original is untouched"


def test_compare_options_and_figure(trained, stream):
    model, _, data = trained
    results = inf.compare_options(model, inf.with_statistics(model, inf.population_statistics(stream)), data,
                                  batch_sizes=(2, 100))
    assert set(results) == {"batch", "running", "population"}
    assert results["batch"][2] < results["batch"][100]
    plt.close(inf.options_figure(results))


# --------------------------------------------------------------------------- momentum conventions
@pytest.mark.parametrize("value,source,target,expected", [
    (0.1, "pytorch", "keras", 0.9), (0.1, "pytorch", "cs231n", 0.9), (0.99, "keras", "pytorch", 0.01),
    (0.9, "cs231n", "keras", 0.9), (0.3, "pytorch", "pytorch", 0.3)])
def test_convert_momentum(value, source, target, expected):
    assert inf.convert_momentum(value, source, target) == pytest.approx(expected)


def test_converted_momenta_give_identical_running_values():
    v = np.random.default_rng(1).normal(size=(50, 4))
    ref = inf.run_convention(v, 0.1, "pytorch")
    for c in ("keras", "cs231n"):
        assert np.abs(inf.run_convention(v, inf.convert_momentum(0.1, "pytorch", c), c) - ref).max() < 1e-12


def test_bad_conventions_are_refused():
    with pytest.raises(ValueError, match="convention"):
        inf.convert_momentum(0.1, "tensorflow", "pytorch")
    with pytest.raises(ValueError, match="between 0 and 1"):
        inf.weight_on_new(1.5, "keras")


@pytest.mark.parametrize("value,convention", [(0.99, "keras"), (0.1, "pytorch"), (1.0, "pytorch"), (1.0, "keras")])
def test_momentum_calculator_prints(capsys, value, convention):
    assert inf.momentum_calculator(value, convention) is None
    out = capsys.readouterr().out
    assert "PyTorch" in out and "Keras" in out and "cs231n" in out


# --------------------------------------------------------------------------- folding
def test_fold_model(trained):
    model, _, data = trained
    folded = inf.fold_model(model)
    assert np.abs(folded(data.x_test) - inf.logits_eval(model, data.x_test)).max() < 1e-4
    assert model.num_parameters() - folded.num_parameters() == 600
    assert inf.buffer_count(model) == 600
    assert not any(isinstance(layer, bnlib.BatchNorm) for layer in folded.layers)
    assert "FoldedMLP" in repr(folded)
    ops = inf.arithmetic_per_image(model)
    assert ops["bn"] == 900 and ops["linear"] == 2 * (784 * 100 + 2 * 100 * 100 + 100 * 10) + 310
    assert inf.best_time_ms(folded, data.x_test[:10], repeat=2) > 0


def _random_eval_model(position):
    rng = np.random.default_rng(3)
    model = bnlib.MLP([6, 5, 4, 3], activation="sigmoid", norm="batch", norm_position=position, dtype=np.float64)
    for bn in model.norm_layers():
        bn.gamma[...], bn.beta[...] = rng.uniform(0.5, 2, bn.num_features), rng.normal(size=bn.num_features)
        bn.running_mean[...], bn.running_var[...] = rng.normal(size=bn.num_features), rng.uniform(0.2, 3, bn.num_features)
    for linear, _, _ in model.hidden:
        linear.b[...] = rng.normal(size=linear.fan_out)
    return model.eval(), rng.normal(size=(7, 6))


@pytest.mark.parametrize("position", ["before", "after"])
def test_fold_model_is_exact_for_both_placements(position):
    model, x = _random_eval_model(position)
    folded = inf.fold_model(model)
    assert not any(isinstance(layer, bnlib.BatchNorm) for layer in folded.layers)
    assert np.allclose(folded(x), inf.logits_eval(model, x), rtol=1e-12, atol=1e-12)
    assert model.num_parameters() - folded.num_parameters() == 2 * (5 + 4)


def test_fold_into_next_scales_rows_and_refuses_mismatches():
    model, x = _random_eval_model("after")
    bn, linear = model.layers[2], model.layers[3]          # Linear, Sigmoid, BatchNorm, Linear, …
    folded = inf.fold_into_next(bn, linear)
    a = np.random.default_rng(0).uniform(size=(4, 5))
    assert np.allclose(folded.forward(a), linear.forward(bn.forward(a)))
    with pytest.raises(TypeError):
        inf.fold_into_next(linear, bn)
    with pytest.raises(ValueError, match="features"):
        inf.fold_into_next(bn, bnlib.Linear(3, 2, dtype=np.float64))


def test_train_bn_network_with_bn_after_the_activation():
    model, history, data = inf.train_bn_network(steps=120, lr=0.5, position="after")
    assert model.norm_position == "after" and history.final_test_acc > 0.7
    folded = inf.fold_model(model)
    assert np.abs(folded(data.x_test) - inf.logits_eval(model, data.x_test)).max() < 1e-4
    assert np.array_equal(folded.layers[0].W, model.layers[0].W), "no BN next to the first Linear layer"


# --------------------------------------------------------------------------- exercises

def rejects(fn, answer, *hint_words):
    with pytest.raises(NotYet) as err:
        fn(answer)
    for word in hint_words:
        assert word in str(err.value), str(err.value)


def test_exercise_1(capsys):
    accepts(capsys, inf.check_keras_to_pytorch, 1 - 0.99)
    not_attempted(capsys, inf.check_keras_to_pytorch, ...)
    rejects(inf.check_keras_to_pytorch, 0.99, "unchanged")
    rejects(inf.check_keras_to_pytorch, 0.1, "PyTorch's default")
    rejects(inf.check_keras_to_pytorch, 0.9, "cs231n")


def test_exercise_2(capsys):
    accepts(capsys, inf.check_running_after_three, 0.822)
    accepts(capsys, inf.check_running_after_three, 0.82)          # 3 decimals are enough (atol 0.005)
    not_attempted(capsys, inf.check_running_after_three, None)
    rejects(inf.check_running_after_three, 3.078, "weight 0.9")
    rejects(inf.check_running_after_three, 2.28, "starts at 0")
    rejects(inf.check_running_after_three, 3.0, "momentum=None")
    rejects(inf.check_running_after_three, 0.3, "each of the 3")
    rejects(inf.check_running_after_three, 0.9, "0.9·running")
    rejects(inf.check_running_after_three, 0.85, "too high")


def test_exercise_3(capsys):
    v, n = inf.EX3_BATCH_VARS, inf.EX3_N
    accepts(capsys, inf.check_population_variance, n / (n - 1) * v.mean())
    rejects(inf.check_population_variance, v.mean(), "N/(N − 1)")
    rejects(inf.check_population_variance, (n - 1) / n * v.mean(), "upside down")
    rejects(inf.check_population_variance, 1.5 * v.mean(), "number of batches")
    rejects(inf.check_population_variance, n / (n - 1) * np.mean(np.sqrt(v)) ** 2, "standard deviations")
    rejects(inf.check_population_variance, 2.5, "too low")


def test_exercise_4(capsys):
    p = inf.EX4
    s = p["gamma"] / np.sqrt(p["running_var"] + p["eps"])
    ref = (p["b"] - p["running_mean"]) * s + p["beta"]
    accepts(capsys, inf.check_folded_bias, ref)
    folded = bnlib.fold_batchnorm(_linear(p), _bn(p))
    accepts(capsys, inf.check_folded_bias, folded.b)
    rejects(inf.check_folded_bias, p["b"] * s + p["beta"], "subtract the running mean")
    rejects(inf.check_folded_bias, p["b"] * s - p["running_mean"] + p["beta"], "BEFORE scaling")
    rejects(inf.check_folded_bias, (p["b"] - p["running_mean"]) * s, "add β")
    rejects(inf.check_folded_bias, (p["b"] - p["running_mean"]) * p["gamma"] / (p["running_var"] + p["eps"])
            + p["beta"], "not by the variance")
    rejects(inf.check_folded_bias, (p["b"] - p["running_mean"]) * p["gamma"] + p["beta"], "divide")
    rejects(inf.check_folded_bias, (p["b"] - p["running_mean"]) * p["gamma"] / np.sqrt(p["running_var"]) + p["beta"],
            "ε inside the square root")
    rejects(inf.check_folded_bias, (p["b"] - p["running_mean"]) * p["gamma"] / (np.sqrt(p["running_var"]) + p["eps"])
            + p["beta"], "ε inside the square root")
    with pytest.raises(NotYet, match="shape"):
        inf.check_folded_bias(ref[:2])


def _linear(p):
    lin = bnlib.Linear(2, 3, dtype=np.float64)
    lin.W[...], lin.b[...] = p["W"], p["b"]
    return lin


def _bn(p):
    bn = bnlib.BatchNorm(3, eps=p["eps"], dtype=np.float64).eval()
    bn.gamma[...], bn.beta[...] = p["gamma"], p["beta"]
    bn.running_mean[...], bn.running_var[...] = p["running_mean"], p["running_var"]
    return bn


# --------------------------------------------------------------------------- Japanese
@pytest.fixture
def japanese():
    bnlib.set_language("ja")
    yield
    bnlib.set_language("en")


def _has_japanese(text):
    return any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in text)


def test_what_a_learner_reads_is_japanese(trained, stream, japanese, capsys):
    model, _, data = trained
    dash = inf.batchmates_dashboard(model, data, index=0)
    assert all(_has_japanese(label) for label, _value in dash.controls["batchmates"].options)
    assert _has_japanese(dash.set(batchmates="all 3s")) and _has_japanese(dash.controls["batchmates"].description)
    texts = [t.get_text() for ax in dash.fig.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label) if t.get_text()]
    assert texts and all(_has_japanese(t) for t in texts)
    plt.close(dash.fig)
    dash = inf.running_dashboard(stream)
    assert _has_japanese(dash.set(momentum="cumulative")) and _has_japanese(dash.set(momentum=0.01))
    assert _has_japanese(dash.fig.axes[0].get_title())
    plt.close(dash.fig)
    inf.print_accuracies(inf.sorted_vs_shuffled(model, data))
    inf.momentum_table()
    inf.momentum_calculator(0.99, "keras")
    print(inf.fold_model(model))
    out = capsys.readouterr().out
    assert _has_japanese(out) and "モード" in out
    with pytest.raises(NotYet) as err:
        inf.check_keras_to_pytorch(0.99)
    assert _has_japanese(str(err.value))
    bnlib.set_language("en")
    assert inf.batchmate_label("all 3s") == "all 3s" and "FoldedMLP — " in repr(inf.fold_model(model))


# --------------------------------------------------------------------------- fits the screen, answers fast
@pytest.mark.parametrize("language", ["en", "ja"])
def test_figures_fit_jupyterlab_and_the_dashboards_blit(trained, stream, language):
    """No figure wider than JupyterLab's output column at 1280 px with the file browser open;
    nothing cut off or overlapping in either language; every choice of batchmates and every
    momentum redraws only the changed artists (blitting)."""
    import warnings
    from bnlib import plots
    model, _, data = trained
    bnlib.set_language(language)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")               # "Glyph … missing from font" would raise
            dash = inf.batchmates_dashboard(model, data, index=0)
            assert not plots.layout_problems(dash.fig)
            for _label, value in dash.controls["batchmates"].options[::-1]:
                assert dash.would_blit(batchmates=value), value
            assert not plots.layout_problems(dash.fig)
            dash = inf.running_dashboard(stream)
            for _label, value in inf.MOMENTUM_OPTIONS[::-1]:
                assert dash.would_blit(momentum=value), value
            assert not plots.layout_problems(dash.fig)
            results = inf.compare_options(model, inf.with_statistics(model, inf.population_statistics(stream)), data,
                                          batch_sizes=(2, 100))
            assert not plots.layout_problems(inf.options_figure(results))
    finally:
        bnlib.set_language("en")
