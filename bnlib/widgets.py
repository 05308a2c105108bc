"""Interactive figures: controls + one figure created once + an update that edits artists in place.

    fig, ax = plots.new_figure(margins=(0.1, 0.97, 0.15, 0.9, 0, 0))
    line, = ax.plot(x, np.sin(x))
    ax.set_ylim(-1.1, 1.1)                            # fixed axes: the update only sets data
    def update(freq):
        line.set_ydata(np.sin(freq * x))
        return f"frequency {freq:.1f}"                # the one-line summary shown under the figure
    Dashboard(fig, update, animated=[line], freq=FloatSlider(min=1, max=5)).show()

With ipympl (`%matplotlib widget`) a move redraws only the artists listed in `animated` over a
picture of everything else kept from the last full draw (blitting): a few milliseconds in the
kernel instead of a full matplotlib draw, whatever the figure holds. Without a widget frontend
(nbconvert, a static viewer) the figure as first drawn is shown as a PNG, so the page still has a
meaningful picture.

What makes a dashboard fast (key press → new pixels; see bench/slider_latency.py):
- list in `animated` every artist the update changes: lines, stairs, bars, images, texts,
  the titles it rewrites; and, if the update changes an axis' limits, that axis (`ax.yaxis`)
  and every artist drawn in data coordinates in those axes;
- precompute what the controls show, so the update only picks arrays and sets data;
- a small figure (ipympl sends every frame as a PNG of the whole canvas) with fixed margins.
The Dashboard checks each move: if anything not listed changed (an artist marked stale, limits
that move unlisted artists), it draws the whole figure instead, so a forgotten artist costs
speed, never a wrong picture. `redraws` counts both kinds.
"""
import base64
import html
import io
import struct
import types
import zlib

import ipywidgets as widgets
import numpy as np
from IPython import get_ipython
from IPython.display import display

from .i18n import _


def _moves_with_limits(artist, ax, which):
    """Does `artist` (in `ax`) move when the x (which=0) or y (which=1) limits of `ax` change?"""
    transforms = [artist.get_transform()]
    if hasattr(artist, "get_offset_transform"):            # collections: scatter offsets, …
        transforms.append(artist.get_offset_transform())
    for transform in transforms:
        try:
            if transform.contains_branch_seperately(ax.transData)[which]:
                return True
        except ValueError:                                  # not a 2-D transform: assume it moves
            return True
    return False


def png_bytes(rgba):
    """(H, W, 4) uint8 → PNG bytes: no filtering, zlib level 1. About twice as fast as Pillow's
    default for the mostly-empty difference frames ipympl sends after a blit, for PNGs of about
    the same size."""
    height, width, _ = rgba.shape
    rows = np.empty((height, 4 * width + 1), np.uint8)
    rows[:, 0] = 0                                       # filter type 0 (none) on every row
    rows[:, 1:] = rgba.reshape(height, -1)

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)   # 8 bits per channel, RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
            + chunk(b"IEND", b""))


def _diff_image(canvas):
    """matplotlib's FigureCanvasWebAggCore.get_diff_image (the frame ipympl sends: the whole
    picture, or only the pixels that changed since the last frame), with the faster encoder."""
    if not canvas._png_is_old:
        return None
    pixels = np.asarray(canvas.get_renderer().buffer_rgba())
    buff = pixels.view(np.uint32).squeeze(2)
    if canvas._force_full or buff.shape != canvas._last_buff.shape or (pixels[:, :, 3] != 255).any():
        canvas.set_image_mode("full")
        output = buff
    else:
        canvas.set_image_mode("diff")
        output = np.where(buff != canvas._last_buff, buff, 0)
    canvas._last_buff = buff.copy()
    canvas._force_full = False
    canvas._png_is_old = False
    return png_bytes(output.view(np.uint8).reshape(*output.shape, 4))


class Dashboard:
    """Sliders/toggles driving `update(**values) -> summary string` on one figure."""

    def __init__(self, fig, update, animated=(), **controls):
        """animated: the artists `update` changes (lines, stairs, bars, images, texts, an axis
        whose limits it changes …). Given them, a move redraws only those over a cached
        background (blitting), several times faster with ipympl than redrawing the whole figure.
        Whatever else the update changes is noticed and makes that move a full redraw."""
        self.fig, self._update, self.controls = fig, update, controls
        self.animated = list(animated)
        self._animated_ids = {id(a) for a in self.animated}
        self._background, self._drawn, self._shown = None, False, None
        self.redraws = {"blit": 0, "full": 0}
        self.summary = widgets.Label(layout=widgets.Layout(min_height="1.6em"))
        self.summary.add_class("bnlib-summary")     # browser tests find the line by this class
        self.interactive_canvas = isinstance(fig.canvas, widgets.DOMWidget)
        self._output = None if self.interactive_canvas else widgets.Output()
        self._canvas = fig.canvas
        if self.interactive_canvas:
            for artist in self.animated:
                artist.set_animated(True)
            fig.canvas.mpl_connect("draw_event", self._on_draw)
            # The Dashboard redraws its figure itself; pyplot's interactive mode would also ask
            # the browser for a full redraw as soon as an artist goes stale: twice the work.
            fig.stale_callback = None
            if all(hasattr(fig.canvas, a) for a in ("_png_is_old", "_force_full", "_last_buff", "set_image_mode")):
                fig.canvas.get_diff_image = types.MethodType(_diff_image, fig.canvas)   # faster frames
            if hasattr(fig.canvas, "_size"):
                # ipympl sizes a canvas's view from _size, which it sets only when the canvas is
                # displayed on its own or once the kernel answers the page's first message (after
                # "Run All", when every cell has run). Inside this VBox the view would be 0 × 0
                # until then, an empty figure area while the notebook runs: give it its size now.
                _, _, width, height = fig.bbox.bounds
                ratio = getattr(fig.canvas, "device_pixel_ratio", 1)
                fig.canvas._size = (width / ratio, height / ratio)
        for control in controls.values():
            control.observe(self._on_change, names="value")
        self.refresh()

    # ------------------------------------------------------------------ drawing
    def _on_draw(self, event):
        """After each full draw of the live canvas (first display, resize, a move that needs
        it): keep the picture without the animated artists, then draw them on top."""
        if event.canvas is not self._canvas:          # savefig draws on a canvas of its own
            return
        self._drawn = True
        if self.animated:
            self._background = self._canvas.copy_from_bbox(self.fig.bbox)
            self._draw_animated()
        self._settle()

    def _draw_animated(self):
        for artist in sorted(self.animated, key=lambda a: a.get_zorder()):
            self.fig.draw_artist(artist)

    def _leaves(self):
        """The figure's artists below the Axes level (axis objects, spines, titles, legends,
        lines, patches, texts …): what can go stale by itself."""
        fig = self.fig
        leaves = [*fig.texts, *fig.legends, *fig.lines, *fig.patches, *fig.images, *fig.artists]
        for ax in fig.axes:
            leaves += [a for a in ax.get_children() if a is not ax.patch]
        return leaves

    def _settle(self):
        """Mark every artist as drawn, so the next update's changes show up as stale. The Axes
        and the figure too: ipympl runs pyplot's "redraw every stale figure" after each message
        from the browser, which would otherwise ask for a full draw after every blit (drawing an
        axis marks its Axes stale), and again after that draw: a loop."""
        for artist in self._leaves():
            artist.stale = False
        for ax in self.fig.axes:
            ax.stale = False
        self.fig.stale = False

    def _limits(self):
        return [(tuple(ax.viewLim.intervalx), tuple(ax.viewLim.intervaly)) for ax in self.fig.axes]

    def needs_full_draw(self, limits_before):
        """True when the last update changed something a blit of `animated` would not show:
        an artist outside the list marked stale, or axis limits that move unlisted artists."""
        listed = self._animated_ids
        if any(artist.stale and id(artist) not in listed for artist in self._leaves()):
            return True
        limits = self._limits()
        if len(limits) != len(limits_before):
            return True
        for ax, now, before in zip(self.fig.axes, limits, limits_before):
            fixed = {id(ax.patch), *(id(s) for s in ax.spines.values())}   # span the axes whatever the limits
            for which in (0, 1):
                if now[which] != before[which] and any(
                        id(a) not in listed and id(a) not in fixed and a.get_visible()
                        and _moves_with_limits(a, ax, which) for a in ax.get_children()):
                    return True
        return False

    def _redraw(self, limits_before):
        canvas = self._canvas
        if self._background is not None and not self.needs_full_draw(limits_before):
            canvas.restore_region(self._background)     # blit: only the animated artists
            self._draw_animated()
            canvas.blit(self.fig.bbox)
            self._settle()
            self.redraws["blit"] += 1
        elif self._drawn:
            canvas.draw()               # now: draw_idle would first ask the browser for a draw
            self.redraws["full"] += 1
        else:
            canvas.draw_idle()          # not on a page yet: it draws when displayed

    # ------------------------------------------------------------------ values
    @property
    def values(self):
        return {name: control.value for name, control in self.controls.items()}

    def refresh(self):
        """Run the update with the current control values and redraw."""
        limits = self._limits() if self.interactive_canvas else None
        values = self.values
        self.summary.value = self._update(**values)
        self._shown = values
        if self.interactive_canvas:
            self._redraw(limits)
        elif self._output is not None:            # inline backend: redraw the whole picture
            self._output.clear_output(wait=True)
            with self._output:
                display(self.fig)
        return self.summary.value

    def _on_change(self, change):
        if self.values != self._shown:          # e.g. one control moved another: draw once
            self.refresh()

    def set(self, **values):
        """Move controls from code (as a learner would with the mouse); returns the summary."""
        for name, value in values.items():
            if name not in self.controls:
                raise ValueError(_("no control named {name!r}; controls: {controls}")
                                 .format(name=name, controls=", ".join(self.controls)))
            self.controls[name].value = value     # triggers refresh through observe
        return self.summary.value

    def would_blit(self, **values):
        """Move controls as `set` does and say whether a live canvas would show the move by
        redrawing only the animated artists (True) or would need a full draw (False). Works on
        any canvas: the lesson tests check with it that every control of a dashboard blits."""
        self.fig.canvas.draw()
        self._settle()
        before = self._limits()
        self.set(**values)
        return not self.needs_full_draw(before)

    # ------------------------------------------------------------------ display
    def widget(self):
        figure = self.fig.canvas if self.interactive_canvas else self._output
        box = widgets.VBox([widgets.HBox(list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap")),
                            figure, self.summary])
        box.add_class("bnlib-dashboard")          # the static picture hides itself beside it
        return box

    def png(self):
        buf = io.BytesIO()
        for artist in self.animated:                  # savefig leaves animated artists out
            artist.set_animated(False)
        try:
            self.fig.savefig(buf, format="png", dpi=80)
        finally:
            if self.interactive_canvas:
                for artist in self.animated:
                    artist.set_animated(True)
        return base64.b64encode(buf.getvalue()).decode("ascii")

    def static_picture(self):
        """The figure as first drawn, as an HTML output for pages without a widget frontend
        (nbconvert, GitHub, a notebook reopened without its kernel). Where the live Dashboard
        renders next to it (JupyterLab, Notebook 7), a CSS rule hides it: no duplicate figure."""
        note = _("a still picture: run the notebook to move the sliders.")
        return {
            "text/html": (
                '<div class="bnlib-static-figure">'
                "<style>.jp-OutputArea-child:has(.bnlib-static-figure)"
                ":has(+ .jp-OutputArea-child .bnlib-dashboard) { display: none; }"
                # the summary line wraps instead of being cut off at the output column's edge
                ".bnlib-summary { white-space: normal !important; height: auto !important;"
                " line-height: 1.4 !important; overflow: visible !important; }</style>"
                f'<img src="data:image/png;base64,{self.png()}" '
                f'alt="{html.escape(self.summary.value)}"/>'
                f"<div><i>{html.escape(self.summary.value)}</i> — "
                f"{html.escape(note)}</div></div>"),
            "text/plain": self._plain_text(),
        }

    def _repr_mimebundle_(self, **kwargs):
        # Two outputs: the still picture (published first, as its own output, because nbconvert
        # shows only one format of an output and prefers the widget when its state is saved),
        # then the live widget. A static page shows the picture; a live page shows the widget.
        if get_ipython() is not None:                 # only inside a kernel
            display(self.static_picture(), raw=True)
        bundle = self.widget()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data = dict(data or {})
        data["text/plain"] = self._plain_text()
        return data

    def _plain_text(self):
        return _("[interactive figure — {summary}]").format(summary=self.summary.value)

    def show(self):
        """Display the dashboard (returns None, so a cell ending in .show() shows it once)."""
        display(self)
