"""Key press to new pixels: how fast each interactive figure answers its controls in a browser.

    python bench/slider_latency.py [--presses 10] [--edition en|ja|both] [notebooks/05_batch_size.ipynb ...]

Set-up as a learner meets it (tests/browser_support.py): JupyterLab on 127.0.0.1, Debian's
Chromium (headless, Playwright) in a 1280 × 800 window with the file browser open, the notebook
opened, Run → Run All Cells, kernel idle. Default: tests/fixtures/floor.ipynb first (the floor,
below), then every notebook whose code or lesson module builds controls, in both editions.

Method. Before the presses the page gets two hooks (plain JavaScript, nothing in the notebook
changes):
- a `keydown` listener (capture phase) keeps the event's timeStamp: the moment the browser
  handles the key press (for a dropdown, picked as a mouse user would, the `change` event's);
- CanvasRenderingContext2D.drawImage is wrapped: ipympl paints every new figure image onto the
  visible canvas with drawImage, so after each call onto a figure canvas the wrapper records
  performance.now() and a hash of the canvas pixels, and asks requestAnimationFrame for the
  start of the next frame, the frame in which those pixels reach the screen.
For each press: move the control one step (a slider by the arrow keys, ArrowRight or ArrowLeft at
its maximum, alternating so it goes back and forth over one step; toggle buttons with Enter; a
dropdown to the next option and back), then wait for the first draw whose pixels differ from the
pixels before the press. Latency = that draw's next frame − key event. Also shown: key event →
the summary line's new text (a MutationObserver). Between presses the kernel must be idle again,
so presses never overlap. Each control gets --presses presses (≥ 8); after toggle buttons or a
dropdown the control is left on its last option, so a control it reveals (08: G, shown for
GroupNorm) is measured too. Disabled and hidden controls are skipped, as are controls outside a
Dashboard (no figure). A control whose figure stays blank for 20 s once scrolled into view is
reported as a miss and the run goes on with the next one.

The floor. tests/fixtures/floor.ipynb holds two one-line dashboards (a small figure and one as
wide as the lesson dashboards) redrawn by blitting: the kernel does almost nothing per press, so
their latency is what ipywidgets, ipympl (a PNG of the whole canvas per frame, decoded and
copied by the page) and the browser cost by themselves. No kernel-side change to a dashboard
can go below it.

Targets (issue 11): median ≤ 100 ms and p90 ≤ 150 ms key press to pixels, for every control.
A benchmark, not a test: the numbers depend on the machine and on what else runs on it (the load
average is printed with them).
"""
import argparse
import math
import os
import pathlib
import statistics
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import browser_support as bs  # noqa: E402

TARGET_MS, TARGET_P90_MS = 100.0, 150.0
FLOOR = ROOT / "tests" / "fixtures" / "floor.ipynb"

HOOKS = """() => {
  if (window.__bnlat) return;
  const st = window.__bnlat = {key: null, draws: [], summaryAt: null, observer: null};
  const hash = c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let h = 2166136261 >>> 0;
    for (let i = 0; i < d.length; i += 1) { h ^= d[i]; h = Math.imul(h, 16777619) >>> 0; }
    return h; };
  st.hash = hash;
  document.addEventListener('keydown', e => { if (st.key === null) st.key = e.timeStamp; }, true);
  document.addEventListener('change', e => { if (st.key === null) st.key = e.timeStamp; }, true);
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
    try:
        control.bring_into_view()
    except AssertionError as e:     # reported as a miss ("redrew nothing"); the other controls still run
        print(f"  {e}", flush=True)
        return []
    state = control.state()
    moves = [-1, +1] if state["value"] >= state["max"] else [+1, -1]
    results = []
    for i in range(presses):
        control.nb.wait_idle()
        page.evaluate(ARM, [control.canvas.element_handle(), control.summary.element_handle()])
        control.act(moves[i % 2])
        result = page.evaluate(RESULT)
        if result is None:          # this press drew nothing new within 20 s
            break
        results.append(result)
    control.nb.wait_idle()
    if control.kind in ("toggles", "dropdown") and control.state()["value"] != control.state()["max"]:
        control.act("end")          # the last option: it may reveal another control
        control.nb.wait_idle()
    return results


def p90(values):
    return sorted(values)[math.ceil(0.9 * len(values)) - 1]


def fmt(values):
    if not values:
        return f"{'–':>6} {'–':>6}"
    return f"{statistics.median(values):6.0f} {p90(values):6.0f}"


def ok(values):
    return bool(values) and statistics.median(values) <= TARGET_MS and p90(values) <= TARGET_P90_MS


def load():
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def label(path: pathlib.Path) -> str:
    """05, ja/05, floor; the file's name for any other notebook."""
    if path.stem == FLOOR.stem:
        return "floor"
    edition = "ja/" if path.parent.name == "ja" else ""
    return edition + (path.name[:2] if path.name[:2].isdigit() else path.stem[:20])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    parser.add_argument("--presses", type=int, default=10)
    parser.add_argument("--edition", choices=("en", "ja", "both"), default="both")
    args = parser.parse_args(argv)
    if args.presses < 8:
        parser.error("--presses must be at least 8")
    missing = bs.chromium_missing()
    if missing:
        sys.exit(missing)
    paths = args.notebooks
    if not paths:
        paths = [FLOOR]
        if args.edition in ("en", "both"):
            paths += bs.interactive_notebooks(ROOT / "notebooks")
        if args.edition in ("ja", "both"):
            paths += bs.interactive_notebooks(ROOT / "notebooks" / "ja")
    print(f"start: {load()}", flush=True)

    rows, figures = [], {}          # rows: per control; figures: (notebook, cell) → every press
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
                    for control in nb.controls():
                        state = control.state()
                        if control.canvas is None or state["disabled"] or not state["visible"]:
                            continue
                        res = measure(control, args.presses)
                        px = [r["pixels"] for r in res]
                        sm = [r["summary"] for r in res if r["summary"] is not None]
                        complete = len(px) == args.presses
                        rows.append((label(path), control.name, px, sm, complete))
                        figures.setdefault((label(path), control.info["cell"]), []).extend(px)
                        note = "ok" if complete and ok(px) else (
                            f"press {len(px) + 1} redrew nothing within 20 s" if not complete else "slow")
                        print(f"{label(path):<6} {control.name[:34]:<34} {len(px):>3} {fmt(px)} {fmt(sm)}  "
                              f"{note}   ({load()})", flush=True)
                finally:
                    nb.close()
                    lab.shutdown_kernels()
    print(f"end: {load()}")

    floor = {cell: px for (name, cell), px in figures.items() if name == "floor"}
    floor_px = [v for px in floor.values() for v in px]
    print()
    print("key press → new pixels on the figure canvas, ms (median, p90); 'summary': → new summary line")
    header = f"{'nb':<6} {'control':<34} {'n':>3} {'median':>6} {'p90':>6} {'summary':>13}  verdict"
    print(header)
    print("-" * len(header))
    for name, control, px, sm, complete in rows:
        verdict = "ok" if complete and ok(px) else ("no redraw" if not complete else
                                                    f"> {TARGET_MS:.0f} / {TARGET_P90_MS:.0f} ms")
        print(f"{name:<6} {control[:34]:<34} {len(px):>3} {fmt(px)} {fmt(sm)}  {verdict}")

    print()
    print(f"| dashboard | median (ms) | p90 (ms) | floor: median / p90 (ms) |")
    print("|---|---|---|---|")
    floor_text = f"{statistics.median(floor_px):.0f} / {p90(floor_px):.0f}" if floor_px else "–"
    for (name, cell), px in figures.items():
        if name == "floor" or not px:           # not px: its figure stayed blank (listed in the misses)
            continue
        print(f"| {name} cell {cell} | {statistics.median(px):.0f} | {p90(px):.0f} | {floor_text} |")
    for cell, px in floor.items():
        print(f"| floor (one line, cell {cell}) | {statistics.median(px):.0f} | {p90(px):.0f} | |")
    misses = [f"{name} {control}" for name, control, px, sm, complete in rows if not (complete and ok(px))]
    print(f"target: median ≤ {TARGET_MS:.0f} ms and p90 ≤ {TARGET_P90_MS:.0f} ms key press to pixels; "
          f"missed by: {', '.join(misses) or 'none'}")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
