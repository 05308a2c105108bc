"""Lesson 00 (start here): the environment report, the widget checks, and the exercise checks."""
import pathlib

import matplotlib
import numpy as np
import pytest

from bnlib.checks import NotYet
from bnlib.lessons import start

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_pinned_versions_are_read_from_requirements():
    pins = start.pinned_versions()
    assert {"numpy", "matplotlib", "ipywidgets", "ipympl"} <= set(pins)
    assert start.pinned_versions(ROOT / "no-such-file.txt") == {}


def test_environment_report_passes_here_with_the_widget_backend(monkeypatch, capsys):
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "module://ipympl.backend_nbagg")
    assert start.environment_report() == []
    out = capsys.readouterr().out
    for name in ("Python", "numpy", "matplotlib", "ipywidgets", "ipympl", "backend"):
        assert name in out
    assert "✗" not in out
    assert "Something is missing" not in out            # no troubleshooting when all is ✓


def test_environment_report_names_each_problem(monkeypatch, capsys):
    real = start.installed_version
    fake = {"ipympl": None, "numpy": "1.26.4"}
    monkeypatch.setattr(start, "installed_version", lambda name: fake.get(name, real(name)))
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "agg")
    problems = start.environment_report(pins={"matplotlib": "0.0.1"})
    assert any("ipympl" in p for p in problems)
    assert any("numpy" in p for p in problems)
    assert any("backend" in p for p in problems)
    assert not any("matplotlib 3" in p for p in problems)   # a different pin is a note only
    out = capsys.readouterr().out
    assert "pinned 0.0.1" in out and "%matplotlib widget" in out
    assert "Something is missing" in out


def test_slider_check_answers_across_its_range():
    box = start.slider_check()
    slider, label = box.children
    first = label.value
    seen = set()
    for value in range(slider.min, slider.max + 1):
        slider.value = value
        assert f"at {value}" in label.value
        seen.add(label.value)
    assert label.value != first and len(seen) == slider.max - slider.min + 1


def test_figure_check_moves_the_dot_across_its_range():
    dash = start.figure_check()
    slider = dash.controls["x"]
    summaries = set()
    for x in np.arange(slider.min, slider.max + slider.step / 2, slider.step):
        summary = dash.set(x=float(x))
        assert f"{x:+.1f}" in summary
        summaries.add(summary)
        dot = dash.fig.axes[0].lines[1]
        assert np.isclose(dot.get_xdata()[0], x) and np.isclose(dot.get_ydata()[0], 1 / (1 + np.exp(-x)))
    assert len(summaries) == 25


@pytest.mark.parametrize("check, reference, wrongs", [
    (start.check_demo, 5.0, [(15.0, "sum"), (4.0, "median")]),
    (start.check_mean, 75.0, [(300.0, "sum"), (77.5, "median"), (100.0, "N − 1")]),
    (start.check_std, 2.0, [(np.std(start.EXERCISE_VALUES, ddof=1), "N − 1"), (4.0, "square root"),
                            (np.var(start.EXERCISE_VALUES, ddof=1), "N − 1"), (1.5, "square the"),
                            (np.sqrt(32), "divide the sum of squares by N \\(8\\) before the square root"),
                            (32.0, "sum of the squares"),
                            (np.sqrt(29), "subtract μ from each value first"),
                            (np.sqrt(232), "subtract μ from each value first, and divide")]),
])
def test_exercise_checks_accept_the_answer_and_hint_each_mistake(check, reference, wrongs, capsys):
    check(reference)
    assert "✓" in capsys.readouterr().out
    check(...)
    assert "not attempted" in capsys.readouterr().out
    for value, hint in wrongs:
        with pytest.raises(NotYet, match=hint):
            check(value)
    with pytest.raises(NotYet) as generic:                # no known mistake: the generic message
        check(reference + 0.7)
    assert not any(hint in str(generic.value) for _, hint in wrongs)
    with pytest.raises(NotYet, match="is text \\(a string\\), not a number"):
        check(str(reference))                            # "75" in quotes is not accepted


def test_figure_check_is_readable():
    fig = start.figure_check().fig
    assert fig.get_figwidth() >= 6
    assert all(t.get_fontsize() >= 9 for t in fig.axes[0].get_legend().get_texts())


def test_environment_report_slider_and_figure_in_japanese(monkeypatch, capsys):
    import warnings
    import bnlib
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "agg")
    bnlib.set_language("ja")
    try:
        problems = start.environment_report()
        out = capsys.readouterr().out
        assert "✗ 最初のコードセル（%matplotlib widget）を実行しましょう" in out
        assert "「スライダーが表示されないとき」" in out
        assert problems == ["matplotlib のバックエンドが widget ではなく 'agg' になっています"]
        backend_row = next(line for line in out.splitlines() if line.startswith("バックエンド"))
        assert backend_row.index("agg") > len("バックエンド")           # still a column, after the name
        box = start.slider_check()
        box.children[0].value = 7
        assert box.children[0].description == "動かす" and "スライダーの位置は 7 です" in box.children[1].value
        with warnings.catch_warnings():
            warnings.simplefilter("error")                 # "Glyph … missing from font" would raise
            dash = start.figure_check()
            assert "点が動いたなら" in dash.set(x=1.5)
            dash.fig.canvas.draw()
        with pytest.raises(NotYet, match="それは分散 σ² です"):
            start.check_std(4.0)
    finally:
        bnlib.set_language("en")
    start.check_demo(5.0)
    assert capsys.readouterr().out.endswith("✓ demo — the mean of 2, 4 and 9: correct\n")


@pytest.mark.parametrize("language", ["en", "ja"])
def test_figure_check_fits_jupyterlab_and_blits(language):
    """Fits JupyterLab's output column at 1280 px with the file browser open, nothing cut off
    or overlapping, and every move of the slider redraws only the dot (blitting)."""
    import bnlib
    from bnlib import plots
    bnlib.set_language(language)
    try:
        dash = start.figure_check()
        assert not plots.layout_problems(dash.fig)
        for x in (6.0, -6.0, 0.5):
            assert dash.would_blit(x=x), x
    finally:
        bnlib.set_language("en")
