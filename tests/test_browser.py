"""The notebooks as a learner meets them: JupyterLab in a real browser (Debian's Chromium driven
by Python Playwright, see tests/browser_support.py).

For every notebook with sliders (found automatically: its code, or a bnlib.lessons module it
imports, builds a Dashboard, an ipywidgets slider or an `interact`) and for the fixture
tests/fixtures/dashboard.ipynb (the harness checking itself): open it, Run → Run All Cells,
wait for the kernel to go idle, then move every slider by keyboard (focus the handle, press
ArrowRight/ArrowLeft, then End/Home) and check that
- the figure's pixels change (screenshots of the canvas before and after),
- the Dashboard's one-line summary (`.bnlib-summary`) changes and states the slider's new value,
- moving back restores the summary (it is a function of the value, not of the history),
and that no cell raised, no cell was left unexecuted, the page shows no "Error displaying widget"
and no "Jupyter news" prompt. One Japanese notebook is opened too: its summaries must be Japanese.

Locally the browser tests skip with a message when /usr/bin/chromium is missing; with CI=true
they fail instead (.ci/run installs Debian's chromium). The static-fallback test at the end needs
no browser: an executed notebook converted to HTML shows a picture where the Dashboard is.
"""
import contextlib
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

import browser_support as bs

ROOT = bs.ROOT
FIXTURES = ROOT / "tests" / "fixtures"
FIXTURE = FIXTURES / "dashboard.ipynb"
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
NOTEBOOKS = bs.interactive_notebooks(ROOT / "notebooks")
# the Japanese edition: one notebook with sliders is enough to show its figures and summaries redraw
JA_NOTEBOOK = ROOT / "notebooks" / "ja" / "03_gamma_beta.ipynb"
CASES = ([("fixtures", FIXTURE)] + [("notebooks", p) for p in NOTEBOOKS]
         + [("notebooks/ja", JA_NOTEBOOK)])
JAPANESE = re.compile(r"[ぁ-んァ-ン一-龥]")


@pytest.fixture(scope="module")
def lab_and_browser(tmp_path_factory):
    missing = bs.chromium_missing()
    if missing:
        if IN_CI:
            pytest.fail(f"CI=true and the browser tests cannot run: {missing}")
        pytest.skip(f"browser tests skipped: {missing}")
    work = tmp_path_factory.mktemp("browser")
    with contextlib.ExitStack() as stack:
        lab = stack.enter_context(bs.JupyterLab(work, sources=[ROOT / "notebooks", FIXTURES]))
        browser = stack.enter_context(bs.chromium(work / "chromium-profile"))
        yield lab, browser


def exercise(control: bs.Control):
    """Right (or left at the maximum), back, then to the far end; check each step."""
    start = control.snapshot()
    at_max = start["value"] >= start["max"]
    first, back = ("ArrowLeft", "ArrowRight") if at_max else ("ArrowRight", "ArrowLeft")
    far = "Home" if at_max else "End"

    moved = control.move(first, start)
    check_summary(control, moved)
    returned = control.move(back, moved)
    assert (returned["aria"], returned["readout"]) == (start["aria"], start["readout"]), (
        f"{control.name}: {first} then {back} should return to {start['readout']}, "
        f"got {returned['readout']}")
    if control.summary is not None:     # summary and picture are functions of the value
        assert returned["summary"] == start["summary"], (
            f"{control.name}: back at the starting value the summary should read "
            f"{start['summary']!r} again, got {returned['summary']!r}")
        differ = bs.pixel_difference(returned["picture"], start["picture"])
        assert differ == 0, (
            f"{control.name}: back at the starting value the figure differs from the first one "
            f"({differ} pixels)")
    end = control.move(far, returned)
    check_summary(control, end)
    return start, moved, end


def check_summary(control: bs.Control, snap: dict):
    if control.summary is None:
        return
    assert bs.shows_value(snap["summary"], snap["readout"], snap["value"]), (
        f"{control.name}: the summary {snap['summary']!r} does not state the slider's value "
        f"{snap['readout'] or snap['value']!r}")


@pytest.mark.parametrize("folder,path", CASES, ids=[f"{folder}/{p.name}" for folder, p in CASES])
def test_sliders_redraw_the_figure_and_the_summary(lab_and_browser, folder, path):
    lab, browser = lab_and_browser
    nb = bs.LabNotebook.open(browser, lab, f"{folder}/{path.name}")
    try:
        nb.run_all()
        saved = nb.save()
        unexecuted, errors = bs.unexecuted_cells(saved), bs.error_outputs(saved)
        assert not errors, f"{path.name}: cells raised in JupyterLab: {errors}"
        assert not unexecuted, f"{path.name}: code cells {unexecuted} did not run"
        nb.wait_widgets_rendered()
        assert not nb.widget_errors(), f"{path.name}: widgets failed to display: {nb.widget_errors()}"
        assert nb.visible_static_figures() == 0, (
            f"{path.name}: the static fallback picture shows beside the live figure")
        assert bs.NEWS_PROMPT not in nb.page_text(), "the 'Jupyter news' prompt is showing"

        controls = nb.controls()
        assert controls, (f"{path.name} builds sliders (code or lesson module) but the page "
                          "shows none")
        if path == FIXTURE:
            assert [(c.info["dashboard"], c.info["disabled"]) for c in controls] == [
                (True, False), (True, False), (True, True), (False, False)]
        for control in controls:
            if not control.info["disabled"]:     # a learner cannot move a disabled slider
                start, moved, end = exercise(control)
                if folder == "notebooks/ja" and control.summary is not None:
                    assert JAPANESE.search(moved["summary"]), (
                        f"{path.name}: the summary under the figure is not in Japanese: {moved['summary']!r}")

        assert not nb.widget_errors(), f"{path.name}: widgets failed to display: {nb.widget_errors()}"
        errors = bs.error_outputs(nb.save())
        assert not errors, f"{path.name}: moving the sliders raised: {errors}"
    except BaseException:
        shot = lab.workdir / f"failed-{path.stem}.png"      # printed with the failure
        with contextlib.suppress(Exception):
            nb.page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the page: {shot}")
        print(f"JupyterLab log (tail):\n{lab.log_tail(40)}")
        print(f"browser console errors: {nb.console_errors[-10:]}")
        raise
    finally:
        nb.close()
        with contextlib.suppress(Exception):
            lab.shutdown_kernels()


# ----------------------------------------------------------------------------- no browser needed
def test_discovery_finds_sliders_in_code_and_in_lesson_modules(tmp_path):
    assert bs.has_sliders(FIXTURE)
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    (lessons / "demo.py").write_text("def figure():\n    return Dashboard(fig, update, x=s)\n")
    (lessons / "plain.py").write_text("def table():\n    return 42\n")

    def notebook(code):
        p = tmp_path / f"nb{abs(hash(code))}.ipynb"
        p.write_text(json.dumps({"cells": [{"cell_type": "code", "source": [code]}]}))
        return p

    assert bs.has_sliders(notebook("from bnlib.lessons import demo\ndemo.figure()"), lessons)
    assert bs.has_sliders(notebook("import bnlib.lessons.demo as d"), lessons)
    assert not bs.has_sliders(notebook("from bnlib.lessons import plain\nplain.table()"), lessons)
    assert bs.has_sliders(notebook("w = widgets.IntSlider(min=0)"), lessons)


@pytest.mark.parametrize("summary,readout,value,ok", [
    ("x = +1.0 → σ(x) = 0.731", "1.00", 1.0, True),
    ("γ = 2.5, β = +0.0", "2.50", 2.5, True),
    ("step 150 (test acc. 91%)", "150", 150, True),
    ("ε = 3.2e-05", "3.16e-5", -4.5, True),
    ("batch size 1,000", "1000", 1000, True),
    ("x = +2.0", "1.50", 1.5, False),
    ("nothing numeric", "3", 3, False),
    ("momentum=None (cumulative average): RMS 0.001", "None (cumulative)", 7, True),
    ("momentum=0.1: RMS 0.004", "None (cumulative)", 7, False),
])
def test_summary_value_matching(summary, readout, value, ok):
    assert bs.shows_value(summary, readout, value) is ok


def test_static_html_shows_a_picture_where_the_dashboard_is(tmp_path):
    """A notebook executed and converted to HTML (no live kernel, no network) shows a PNG at
    the Dashboard's output, not an empty widget box."""
    nb = tmp_path / FIXTURE.name
    nb.write_bytes(FIXTURE.read_bytes())
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               MPLCONFIGDIR=str(tmp_path / "mpl"))
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute",
                    "--ExecutePreprocessor.timeout=300", str(nb)],
                   check=True, cwd=tmp_path, env=env, capture_output=True, timeout=600)
    html = (tmp_path / "dashboard.html").read_text(encoding="utf-8")
    cell_id = next(c["id"] for c in json.loads(FIXTURE.read_text())["cells"]
                   if "Dashboard(fig" in "".join(c["source"]))
    start = html.index(f'id="cell-id={cell_id}"')
    end = html.find('id="cell-id=', start + 1)
    cell = html[start:end if end > 0 else len(html)]
    outputs = cell.split("jp-Cell-outputWrapper", 1)[-1]
    assert re.search(r'<img[^>]+src="data:image/png;base64,[A-Za-z0-9+/]{1000,}', outputs), (
        "the executed Dashboard cell shows no PNG in the static HTML")
