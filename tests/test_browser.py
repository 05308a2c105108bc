"""The notebooks as a learner meets them: JupyterLab in a real browser (Debian's Chromium driven
by Python Playwright, see tests/browser_support.py), in a 1280 × 800 window with the file browser
open (JupyterLab's output column is then 848 px wide).

For every notebook with controls (found automatically: its code, or a bnlib.lessons module it
imports, builds a Dashboard, an ipywidgets slider or an `interact`) and for the fixtures
tests/fixtures/dashboard.ipynb and floor.ipynb (the harness checking itself): open it, Run → Run
All Cells, wait for the kernel to go idle, check that every output fits the output column (no
figure, canvas or image wider than its output area, nothing reaching past it or cut off
sideways), then move every control both ways as a learner would (a slider by keyboard: one step
right, or left when it starts at its maximum, back, then End or Home; toggle buttons with Enter,
a dropdown by picking an option) and check that
- the figure's pixels change (the canvas read before and after),
- the Dashboard's one-line summary (`.bnlib-summary`) changes and states a slider's new value,
- moving back restores the summary and the picture (they are functions of the values),
and that no cell raised, no cell was left unexecuted, the page shows no "Error displaying widget"
and no "Jupyter news" prompt. One Japanese notebook with sliders is driven too: its summaries
must be Japanese. Every other notebook of both editions is run and checked to fit.

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
import textwrap
import warnings

import pytest

import browser_support as bs

ROOT = bs.ROOT
FIXTURES = ROOT / "tests" / "fixtures"
FIXTURE = FIXTURES / "dashboard.ipynb"
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
NOTEBOOKS = bs.interactive_notebooks(ROOT / "notebooks")
# the Japanese edition: one notebook with sliders is enough to show its figures and summaries redraw
JA_NOTEBOOK = ROOT / "notebooks" / "ja" / "03_gamma_beta.ipynb"
CASES = ([("fixtures", FIXTURE), ("fixtures", FIXTURES / "floor.ipynb")] + [("notebooks", p) for p in NOTEBOOKS]
         + [("notebooks/ja", JA_NOTEBOOK)])
# every other notebook of both editions: run it and check that its outputs fit
FIT_ONLY = [(folder, p) for folder in ("notebooks", "notebooks/ja")
            for p in sorted((ROOT / folder).glob("[0-9][0-9]_*.ipynb")) if (folder, p) not in CASES]
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
    """One step (up, or down when the control starts at its maximum), back, then to the far
    end; check each move. Toggles and checkboxes flip, flip back and flip again."""
    start = control.snapshot()
    at_max = start["value"] >= start["max"]
    first, back, far = (-1, +1, "home") if at_max else (+1, -1, "end")

    moved = control.move(first, start)
    check_summary(control, moved)
    returned = control.move(back, moved)
    assert (returned["key"], returned["readout"]) == (start["key"], start["readout"]), (
        f"{control.name}: {first:+d} then {back:+d} should return to {start['readout']}, "
        f"got {returned['readout']}")
    if control.summary is not None:     # summary and picture are functions of the values
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
    if control.summary is None or control.kind != "slider":    # a slider's summary states its value
        return
    assert bs.shows_value(snap["summary"], snap["readout"], snap["value"]), (
        f"{control.name}: the summary {snap['summary']!r} does not state the slider's value "
        f"{snap['readout'] or snap['value']!r}")


@pytest.mark.parametrize("folder,path", CASES, ids=[f"{folder}/{p.name}" for folder, p in CASES])
def test_sliders_redraw_the_figure_and_the_summary(lab_and_browser, folder, path):
    """Now and then (4 times in three days of runs here, each time after other notebooks had run
    in the same browser; cause not found, see README) a dashboard's figure stays blank and its
    view takes no more frames. Such a notebook is run once more in a fresh tab, the first
    failure reported as a warning with what the page showed; a second blank figure fails."""
    try:
        drive_every_control(*lab_and_browser, folder, path)
    except bs.FigureStaysBlank as first:
        warnings.warn(f"{path.name} run again after: {first}", stacklevel=1)
        drive_every_control(*lab_and_browser, folder, path)


def drive_every_control(lab, browser, folder, path):
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
        too_wide = nb.too_wide()
        assert not too_wide, f"{path.name}: outputs do not fit the 848-px output column: {too_wide}"

        controls = nb.controls()
        assert controls, (f"{path.name} builds sliders (code or lesson module) but the page "
                          "shows none")
        if path == FIXTURE:
            assert [(c.info["dashboard"], c.info["disabled"]) for c in controls] == [
                (True, False), (True, False), (True, True), (False, False)]
        hidden = []
        for control in controls:                 # in page order: a control that an earlier one
            state = control.state()              # revealed (08: G, shown for GroupNorm) is moved too
            if state["disabled"]:                # a learner cannot move it
                continue
            if not state["visible"]:
                hidden.append(control.name)
                continue
            start, moved, end = exercise(control)
            if folder == "notebooks/ja" and control.summary is not None:
                assert JAPANESE.search(moved["summary"]), (
                    f"{path.name}: the summary under the figure is not in Japanese: {moved['summary']!r}")
        assert not hidden, f"{path.name}: controls never shown while the others moved: {hidden}"

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


@pytest.mark.parametrize("folder,path", FIT_ONLY, ids=[f"{folder}/{p.name}" for folder, p in FIT_ONLY])
def test_every_notebook_runs_and_fits_the_output_column(lab_and_browser, folder, path):
    """Notebooks not driven above (static figures only, or the Japanese twins): every cell runs
    in JupyterLab and every output fits the 848-px output column of a 1280-px window with the
    file browser open (figures drawn 100 px per inch: at most 8.2 in wide)."""
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
        too_wide = nb.too_wide()
        assert not too_wide, f"{path.name}: outputs do not fit the 848-px output column: {too_wide}"
    except BaseException:
        shot = lab.workdir / f"failed-{folder.replace('/', '-')}-{path.stem}.png"
        with contextlib.suppress(Exception):
            nb.page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the page: {shot}")
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


def test_dashboard_frames_decode_to_the_same_pixels():
    """The Dashboard sends ipympl's frames with its own (faster) PNG encoder: they must decode to
    exactly the pixels, in a full frame and in a difference frame (unchanged pixels transparent)."""
    import io

    import numpy as np
    from PIL import Image

    from bnlib.widgets import png_bytes
    rng = np.random.default_rng(0)
    full = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    diff = np.zeros((40, 64, 4), np.uint8)
    diff[5:9, 10:30] = rng.integers(0, 256, (4, 20, 4), dtype=np.uint8)
    for rgba in (full, diff):
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(rgba)))), rgba)


def test_dashboard_gives_the_live_canvas_its_size_before_display():
    """ipympl draws a canvas's view at the size in its `_size` trait. Displayed inside the
    Dashboard's VBox, the canvas would keep (0, 0) until the kernel answers the page (after every
    queued cell has run): the figure area stays empty until then. The Dashboard sets the
    figure's size in CSS pixels, as ipympl's own display does. (In a subprocess: importing
    ipympl's backend makes it pyplot's backend for the process.)"""
    script = textwrap.dedent("""
        import ipywidgets as widgets
        from ipympl.backend_nbagg import Canvas, FigureManager
        from matplotlib.figure import Figure
        from bnlib.widgets import Dashboard
        fig = Figure(figsize=(8.2, 3.8), dpi=100)
        FigureManager(Canvas(fig), 1)
        before = tuple(fig.canvas._size)
        line, = fig.add_subplot().plot([0, 1], [0, 1])
        def update(k):
            line.set_ydata([0, k])
            return f"k = {k}"
        Dashboard(fig, update, animated=[line], k=widgets.IntSlider(value=1, min=0, max=3))
        print(*before, *(round(v, 6) for v in fig.canvas._size))
    """)
    out = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", script],
                         capture_output=True, text=True, check=True, timeout=120).stdout.split()
    assert out == ["0", "0", "820.0", "380.0"], out       # ipympl starts from (0, 0)
