"""Key press to new pixels: how fast each interactive figure answers its sliders in a browser.

    python bench/slider_latency.py [--presses 10] [notebooks/05_batch_size.ipynb ...]

Set-up as a learner meets it (tests/browser_support.py): JupyterLab on 127.0.0.1, Debian's
Chromium (headless, Playwright), the notebook opened, Run → Run All Cells, kernel idle. Default:
every notebook whose code or lesson module builds sliders.

Method. Before the presses the page gets two hooks (plain JavaScript, nothing in the notebook
changes):
- a `keydown` listener (capture phase) keeps the event's timeStamp: the moment the browser
  handles the key press;
- CanvasRenderingContext2D.drawImage is wrapped: ipympl paints every new figure image onto the
  visible canvas with drawImage, so after each call onto a figure canvas the wrapper records
  performance.now() and a hash of the canvas pixels, and asks requestAnimationFrame for the
  start of the next frame, the frame in which those pixels reach the screen.
For each press: focus the slider handle, press ArrowRight (ArrowLeft at the maximum; the keys
alternate, so the slider goes back and forth over one step), then wait for the first draw whose
pixels differ from the pixels before the press. Latency = that draw's next frame − keydown.
Also shown: keydown → the summary line's new text (a MutationObserver). Between presses the
kernel must be idle again, so presses never overlap. Each slider gets --presses presses (≥ 8);
the table shows the median and the slowest, per slider and per figure (all its presses).
Disabled sliders are skipped, as are plain sliders outside a Dashboard (no figure).
Target (issue 5): median ≤ 100 ms key press to pixels. A benchmark, not a test: numbers depend
on the machine and on what else runs on it.
"""
import argparse
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import browser_support as bs  # noqa: E402

TARGET_MS = 100.0

HOOKS = """() => {
  if (window.__bnlat) return;
  const st = window.__bnlat = {key: null, draws: [], summaryAt: null, observer: null};
  const hash = c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let h = 2166136261 >>> 0;
    for (let i = 0; i < d.length; i += 1) { h ^= d[i]; h = Math.imul(h, 16777619) >>> 0; }
    return h; };
  st.hash = hash;
  document.addEventListener('keydown', e => { st.key = e.timeStamp; }, true);
  const draw = CanvasRenderingContext2D.prototype.drawImage;
  CanvasRenderingContext2D.prototype.drawImage = function (...args) {
    const out = draw.apply(this, args);
    const c = this.canvas;
    if (c && c === st.target) {
      const rec = {t: performance.now(), hash: hash(c), frame: null};
      st.draws.push(rec);
      requestAnimationFrame(ts => { rec.frame = ts; });
    }
    return out;
  };
}"""

ARM = """([canvas, summary]) => {
  const st = window.__bnlat;
  st.target = canvas; st.draws = []; st.key = null; st.summaryAt = null;
  st.before = st.hash(canvas);
  if (st.observer) st.observer.disconnect();
  st.observer = new MutationObserver(() => { if (st.summaryAt === null) st.summaryAt = performance.now(); });
  if (summary) st.observer.observe(summary, {childList: true, characterData: true, subtree: true});
}"""

RESULT = """() => new Promise((res, rej) => {
  const st = window.__bnlat, t0 = performance.now();
  (function poll() {
    const hit = st.draws.find(d => d.hash !== st.before && d.frame !== null);
    if (hit && st.key !== null)
      return res({pixels: Math.max(hit.frame, hit.t) - st.key, drawn: hit.t - st.key,
                  summary: st.summaryAt === null ? null : st.summaryAt - st.key});
    if (performance.now() - t0 > 20000) return res(null);     // this press redrew nothing
    setTimeout(poll, 10);
  })();
})"""


def measure(control: bs.Control, presses: int) -> list[dict]:
    page = control.nb.page
    control.bring_into_view()
    state = control.state()
    keys = ["ArrowLeft", "ArrowRight"] if state["value"] >= state["max"] else ["ArrowRight", "ArrowLeft"]
    results = []
    for i in range(presses):
        control.nb.wait_idle()
        page.evaluate(ARM, [control.canvas.element_handle(), control.summary.element_handle()])
        control.press(keys[i % 2])
        result = page.evaluate(RESULT)
        if result is None:          # e.g. a slider that changes nothing in the current mode
            break
        results.append(result)
    control.nb.wait_idle()
    return results


def fmt(values):
    return f"{statistics.median(values):7.0f} {max(values):7.0f}" if values else f"{'–':>7} {'–':>7}"


def verdict(px, ok, presses):
    if len(px) < presses:
        return "no redraw"
    return "ok" if ok else f"> {TARGET_MS:.0f} ms"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    parser.add_argument("--presses", type=int, default=10)
    args = parser.parse_args(argv)
    if args.presses < 8:
        parser.error("--presses must be at least 8")
    missing = bs.chromium_missing()
    if missing:
        sys.exit(missing)
    paths = args.notebooks or bs.interactive_notebooks()

    header = (f"{'notebook':<34} {'figure · slider':<30} {'n':>3} {'px med':>7} {'px max':>7} "
              f"{'sum med':>7} {'sum max':>7}  verdict")
    rows, figure_rows = [], []
    with tempfile.TemporaryDirectory(prefix="bnlib-latency-") as tmp:
        work = pathlib.Path(tmp)
        sources = sorted({p.resolve().parent for p in paths})
        with bs.JupyterLab(work, sources=sources) as lab, bs.chromium(work / "chromium") as browser:
            for path in paths:
                nb = bs.LabNotebook.open(browser, lab, f"{path.resolve().parent.name}/{path.name}")
                try:
                    nb.run_all()
                    nb.wait_widgets_rendered()
                    nb.page.evaluate(HOOKS)
                    figures = {}
                    for control in nb.controls():
                        if control.canvas is None or control.info["disabled"]:
                            continue
                        res = measure(control, args.presses)
                        px = [r["pixels"] for r in res]
                        sm = [r["summary"] for r in res if r["summary"] is not None]
                        if len(px) < args.presses:
                            print(f"{path.name:<34} {control.name[:30]:<30} press {len(px) + 1} "
                                  "redrew nothing within 20 s: slider skipped", flush=True)
                            rows.append((path.name, control.name, len(px), px, sm, False))
                            continue
                        figures.setdefault(control.info["cell"], []).extend(px)
                        ok = statistics.median(px) <= TARGET_MS
                        rows.append((path.name, control.name, len(px), px, sm, ok))
                        print(f"{path.name:<34} {control.name[:30]:<30} {len(px):>3} {fmt(px)} "
                              f"{fmt(sm)}  {verdict(px, ok, args.presses)}", flush=True)
                    for cell, px in figures.items():
                        figure_rows.append((path.name, cell, px))
                finally:
                    nb.close()
                    lab.shutdown_kernels()

    print()
    print("key press → new pixels on the figure canvas (ms; 'sum': → new summary text)")
    print(header)
    print("-" * len(header))
    for name, label, n, px, sm, ok in rows:
        print(f"{name:<34} {label[:30]:<30} {n:>3} {fmt(px)} {fmt(sm)}  "
              f"{verdict(px, ok, args.presses)}")
    print()
    print(f"{'per figure':<34} {'cell':<30} {'n':>3} {'px med':>7} {'px max':>7}")
    for name, cell, px in figure_rows:
        print(f"{name:<34} {'cell ' + str(cell):<30} {len(px):>3} {fmt(px)}  "
              f"{'ok' if statistics.median(px) <= TARGET_MS else f'> {TARGET_MS:.0f} ms'}")
    misses = [f"{n} {c}" for n, c, _, px, _, ok in rows if not ok]
    print(f"target: median ≤ {TARGET_MS:.0f} ms key press to pixels; missed by: "
          f"{', '.join(misses) or 'none'}")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
