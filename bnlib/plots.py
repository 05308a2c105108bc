"""Figures the notebooks share: accuracy curves and percentile bands.

Colours are the Okabe–Ito palette (readable with every common colour-vision deficiency);
"plain" and "bn" keep the same colours in every notebook. Functions draw into an `ax` you
pass and return the artists they made, so interactive figures can update them in place.
"""
import matplotlib.pyplot as plt
import numpy as np

from .i18n import _

COLORS = {"plain": "#E69F00", "bn": "#0072B2", "layer": "#009E73", "group": "#CC79A7",
          "instance": "#D55E00", "renorm": "#56B4E9", "grey": "#777777", "black": "#000000"}
CYCLE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000"]


def new_figure(nrows=1, ncols=1, width=9.0, height=3.2, margins=None, **kwargs):
    """A figure that is not shown on creation (so an interactive one is displayed exactly once).

    margins: None for constrained layout, or (left, right, bottom, top, wspace, hspace) as
    fractions of the figure. Fixed margins redraw much faster (constrained layout is re-solved
    at every draw: ~2.5× slower for a 1×3 figure here), so slider figures should pass them.
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
