"""Lesson 00 — start here: check the environment, check that widgets render, try the checks.

    problems = start.environment_report()        # prints versions; returns what is missing
    start.slider_check()                         # a plain ipywidgets slider and a label
    start.figure_check().show()                  # a tiny interactive (ipympl) figure
    start.check_mean(answer)                     # exercise 1: the mean (平均)
    start.check_std(answer)                      # exercise 2: the standard deviation (標準偏差)

The kernel cannot see the browser, so whether widgets *render* is something the learner sees:
the slider check answers in its label only after a round trip browser → Python → browser.
"""
import sys
from importlib import metadata
from pathlib import Path

import ipywidgets as widgets
import matplotlib
import numpy as np

from .. import plots
from ..checks import check
from ..i18n import N_, _, pad
from ..widgets import Dashboard

MIN_PYTHON = (3, 11)
# What the notebooks import (needed in the kernel) and what serves them (may live elsewhere).
KERNEL_PACKAGES = {"numpy": "2.0", "matplotlib": "3.8", "ipywidgets": "8.0", "ipympl": "0.9"}
SERVER_PACKAGES = ("jupyterlab",)
REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"
FRONTEND_NOTE = N_("Something is missing or too old (see the ✗ lines above). Install the pinned requirements "
                   "(make lab, or the commands under 'How to run the notebooks'), restart the kernel, and "
                   "reload the page. If a slider below shows 'Error displaying widget' or plain text, see "
                   "'If you do not see a slider'.")


def _version_tuple(text):
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)



def _row(name, shown, note):
    print(f"{pad(name, 11)} {pad(shown, 9)} {note}")


def pinned_versions(path=REQUIREMENTS):
    """{package: version} from the repository's requirements.txt ({} when it is not there,
    e.g. bnlib installed on its own)."""
    path = Path(path)
    if not path.is_file():
        return {}
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def installed_version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment_report(pins=None):
    """Print one line per package (installed version, and whether it matches the pinned one)
    and the matplotlib backend. Returns the list of problems: missing packages or versions
    older than the series needs. A version that differs from the pin is a note, not a problem."""
    pins = pinned_versions() if pins is None else pins
    problems = []
    python = ".".join(map(str, sys.version_info[:3]))
    needed = ".".join(map(str, MIN_PYTHON))
    ok = sys.version_info[:2] >= MIN_PYTHON
    _row("Python", python, "✓" if ok else _("✗ needs {minimum} or newer").format(minimum=needed))
    if not ok:
        problems.append(_("Python {version} is older than {minimum}").format(version=python, minimum=needed))
    for name, minimum in KERNEL_PACKAGES.items():
        version = installed_version(name)
        if version is None:
            _row(name, _("missing"), _("✗ install the pinned requirements (make lab does it)"))
            problems.append(_("{name} is not installed").format(name=name))
            continue
        if _version_tuple(version) < _version_tuple(minimum):
            _row(name, version, _("✗ too old: the series needs {minimum} or newer").format(minimum=minimum))
            problems.append(_("{name} {version} is older than {minimum}").format(
                name=name, version=version, minimum=minimum))
            continue
        pin = pins.get(name)
        note = "✓" if pin in (None, version) else _(
            "✓ (pinned {pin}: if a figure looks wrong, use the pinned set)").format(pin=pin)
        _row(name, version, note)
    for name in SERVER_PACKAGES:
        version = installed_version(name)
        _row(name, version or _("not here"),
             "✓" if version else _("(fine if JupyterLab runs elsewhere, e.g. on Binder's server)"))
    backend = matplotlib.get_backend()
    interactive = "ipympl" in backend or backend.lower() == "widget"
    _row(_("backend"), "widget" if interactive else backend,
         _("✓ interactive figures (ipympl)") if interactive else _("✗ run the first code cell (%matplotlib widget)"))
    if not interactive:
        problems.append(_("matplotlib backend is {backend!r}, not the widget backend").format(backend=backend))
    if problems:                                          # troubleshooting only when something failed
        print(_(FRONTEND_NOTE))
    return problems


def slider_check():
    """A plain ipywidgets slider and a label. The label changes only when the browser sends the
    new value to Python and shows Python's answer: proof that widgets work in both directions."""
    slider = widgets.IntSlider(value=5, min=0, max=10, description=_("move me"))
    label = widgets.Label(_("Move the slider. If this line changes, widgets work."))

    def on_change(change):
        label.value = _("✓ The slider is at {value}: widgets work (browser → Python → browser).").format(
            value=change["new"])

    slider.observe(on_change, names="value")
    return widgets.VBox([slider, label])


def sigmoid(x):
    """σ(x) = 1 / (1 + e^(−x)): the S-shaped activation the networks of this series use."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def figure_check():
    """A tiny interactive figure: a dot that follows a slider along the sigmoid curve."""
    x = np.linspace(-6, 6, 200)
    fig, ax = plots.new_figure(width=6.5, height=3.0, margins=(0.1, 0.98, 0.17, 0.9, 0, 0))
    ax.plot(x, sigmoid(x), color=plots.COLORS["grey"], label=r"$\sigma(x) = 1\,/\,(1 + e^{-x})$")
    (dot,) = ax.plot([0.0], [0.5], "o", color=plots.COLORS["bn"], markersize=9, label=_("the slider's x"))
    ax.set_xlabel("x")
    ax.set_ylabel("σ(x)")
    ax.set_title(_("Does the dot follow the slider?"))
    ax.set_ylim(-0.05, 1.05)
    ax.legend(loc="upper left", fontsize=9)

    def update(x):
        y = float(sigmoid(x))
        dot.set_data([x], [y])
        return _("x = {x:+.1f} → σ(x) = {y:.3f}. If the dot moved, interactive figures work.").format(x=x, y=y)

    slider = widgets.FloatSlider(value=0.0, min=-6.0, max=6.0, step=0.5, description="x")
    return Dashboard(fig, update, animated=[dot], x=slider)


# ---------------------------------------------------------------- exercises
DEMO_SCORES = np.array([2.0, 4.0, 9.0])
EXERCISE_SCORES = np.array([55.0, 70.0, 85.0, 90.0])
EXERCISE_VALUES = np.array([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])


# Each check prints ✓, "not attempted" (answer left as ...) or raises NotYet with a hint.
def check_demo(answer):
    """The worked example: the mean of DEMO_SCORES (2, 4, 9) is 5."""
    x = DEMO_SCORES
    name = _("demo — the mean of 2, 4 and 9")
    check(answer, x.mean(), name,
          wrong=[(x.sum(), _("that is the sum; divide it by how many numbers there are (3)")),
                 (np.median(x), _("that is the median (the middle value); the mean adds them all "
                                  "and divides by how many there are"))])


def check_mean(answer):
    """Exercise 1: the mean μ of EXERCISE_SCORES (55, 70, 85, 90)."""
    x = EXERCISE_SCORES
    name = _("exercise 1 — the mean μ")
    check(answer, x.mean(), name,
          wrong=[(x.sum(), _("that is the sum; divide it by N, the number of values (4)")),
                 (np.median(x), _("that is the median (the middle value); the mean is the sum "
                                  "divided by N")),
                 (x.sum() / (len(x) - 1), _("you divided by N − 1 = 3; the mean divides by N = 4"))])


def check_std(answer):
    """Exercise 2: the standard deviation σ = √( (1/N) Σ (xᵢ − μ)² ) of EXERCISE_VALUES."""
    x = EXERCISE_VALUES
    squares = (x - x.mean()) ** 2
    name = _("exercise 2 — the standard deviation σ")
    check(answer, x.std(), name,
          wrong=[(x.std(ddof=1), _("you divided by N − 1 (7). In this series σ divides by N (8), "
                                   "as np.std does by default and as batch norm does in training")),
                 (x.var(), _("that is the variance σ²; the standard deviation is its square root")),
                 (x.var(ddof=1), _("that is the variance, and divided by N − 1: take the square "
                                   "root, and divide by N (8)")),
                 (np.sqrt(squares.sum()), _("divide the sum of squares by N (8) before the square root")),
                 (squares.sum(), _("that is the sum of the squares: divide it by N (8), then take the "
                                   "square root")),
                 (np.sqrt(np.mean(x ** 2)), _("subtract μ from each value first, then square")),
                 (np.sqrt(np.sum(x ** 2)), _("subtract μ from each value first, and divide the sum of "
                                             "squares by N (8) before the square root")),
                 (np.abs(x - x.mean()).mean(), _("that is the mean distance from μ; square the "
                                                 "distances first, average them, then take the "
                                                 "square root"))])
