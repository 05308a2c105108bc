"""Lesson 10 (convolutional networks): the hand convolution against bnlib, the statistic sets of
the channel picture, every dashboard driven across its controls (English and Japanese), short
training runs of each experiment, and the exercise checks with their hints."""
import numpy as np
import pytest
from matplotlib.colors import to_rgb

import bnlib
from bnlib.checks import NotYet
from bnlib.lessons import convolution as cv

from exercise_support import accepts, not_attempted

SMALL_IMAGES = 64                  # training images of the short runs below (2 steps at N = 32)


@pytest.fixture(scope="module")
def data():
    return bnlib.load_mnist5k(images=True)


@pytest.fixture(scope="module")
def image(data):
    return cv.digit(data)


@pytest.fixture(scope="module")
def u(data):
    return cv.feature_batch(data)


@pytest.fixture(autouse=True)
def english_afterwards():
    yield
    bnlib.set_language("en")


# ---------------------------------------------------------------- 1. the convolution
def test_hand_convolution_equals_bnlib_for_every_filter(image):
    for w in cv.FILTERS.values():
        for b in (0.0, -0.7):
            np.testing.assert_allclose(cv.convolve_by_hand(image, w, b), cv.bnlib_conv(image, w, b), atol=1e-12)


def test_window_is_the_padded_neighbourhood(image):
    np.testing.assert_array_equal(cv.window(image, 10, 12), image[9:12, 11:14])
    corner = cv.window(image, 0, 0)
    assert corner.shape == (3, 3) and not corner[0].any() and not corner[:, 0].any()


def test_vertical_edges_respond_with_opposite_signs_on_either_side_of_a_stroke():
    img = np.zeros((5, 7))
    img[:, 3] = 1.0                                           # one vertical stroke
    y = cv.bnlib_conv(img, cv.FILTERS["vertical"])
    assert y[2, 2] > 0 > y[2, 4] and y[2, 3] == 0 and y[2, 0] == 0


def test_filter_dashboard_across_every_control(image):
    dash = cv.filter_dashboard(image)
    seen = set()
    for kind in cv.FILTERS:
        for row, col in ((0, 0), (27, 27), (9, 14), (14, 3)):
            summary = dash.set(kind=kind, row=row, col=col)
            y = float(np.sum(cv.window(image, row, col) * cv.FILTERS[kind]))
            assert f"{y:+.3f}" in summary and f"row {row}, column {col}" in summary
            seen.add(summary)
    assert len(seen) > 6
    box = dash.fig.axes[0].patches[0]
    assert box.get_xy() == (3 - 1.5, 14 - 1.5)                 # the window follows the sliders (x = column)


# ---------------------------------------------------------------- 2. the sets
@pytest.mark.parametrize("kind, per, stats", [("batch", 3136, 8), ("activation", 4, 6272), ("layer", 6272, 4),
                                              ("instance", 784, 32), ("group", 1568, 16)])
def test_counts_and_sets_of_the_picture(kind, per, stats):
    shape = (4, 8, 28, 28)
    assert cv.counts(kind, shape) == (per, stats)
    mask = cv.statistic_set(kind, 1, 3, 5, 6, shape)
    assert mask.shape == shape and mask.sum() == per and mask[1, 3, 5, 6]
    assert " ".join(cv.count_formula(kind, shape)).count(str(per)) >= 1


def test_sets_are_the_right_axes():
    shape = (4, 8, 28, 28)
    assert cv.statistic_set("batch", 1, 3, 5, 6, shape)[:, 3].all()
    assert cv.statistic_set("activation", 1, 3, 5, 6, shape)[:, 3, 5, 6].all()
    assert cv.statistic_set("layer", 1, 3, 5, 6, shape)[1].all()
    assert cv.statistic_set("instance", 1, 3, 5, 6, shape)[1, 3].all()
    assert cv.statistic_set("group", 1, 3, 5, 6, shape)[1, 2:4].all()      # G = 4: channels 2 and 3


def test_feature_batch_is_the_first_conv_layer(data, u):
    assert u.shape == (4, 8, 28, 28) and u.dtype == np.float64
    conv = cv.network("batch").layers[0]
    np.testing.assert_allclose(u, conv.forward(data.x_test[:4]), rtol=1e-5, atol=1e-6)


def test_picture_statistics_equal_batchnorm(u):
    r = cv.compare_with_batchnorm(u)
    assert r["mean_diff"] < 1e-12 and r["var_diff"] < 1e-12 and r["sizes"] == [3136] * 8


def test_channel_dashboard_across_every_control(u):
    dash = cv.channel_dashboard(u)
    seen = set()
    for kind in cv.SET_KINDS:
        summary = dash.set(kind=kind)
        assert cv.name(kind) in summary and str(cv.counts(kind, u.shape)[0]) in summary
        seen.add(summary)
        for control, top in (("n", 3), ("c", 7), ("h", 27), ("w", 27)):
            seen.add(dash.set(**{control: top}))
            seen.add(dash.set(**{control: 0}))
    assert len(seen) > 15


def test_channel_dashboard_colors_exactly_the_set(u):
    dash = cv.channel_dashboard(u)
    dash.set(kind="instance", n=2, c=5, h=0, w=0)
    img = np.asarray(dash.fig.axes[0].images[0].get_array())
    faded = 0.65 + 0.35 * 1.0                                  # the white gaps, faded, stay white
    assert img.shape == (4 * 30 - 2, 8 * 30 - 2, 3)
    block = img[2 * 30:2 * 30 + 28, 5 * 30:5 * 30 + 28]
    tint = np.array(to_rgb(cv.COLOR["instance"]))
    assert np.all(block <= 0.45 + 0.55 * tint + 1e-9)           # every value of the set is tinted
    assert np.isclose(img[2 * 30 + 28, 0], faded).all()
    dash.set(kind="activation")
    rings = dash.fig.axes[0].lines[0].get_xdata()
    assert len(rings) == 4                                      # the four values of the set, circled


# ---------------------------------------------------------------- 3.–5. short training runs
@pytest.fixture(scope="module")
def short_runs(data):
    return cv.with_and_without(data, images=SMALL_IMAGES * 2)


def test_with_and_without_records_each_stage_per_channel(short_runs):
    for h in short_runs.values():
        assert list(h.record_steps) == [0, 4] and hasattr(h, "network")
        assert [rec.pre.unit_percentiles.shape for rec in h.layers] == [(2, 8, 3), (2, 16, 3)]
    b = cv.band_numbers(short_runs["plain"], 1)
    assert set(b) == {"width_start", "grow", "shrink", "median_range"} and b["grow"] >= 1 >= b["shrink"]
    assert (cv.width_changes(short_runs["bn"], 0) >= 1).all()


def test_training_figure_labels_every_axis(short_runs):
    fig = cv.training_figure(short_runs)
    assert len(fig.axes) == 3
    assert all(ax.get_xlabel() and ax.get_title() and ax.get_legend() for ax in fig.axes)
    labelled = [ax for ax in fig.axes if ax.get_ylabel()]
    for ax in fig.axes:                        # (c) shares (b)'s y axis and its label
        assert ax in labelled or any(ax.get_shared_y_axes().joined(ax, other) for other in labelled)


def test_the_runs_are_deterministic(data, short_runs):
    again = cv.run("batch", data, images=SMALL_IMAGES * 2, record_every=cv.RECORD_EVERY)
    np.testing.assert_array_equal(again.loss, short_runs["bn"].loss)


def test_learning_rate_scales_with_the_batch():
    assert cv.learning_rate(32) == pytest.approx(0.1) and cv.learning_rate(2) == pytest.approx(0.1 / 16)


def test_mlp_refuses_batch_size_one_and_the_cnn_trains(data):
    assert "at least 2" in cv.mlp_batch_of_one(data)
    one = cv.batch_of_one(data, images=20)
    assert len(one.loss) == 20 and np.isfinite(one.loss).all()
    assert 0 <= cv.batch_mode_accuracy(one.network, data, 1) <= 1
    diff, per = cv.one_image_bn_is_instance_norm(data)
    assert diff < 1e-12 and per == 784


def test_family_runs_follow_the_plan_and_reuse(data, short_runs):
    plan = {32: ("batch", "layer"), 2: ("group",)}
    result = cv.family_runs(data, plan=plan, reuse={("batch", 32): short_runs["bn"]}, images=SMALL_IMAGES)
    assert result.sizes == (2, 32) and set(result.histories) == {("batch", 32), ("layer", 32), ("group", 2)}
    assert result.histories[("batch", 32)] is short_runs["bn"]
    assert len(result.histories[("group", 2)].loss) == SMALL_IMAGES // 2
    assert np.isnan(result.acc("instance", 32))
    fig = cv.family_figure(result, short_runs["bn"])
    assert fig.axes[0].get_ylabel() and fig.axes[0].get_title()
    cv.print_family(result)


# ---------------------------------------------------------------- 6. contrast
def test_changed_images_and_instance_norm_invariance(data, short_runs):
    x = data.x_test[:3]
    np.testing.assert_allclose(cv.changed(x, 2.0, -0.1), 2 * x - 0.1, rtol=1e-6)
    assert cv.changed(x, 2.0, 0.1).dtype == x.dtype
    inorm = cv.network("instance")
    with inorm.evaluation():
        np.testing.assert_allclose(inorm.forward(cv.changed(x, 2.0, 0.0)), inorm.forward(x), atol=1e-3)  # up to ε


@pytest.fixture(scope="module")
def grid(data, short_runs):
    return cv.contrast_grid({"batch": short_runs["bn"].network, "instance": short_runs["plain"].network}, data)


def test_contrast_grid_shape(grid):
    assert set(grid) == {"batch", "instance"}
    assert all(g.shape == (len(cv.CONTRASTS), len(cv.BRIGHTNESS)) and ((0 <= g) & (g <= 1)).all() for g in grid.values())


def test_contrast_dashboard_across_every_control(grid, data):
    dash = cv.contrast_dashboard(grid, data)
    seen = {dash.set(a=a, b=b) for a in cv.CONTRASTS for b in cv.BRIGHTNESS}
    assert len(seen) == len(cv.CONTRASTS) * len(cv.BRIGHTNESS)
    summary = dash.set(a=0.25, b=0.2)
    i, j = cv.CONTRASTS.index(0.25), cv.BRIGHTNESS.index(0.2)
    assert f"{grid['batch'][i, j]:.0%}" in summary and "contrast a = 0.25, brightness b = +0.2" in summary
    picture = dash.fig.axes[0].images[0].get_array()
    assert np.nanmax(picture) == pytest.approx(0.25 * data.x_test[:cv.SHOWN].max() + 0.2, rel=1e-5)


def test_faded_dataset_labels_the_contrast(data):
    task = cv.faded_dataset(data)
    assert set(np.unique(task.y_train)) == {0, 1} and len(task.x_test) == cv.TEST_IMAGES
    ratio = task.x_train.reshape(len(task.x_train), -1).max(axis=1) / data.x_train.reshape(len(data.x_train), -1).max(axis=1)
    np.testing.assert_allclose(ratio, np.where(task.y_train == 1, cv.FADED, 1.0), rtol=1e-6)


def test_faded_task_instance_norm_cannot_see_the_fading(data):
    result = cv.faded_task(data, kinds=("instance",), steps=2)
    assert result["instance"]["logit_change"] < 0.01 and 0 <= result["instance"]["acc"] <= 1


# ---------------------------------------------------------------- Japanese
def test_dashboards_speak_japanese(image, u, grid, data):
    bnlib.set_language("ja")
    assert "の積の和" in cv.filter_dashboard(image).set(row=3)
    assert "を共有するのは" in cv.channel_dashboard(u).set(kind="batch")
    assert "テスト正解率は" in cv.contrast_dashboard(grid, data).set(a=0.5)
    assert cv.name("instance") == "インスタンス正規化"


# ---------------------------------------------------------------- fits the screen, answers fast
@pytest.mark.parametrize("language", ["en", "ja"])
def test_figures_fit_jupyterlab_and_the_dashboards_blit(image, u, short_runs, grid, data, language):
    """No figure wider than JupyterLab's output column at 1280 px with the file browser open
    (plots.MAX_WIDTH); nothing cut off or overlapping in either language, before and after every
    move; every control of the three dashboards redraws only the changed artists."""
    import warnings
    from bnlib import plots
    bnlib.set_language(language)
    with warnings.catch_warnings():
        warnings.simplefilter("error")               # "Glyph … missing from font" would raise
        family = cv.family_runs(data, plan={32: ("batch", "layer", "group", "instance"), 2: ("batch", "group")},
                                reuse={("batch", 32): short_runs["bn"]}, images=SMALL_IMAGES)
        one = cv.batch_of_one(data, images=20)
        for fig in (cv.training_figure(short_runs), cv.family_figure(family, one), cv.family_figure(family)):
            assert fig.get_figwidth() <= plots.MAX_WIDTH
            assert not plots.layout_problems(fig)
        dashboards = [
            (cv.filter_dashboard(image), [dict(kind="horizontal"), dict(kind="blur"), dict(row=27), dict(col=0),
                                          dict(kind="vertical"), dict(row=0), dict(col=27)]),
            (cv.channel_dashboard(u), [dict(kind=k) for k in cv.SET_KINDS[1:]]
             + [dict(n=3), dict(c=7), dict(h=0), dict(w=27), dict(kind="batch")]),
            (cv.contrast_dashboard(grid, data), [dict(a=0.25), dict(b=0.4), dict(a=4.0), dict(b=-0.4), dict(a=1.0)])]
        for dash, moves in dashboards:
            assert dash.fig.get_figwidth() <= plots.MAX_WIDTH
            assert not plots.layout_problems(dash.fig)
            for move in moves:
                assert dash.would_blit(**move), move
                assert not plots.layout_problems(dash.fig), move


# ---------------------------------------------------------------- exercises
def test_exercise_1_counts(capsys):
    accepts(capsys, cv.check_counts, (16 * 14 * 14, 32))
    not_attempted(capsys, cv.check_counts, ...)
    for wrong, hint in [((16, 6272), "per activation"), ((6272, 16), "LayerNorm"), ((196, 512), "InstanceNorm"),
                        ((3136, 512), "one per channel"), ((16, 32), "positions too"),
                        ((100, 100), "differ from the correct")]:
        with pytest.raises(NotYet, match=hint):
            cv.check_counts(wrong)


def _bn(x, axes, ddof=0, eps=1e-5, sqrt=True):
    var = x.var(axis=axes, keepdims=True, ddof=ddof) + eps
    return (x - x.mean(axis=axes, keepdims=True)) / (np.sqrt(var) if sqrt else var)


def test_exercise_2_spatial_batchnorm(capsys):
    x = cv.exercise_x()
    accepts(capsys, cv.check_spatial_batchnorm, _bn(x, (0, 2, 3)))
    not_attempted(capsys, cv.check_spatial_batchnorm, ...)
    cases = [(_bn(x, 0), "per activation"), (_bn(x, (0, 2)), "columns too"), (_bn(x, (0, 3)), "rows too"),
             (_bn(x, (1, 2, 3)), "LayerNorm"), (_bn(x, (2, 3)), "InstanceNorm"), (_bn(x, (0, 1, 2, 3)), "channels apart"),
             (_bn(x, (0, 2, 3), ddof=1), "N·H·W − 1"), (_bn(x, (0, 2, 3), sqrt=False), "square root"),
             (_bn(x, (0, 2, 3), eps=0.0), "ε inside"), (_bn(x, (0, 2, 3)) + 0.1, "differ from the correct")]
    for wrong, hint in cases:
        with pytest.raises(NotYet, match=hint):
            cv.check_spatial_batchnorm(wrong)


def test_exercise_3_conv_value(capsys, image):
    w, (row, col), b = cv.FILTERS["vertical"], cv.EXERCISE_POSITION, cv.EXERCISE_BIAS
    win = np.pad(image, 1)[row:row + 3, col:col + 3]
    right = float(np.sum(win * w) + b)
    assert right == pytest.approx(cv.bnlib_conv(image, w, b)[row, col], abs=1e-9)
    accepts(capsys, cv.check_conv_value, right, image)
    not_attempted(capsys, cv.check_conv_value, ..., image)
    cases = [(float(np.sum(win * w[::-1, ::-1]) + b), "flipped"), (float(np.sum(win * w)), "bias"),
             (float(np.sum(image[row:row + 3, col:col + 3] * w) + b), "one row and one column earlier"),
             (float(np.sum(win * w.T) + b), "transposed"), (right + 1.0, "too high")]
    for wrong, hint in cases:
        with pytest.raises(NotYet, match=hint):
            cv.check_conv_value(wrong, image)
