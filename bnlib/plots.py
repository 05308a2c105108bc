"""Figures the notebooks share: accuracy curves and percentile bands.

Colours are the Okabe–Ito palette (readable with every common colour-vision deficiency);
"plain" and "bn" keep the same colours in every notebook. Functions draw into an `ax` you
pass and return the artists they made, so interactive figures can update them in place.

Sizes. A learner's window is often 1280 px wide with JupyterLab's file browser open; the output
column is then 848 px wide. ipympl's canvas and the inline PNG both draw 100 px per inch (the
inline PNG adds 0.1 in of padding on each side), so no figure is wider than MAX_WIDTH = 8.2 in;
a figure that needs more room stacks its panels. `layout_problems(fig)` finds what a reader
would see cut off or overlapping (the lesson tests run it on every figure, in both languages).
"""
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.text import Text

from .i18n import _

COLORS = {"plain": "#E69F00", "bn": "#0072B2", "layer": "#009E73", "group": "#CC79A7",
          "instance": "#D55E00", "renorm": "#56B4E9", "grey": "#777777", "black": "#000000"}
CYCLE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000"]

OUTPUT_WIDTH_PX = 848      # JupyterLab's output column: 1280-px window, file browser open
DPI = 100                  # pixels per inch of ipympl's canvas and of the inline PNG
MAX_WIDTH = 8.2            # inches: the widest figure (+ 0.2 in of inline padding) that fits
PAD_INCHES = 0.1           # the inline backend saves with bbox_inches="tight", pad_inches=0.1


def new_figure(nrows=1, ncols=1, width=MAX_WIDTH, height=3.2, margins=None, **kwargs):
    """A figure that is not shown on creation (so an interactive one is displayed exactly once).

    width: at most MAX_WIDTH inches, so that it fits JupyterLab's output column.
    margins: None for constrained layout, or (left, right, bottom, top, wspace, hspace) as
    fractions of the figure. Fixed margins redraw much faster (constrained layout is re-solved
    at every draw: ~2.5× slower for a 1×3 figure here), and a Dashboard that blits needs them
    (constrained layout would make room for titles as they were at the first draw), so slider
    figures pass them.
    """
    layout = None if margins else "constrained"
    with plt.ioff():
        fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), layout=layout, **kwargs)
    if margins:
        fig.subplots_adjust(**dict(zip(("left", "right", "bottom", "top", "wspace", "hspace"), margins)))
    canvas = fig.canvas
    for attr in ("header_visible", "footer_visible", "toolbar_visible"):
        if hasattr(canvas, attr):          # ipympl canvas: hide chrome learners do not need
            setattr(canvas, attr, False)
    return fig, axes


def shown_width_px(fig):
    """How wide the figure shows in JupyterLab, in CSS pixels at 100 % zoom: the larger of the
    live canvas (figure width × DPI) and the inline PNG (the tight bounding box + padding)."""
    fig.canvas.draw()
    tight = fig.get_tightbbox(fig.canvas.get_renderer()).width + 2 * PAD_INCHES
    return DPI * max(fig.get_figwidth(), tight)


def _tick_labels(axis):
    """The tick labels the axis draws: visible, non-empty, at ticks inside the view."""
    lo, hi = sorted(axis.get_view_interval())
    tol = 1e-9 * max(1.0, abs(lo), abs(hi))
    labels = []
    for tick in axis.get_major_ticks() + axis.get_minor_ticks():
        if not (lo - tol <= tick.get_loc() <= hi + tol):
            continue
        labels += [t for t in (tick.label1, tick.label2) if t.get_visible() and t.get_text()]
    return labels


def _text_boxes(fig, renderer):
    """(owner, role, text, bbox) for every text a reader sees: titles, axis and tick labels,
    texts, legends (a legend is one box). owner: the axes' index, or "figure"."""
    boxes = []

    def add(owner, role, artist, text=None):
        if artist is None or not artist.get_visible():
            return
        if isinstance(artist, Text) and not artist.get_text():
            return
        text = artist.get_text() if text is None else text
        boxes.append((owner, role, text, artist.get_window_extent(renderer)))

    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        for title in (ax.title, ax._left_title, ax._right_title):
            add(i, "title", title)
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            if not (ax.axison and axis.get_visible()):
                continue
            add(i, name + "label", axis.label)
            add(i, name + "offset", axis.get_offset_text())
            for t in _tick_labels(axis):
                add(i, name + "tick", t)
        for t in ax.texts:
            add(i, "text", t)
        legend = ax.get_legend()
        if legend is not None:
            add(i, "legend", legend, " / ".join(t.get_text() for t in legend.get_texts()))
    for t in fig.texts:
        add("figure", "text", t)
    for legend in fig.legends:
        add("figure", "legend", legend, " / ".join(t.get_text() for t in legend.get_texts()))
    return boxes


def _overlap(a, b, tol=1.0):
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > tol) and (min(a.y1, b.y1) - max(a.y0, b.y0) > tol)


def layout_problems(fig, max_width=MAX_WIDTH):
    """What a reader would see cut off or garbled, as sentences (empty when the figure is fine):
    - the figure is wider than `max_width` inches, or its inline PNG (tight bounding box) wider
      than JupyterLab's output column;
    - a title, label, tick label, text or legend reaches past the figure's edges;
    - texts of different panels (or of a panel and the figure) overlap, or a panel's text
      reaches into another panel;
    - neighbouring tick labels of one axis overlap.
    Draws the figure once (with its animated artists) to measure the texts."""
    problems = []
    if fig.get_figwidth() > max_width + 1e-9:
        problems.append(f"the figure is {fig.get_figwidth():.2f} in wide (at most {max_width} in)")
    animated = [a for a in fig.findobj() if a.get_animated()]
    for a in animated:
        a.set_animated(False)
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        boxes = _text_boxes(fig, renderer)
        inline = DPI * (fig.get_tightbbox(renderer).width + 2 * PAD_INCHES)
    finally:
        for a in animated:
            a.set_animated(True)
    if inline > OUTPUT_WIDTH_PX:
        problems.append(f"the inline picture is {inline:.0f} px wide (the output column: {OUTPUT_WIDTH_PX} px)")
    width, height = fig.bbox.width, fig.bbox.height
    for owner, role, text, bb in boxes:
        if bb.x0 < -1 or bb.y0 < -1 or bb.x1 > width + 1 or bb.y1 > height + 1:
            problems.append(f"cut off at the figure's edge: {role} {text!r}")
    for k, (owner, role, text, bb) in enumerate(boxes):
        for owner2, role2, text2, bb2 in boxes[k + 1:]:
            if owner != owner2 and _overlap(bb, bb2):
                problems.append(f"overlap: {role} {text!r} and {role2} {text2!r}")
        for j, ax in enumerate(fig.axes):          # a text running into another panel
            if j != owner and ax.get_visible() and role != "legend" and _overlap(bb, ax.bbox):
                problems.append(f"{role} {text!r} reaches into panel {j + 1}")
    for i, ax in enumerate(fig.axes):
        for name in ("xtick", "ytick"):
            ticks = sorted((bb for owner, role, _t, bb in boxes if owner == i and role == name),
                           key=(lambda b: b.x0) if name == "xtick" else (lambda b: b.y0))
            for a, b in zip(ticks, ticks[1:]):
                if _overlap(a, b):
                    problems.append(f"crowded {name} labels in panel {i + 1}")
                    break
    return problems


def accuracy_curves(ax, histories, metric="test_acc"):
    """Accuracy against training step, one line per {label: History}."""
    lines = []
    for i, (label, h) in enumerate(histories.items()):
        color = COLORS.get(label, CYCLE[i % len(CYCLE)])
        (line,) = ax.plot(h.record_steps, getattr(h, metric), label=label, color=color)
        lines.append(line)
    ax.set_xlabel(_("training step"))
    ax.set_ylabel(_("test accuracy") if metric == "test_acc" else _("train accuracy"))
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right")
    return lines


def percentile_bands(ax, history, layer=-1, unit=0, color=None, label=None, tensor="pre"):
    """The BN paper's Figure 1(b, c): 15th/50th/85th percentiles of one unit's input over training.

    layer: index of the hidden layer (−1: the last); unit: which unit; tensor: "pre" (the
    activation's input) or "act" (its output).
    """
    stats = getattr(history.layers[layer], tensor)
    p = stats.unit_percentiles[:, unit, :]
    color = color or COLORS["bn"]
    steps = history.record_steps
    band_label, median_label = _("15th–85th percentile"), _("median")
    if label:
        band_label = _("{label}: {what}").format(label=label, what=band_label)
        median_label = _("{label}: {what}").format(label=label, what=median_label)
    band = ax.fill_between(steps, p[:, 0], p[:, 2], color=color, alpha=0.25, label=band_label)
    (median,) = ax.plot(steps, p[:, 1], color=color, label=median_label)
    ax.set_xlabel(_("training step"))
    ax.set_ylabel(_("input to the activation") if tensor == "pre" else _("activation output"))
    return band, median
