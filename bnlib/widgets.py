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
import io

import ipywidgets as widgets
from IPython.display import display


class Dashboard:
    """Sliders/toggles driving `update(**values) -> summary string` on one figure."""

    def __init__(self, fig, update, **controls):
        self.fig, self._update, self.controls = fig, update, controls
        self.summary = widgets.Label(layout=widgets.Layout(min_height="1.6em"))
        self.summary.add_class("bnlib-summary")     # browser tests find the line by this class
        self.interactive_canvas = isinstance(fig.canvas, widgets.DOMWidget)
        self._output = None if self.interactive_canvas else widgets.Output()
        for control in controls.values():
            control.observe(self._on_change, names="value")
        self.refresh()

    @property
    def values(self):
        return {name: control.value for name, control in self.controls.items()}

    def refresh(self):
        """Run the update with the current control values and redraw."""
        self.summary.value = self._update(**self.values)
        if self.interactive_canvas:
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
                raise ValueError(f"no control named {name!r}; controls: {', '.join(self.controls)}")
            self.controls[name].value = value     # triggers refresh through observe
        return self.summary.value

    def widget(self):
        figure = self.fig.canvas if self.interactive_canvas else self._output
        return widgets.VBox([widgets.HBox(list(self.controls.values())), figure, self.summary])

    def png(self):
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png", dpi=80)
        return base64.b64encode(buf.getvalue()).decode("ascii")

    def _repr_mimebundle_(self, **kwargs):
        # A live frontend renders the widget; nbconvert and static viewers fall back to the PNG.
        bundle = self.widget()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data = dict(data or {})
        data["image/png"] = self.png()
        data["text/plain"] = f"[interactive figure — {self.summary.value}]"
        return data

    def show(self):
        """Display the dashboard (returns None, so a cell ending in .show() shows it once)."""
        display(self)
