"""Interactive figures: controls + one figure created once + an update that edits artists in place.

    fig, ax = plots.new_figure()
    line, = ax.plot(x, np.sin(x))
    def update(freq):
        line.set_ydata(np.sin(freq * x))
        return f"frequency {freq:.1f}"                # the one-line summary shown under the figure
    Dashboard(fig, update, freq=FloatSlider(min=1, max=5)).show()

With ipympl (`%matplotlib widget`) only the changed artists are redrawn, which keeps a slider
responsive. Without a widget frontend (nbconvert, a static viewer) the figure as first drawn
is shown as a PNG, so the page still has a meaningful picture.
"""
import base64
import html
import io

import ipywidgets as widgets
from IPython import get_ipython
from IPython.display import display

from .i18n import _


class Dashboard:
    """Sliders/toggles driving `update(**values) -> summary string` on one figure."""

    def __init__(self, fig, update, animated=(), **controls):
        """animated: the artists `update` changes (lines, stairs, markers, texts …). Given them,
        a slider move redraws only those over a cached background (blitting), several times
        faster with ipympl than redrawing the whole figure; `update` must then change nothing
        else (no axis limits, ticks or titles left out of the list). Without it, every move
        redraws the whole figure."""
        self.fig, self._update, self.controls = fig, update, controls
        self.animated, self._background = list(animated), None
        self.summary = widgets.Label(layout=widgets.Layout(min_height="1.6em"))
        self.summary.add_class("bnlib-summary")     # browser tests find the line by this class
        self.interactive_canvas = isinstance(fig.canvas, widgets.DOMWidget)
        self._output = None if self.interactive_canvas else widgets.Output()
        if self.animated and self.interactive_canvas:
            self._canvas = fig.canvas
            for artist in self.animated:
                artist.set_animated(True)
            fig.canvas.mpl_connect("draw_event", self._grab_background)
        for control in controls.values():
            control.observe(self._on_change, names="value")
        self.refresh()

    def _grab_background(self, event):
        """After each full draw of the live canvas (first display, resize): keep the picture
        without the animated artists, then draw them on top to complete the frame."""
        if event.canvas is not self._canvas:          # savefig draws on a canvas of its own
            return
        self._background = self._canvas.copy_from_bbox(self.fig.bbox)
        for artist in self.animated:
            self.fig.draw_artist(artist)

    @property
    def values(self):
        return {name: control.value for name, control in self.controls.items()}

    def refresh(self):
        """Run the update with the current control values and redraw."""
        self.summary.value = self._update(**self.values)
        if self.interactive_canvas and self._background is not None:
            canvas = self.fig.canvas                  # blit: only the animated artists
            canvas.restore_region(self._background)
            for artist in self.animated:
                self.fig.draw_artist(artist)
            canvas.blit(self.fig.bbox)
        elif self.interactive_canvas:
            self.fig.canvas.draw_idle()
        elif self._output is not None:            # inline backend: redraw the whole picture
            self._output.clear_output(wait=True)
            with self._output:
                display(self.fig)
        return self.summary.value

    def _on_change(self, change):
        self.refresh()

    def set(self, **values):
        """Move controls from code (as a learner would with the mouse); returns the summary."""
        for name, value in values.items():
            if name not in self.controls:
                raise ValueError(_("no control named {name!r}; controls: {controls}")
                                 .format(name=name, controls=", ".join(self.controls)))
            self.controls[name].value = value     # triggers refresh through observe
        return self.summary.value

    def widget(self):
        figure = self.fig.canvas if self.interactive_canvas else self._output
        box = widgets.VBox([widgets.HBox(list(self.controls.values())), figure, self.summary])
        box.add_class("bnlib-dashboard")          # the static picture hides itself beside it
        return box

    def png(self):
        buf = io.BytesIO()
        for artist in self.animated:                  # savefig leaves animated artists out
            artist.set_animated(False)
        try:
            self.fig.savefig(buf, format="png", dpi=80)
        finally:
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
                ":has(+ .jp-OutputArea-child .bnlib-dashboard) { display: none; }</style>"
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
