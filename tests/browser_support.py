"""A learner's view, automated: JupyterLab on 127.0.0.1 driven by Debian's Chromium through
Python Playwright, in a 1280 × 800 window (JupyterLab opens with its file browser, so the output
column is 848 px wide). Used by tests/test_browser.py and bench/slider_latency.py (no pytest here).

    with JupyterLab(root_dir, workdir) as lab, chromium(workdir / "chromium") as browser:
        nb = LabNotebook.open(browser, lab, "03_gamma_beta.ipynb")
        nb.run_all()                       # the Run menu → Run All Cells, then waits for idle
        assert not nb.too_wide()           # every output fits the output column
        for control in nb.controls():      # sliders, toggle buttons, dropdowns, checkboxes
            control.act(+1)                # one step, as a learner would (arrow key, Enter, …)

Traps this module handles (found on a 2-core machine, see shared/README.md §5):
- Debian's /usr/bin/chromium only (never `playwright install`), with the flags in CHROMIUM_FLAGS;
  without the background-networking flags Chromium keeps dialling out of a closed network.
- JupyterLab runs as a subprocess in its own session with isolated config, data, runtime,
  settings and workspace directories; `overrides.json` silences the "Jupyter news" prompt;
  `--allow-root` only when running as root. It serves a COPY of the notebooks, so autosave
  never writes outputs into the committed files.
- On a busy machine the notebook can open before the kernel specs have loaded, and JupyterLab
  then asks "Select Kernel": we accept the preselected kernel, as a learner would.
- Kernel status is read from the notebook toolbar's execution indicator and must stay idle for
  a while, because each slider move (and ipympl's own redraw handshake) briefly makes it busy.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
# JupyterLab settings learners get on Binder (binder/postBuild copies the file); the test
# server uses the same file, so the tests check what learners meet.
LAB_OVERRIDES = json.loads((ROOT / "binder" / "overrides.json").read_text(encoding="utf-8"))
NEWS_PROMPT = "official Jupyter news"           # text of the prompt that must never show

# Generous: the CPU is shared and a notebook may take up to 30 s on its own.
SERVER_START_TIMEOUT = 180
PAGE_TIMEOUT = 180
RUN_ALL_TIMEOUT = 420
MOVE_TIMEOUT = 90


def chromium_missing() -> str | None:
    """None when Debian's Chromium and Python Playwright are usable, else why not."""
    if not os.path.exists(CHROMIUM):
        return (f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) "
                "to run the browser tests (.ci/run does this in CI)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python playwright is not installed: pip install -r requirements-test.txt"
    return None


# ----------------------------------------------------------------------------- notebooks
INTERACTIVE = re.compile(r"\b(Dashboard|\w*Slider|interact(ive)?)\s*\(")


def lesson_modules(source: str) -> list[str]:
    """Names of bnlib.lessons modules a notebook's code imports."""
    names = []
    for m in re.finditer(r"from\s+bnlib\.lessons\s+import\s+(\([^)]*\)|[^\n#;]+)", source):
        names += [n.split()[0] for n in m.group(1).strip("()").split(",") if n.strip()]
    names += re.findall(r"bnlib\.lessons\.(\w+)", source)
    return [n for n in dict.fromkeys(names) if n]


def notebook_code(path: pathlib.Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def has_sliders(path: pathlib.Path, lessons_dir: pathlib.Path = ROOT / "bnlib" / "lessons") -> bool:
    """A notebook has sliders when its code, or a bnlib.lessons module it imports, builds a
    Dashboard, an ipywidgets slider or an `interact`."""
    code = notebook_code(path)
    if INTERACTIVE.search(code):
        return True
    for name in lesson_modules(code):
        module = lessons_dir / f"{name}.py"
        if module.exists() and INTERACTIVE.search(module.read_text(encoding="utf-8")):
            return True
    return False


def interactive_notebooks(folder: pathlib.Path = ROOT / "notebooks") -> list[pathlib.Path]:
    return [p for p in sorted(folder.glob("[0-9][0-9]_*.ipynb")) if has_sliders(p)]


# ----------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """`jupyter lab` on 127.0.0.1 with a random token, serving a copy of `sources`
    (files and folders) from workdir/root. Always stopped by `stop()` / the with-block."""

    def __init__(self, workdir: pathlib.Path, sources=(), python: str = sys.executable,
                 extra_args=()):
        self.workdir = pathlib.Path(workdir)
        self.root = self.workdir / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        for src in map(pathlib.Path, sources):
            if src.is_dir():
                shutil.copytree(src, self.root / src.name, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
            else:
                shutil.copy2(src, self.root / src.name)
        self.python, self.extra_args = python, list(extra_args)
        self.token = uuid.uuid4().hex
        self.port = None
        self.proc = None
        self.log_path = self.workdir / "jupyterlab.log"

    # -- lifecycle
    def start(self):
        cfg = self.workdir / "jupyter"
        settings = cfg / "app-settings"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "overrides.json").write_text(json.dumps(LAB_OVERRIDES, indent=2))
        env = dict(os.environ,
                   JUPYTER_CONFIG_DIR=str(cfg / "config"), JUPYTER_DATA_DIR=str(cfg / "data"),
                   JUPYTER_RUNTIME_DIR=str(cfg / "runtime"),
                   JUPYTERLAB_SETTINGS_DIR=str(cfg / "user-settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(cfg / "workspaces"),
                   IPYTHONDIR=str(cfg / "ipython"), MPLCONFIGDIR=str(cfg / "matplotlib"),
                   PYTHONUNBUFFERED="1")
        env.pop("JUPYTER_TOKEN", None)
        for attempt in range(3):                 # a port taken between probe and bind: retry
            self.port = free_port()
            args = [self.python, "-m", "jupyter", "lab", "--no-browser",
                    "--ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
                    f"--IdentityProvider.token={self.token}",
                    f"--ServerApp.root_dir={self.root}",
                    f"--LabApp.app_settings_dir={settings}",
                    "--ServerApp.open_browser=False",
                    # a server orphaned by a killed test run stops by itself
                    "--ServerApp.shutdown_no_activity_timeout=1800",
                    *self.extra_args]
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                args.append("--allow-root")
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(args, cwd=self.root, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
            log.close()
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError(f"JupyterLab did not start; log:\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                self.api("GET", "/api/status", timeout=5)
                return True
            except (OSError, urllib.error.URLError):
                time.sleep(0.3)
        return False

    def stop(self):
        """Stop the server and its kernels: SIGTERM to its process group, SIGKILL after 30 s."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(Exception):
            self.shutdown_kernels()
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # kernels live in the same process group; make sure none outlives the server
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- helpers
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, notebook: str) -> str:
        # ?reset: a fresh workspace, so no tab from an earlier test is restored
        return f"{self.base_url}/lab/tree/{notebook}?reset&token={self.token}"

    def api(self, method: str, path: str, timeout: float = 30):
        req = urllib.request.Request(self.base_url + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self):
        for session in self.api("GET", "/api/sessions") or []:
            with contextlib.suppress(Exception):
                self.api("DELETE", f"/api/sessions/{session['id']}")
        for kernel in self.api("GET", "/api/kernels") or []:
            with contextlib.suppress(Exception):
                self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def kernel_pids(self) -> list[int]:
        """Process ids of the server's kernels (children of the server), newest last."""
        import psutil
        server = psutil.Process(self.proc.pid)
        kids = [p for p in server.children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]
        return [p.pid for p in sorted(kids, key=lambda p: p.create_time())]

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


# ----------------------------------------------------------------------------- the browser
# What ipympl does with its canvases, for the message of a failure: every clearRect and drawImage
# (on a figure's view, or on a canvas outside the page: the offscreen copy the views draw from)
# and every PNG frame received, the last 400. ipympl keeps its state out of reach; this is what
# can be seen of it.
JS_CANVAS_LOG = """(() => {
  if (window.__bnlibCanvasLog) return;
  const log = window.__bnlibCanvasLog = [], ids = new WeakMap();
  const id = window.__bnlibCanvasId = c => { if (!ids.has(c)) ids.set(c, ++id.count); return ids.get(c); };
  id.count = 0;
  const note = line => { log.push(`${Math.round(performance.now())} ms ${line}`); if (log.length > 400) log.shift(); };
  const name = c => `#${id(c)} ${c.width}×${c.height}${c.isConnected ? '' : ' detached'}`;
  const proto = CanvasRenderingContext2D.prototype, draw = proto.drawImage, clear = proto.clearRect;
  proto.drawImage = function (src, ...rest) {
    note(`draw on ${name(this.canvas)} from ` + (src instanceof HTMLCanvasElement ? name(src)
      : `image ${src.naturalWidth}×${src.naturalHeight}${src.complete ? '' : ' not loaded'}`));
    return draw.call(this, src, ...rest); };
  proto.clearRect = function (...args) { note(`clear ${name(this.canvas)}`); return clear.apply(this, args); };
  const objectURL = URL.createObjectURL;
  URL.createObjectURL = function (blob) { note(`frame of ${blob.size} bytes`); return objectURL.call(this, blob); };
})()"""


@contextlib.contextmanager
def chromium(user_data_dir: pathlib.Path, width: int = 1280, height: int = 800):
    """A headless persistent Chromium context (Debian's binary); always closed."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": width, "height": height}, timeout=PAGE_TIMEOUT * 1000)
        context.set_default_timeout(PAGE_TIMEOUT * 1000)
        context.add_init_script(JS_CANVAS_LOG)
        try:
            yield context
        finally:
            context.close()


JS_IDLE = """() => {
  const ind = [...document.querySelectorAll('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator')];
  const names = [...document.querySelectorAll('.jp-NotebookPanel .jp-KernelName')]
    .map(e => e.textContent.trim());
  const idle = ind.length > 0 && ind.every(e => e.dataset.status === 'idle')
    && names.length > 0 && names.every(n => n && n !== 'No Kernel');
  const now = performance.now();
  if (!idle) { window.__bnlibIdleSince = null; return false; }
  if (window.__bnlibIdleSince == null) window.__bnlibIdleSince = now;
  return now - window.__bnlibIdleSince >= %d;
}"""

JS_PROMPTS = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')]
  .map(c => (c.querySelector('.jp-InputArea-prompt') || {}).textContent || '')"""

JS_RUN_FINISHED = """() => {
  const p = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
    .map(e => e.textContent);
  return p.length > 0 && !p.some(t => t.includes('*')) && p.some(t => /\\[\\d+\\]/.test(t));
}"""

# Every control on the page: slider handles, toggle buttons (one group or one button), dropdowns
# and checkboxes, in page order. Each gets a data-bnlib-control attribute to find it again.
CONTROL_SELECTOR = (".jp-Notebook [role=slider], .jp-Notebook .widget-toggle-buttons, "
                    ".jp-Notebook button.widget-toggle-button, .jp-Notebook .widget-dropdown select, "
                    ".jp-Notebook .widget-checkbox input[type=checkbox]")

# The state of one control element, whatever its kind (the same function in every call below).
JS_STATE = """el => { const st = (el => {
  const kind = el.getAttribute('role') === 'slider' ? 'slider'
    : el.classList.contains('widget-toggle-buttons') ? 'toggles'
    : el.tagName === 'BUTTON' ? 'toggle' : el.tagName === 'SELECT' ? 'dropdown' : 'checkbox';
  const text = e => (e ? e.textContent.trim() : '');
  if (kind === 'slider') {
    const box = el.closest('.widget-slider') || el.parentElement;
    const r = box && box.querySelector('.widget-readout');
    const target = el.closest('.noUi-target');
    return {kind, value: parseFloat(el.getAttribute('aria-valuenow')),
            min: parseFloat(el.getAttribute('aria-valuemin')), max: parseFloat(el.getAttribute('aria-valuemax')),
            readout: r ? text(r) : null, key: el.getAttribute('aria-valuenow') + '|' + (r ? text(r) : ''),
            disabled: !!(target && target.hasAttribute('disabled'))
                      || !!(box && box.querySelector('.widget-readout[contenteditable=false]'))};
  }
  if (kind === 'toggles') {
    const buttons = [...el.querySelectorAll('button')];
    const i = buttons.findIndex(b => b.classList.contains('mod-active'));
    return {kind, value: i, min: 0, max: buttons.length - 1, readout: i >= 0 ? text(buttons[i]) : null,
            key: String(i), disabled: buttons.every(b => b.disabled)};
  }
  if (kind === 'toggle') {
    const on = el.classList.contains('mod-active');
    return {kind, value: on ? 1 : 0, min: 0, max: 1, readout: text(el), key: String(on), disabled: el.disabled};
  }
  if (kind === 'dropdown')
    return {kind, value: el.selectedIndex, min: 0, max: el.options.length - 1,
            readout: el.selectedIndex >= 0 ? text(el.options[el.selectedIndex]) : null,
            key: String(el.selectedIndex), disabled: el.disabled};
  return {kind, value: el.checked ? 1 : 0, min: 0, max: 1, readout: String(el.checked), key: String(el.checked),
          disabled: el.disabled};
  })(el);
  st.visible = el.checkVisibility();        // a control can hide itself (08: G only for GroupNorm)
  return st;
}"""

JS_CONTROLS = """() => {
  const state = %s;
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')];
  return [...document.querySelectorAll(%r)]
    .filter(el => !(el.tagName === 'BUTTON' && el.closest('.widget-toggle-buttons')))
    .map((el, i) => {
      el.setAttribute('data-bnlib-control', String(i));
      const summary = (() => { for (let e = el.parentElement; e; e = e.parentElement) {
          if (e.classList.contains('jp-OutputArea-output')) return null;
          const s = e.querySelector(':scope > .bnlib-summary'); if (s) return s; } return null; })();
      const box = el.closest('.widget-slider, .widget-toggle-buttons, .widget-dropdown, .widget-checkbox') || el;
      const label = box.querySelector(':scope > .widget-label, :scope label');
      const st = state(el);
      return {index: i, kind: st.kind, cell: cells.indexOf(el.closest('.jp-CodeCell')), dashboard: !!summary,
              disabled: st.disabled, label: label ? label.textContent.trim() : (st.kind === 'toggle' ? st.readout : ''),
              readout: st.readout, value: st.value, min: st.min, max: st.max};
    });
}""" % (JS_STATE, CONTROL_SELECTOR)

# Keys a learner presses to move each kind of control one step (+1, −1) or to its end.
KEYS = {"slider": {+1: "ArrowRight", -1: "ArrowLeft", "end": "End", "home": "Home"}}


class FigureStaysBlank(AssertionError):
    """A dashboard's figure showed no picture once scrolled into view."""


class Control:
    """One control on the page (slider, toggle buttons, toggle button, dropdown, checkbox), with
    its dashboard (if any): summary line and canvas. Moves are what a learner does: arrow keys on
    a slider handle, Enter on a button, Space on a checkbox, picking an option of a dropdown."""

    def __init__(self, nb: "LabNotebook", info: dict):
        self.nb, self.info = nb, info
        page = nb.page
        self.handle = page.locator(f'[data-bnlib-control="{info["index"]}"]')
        self.box = self.handle.locator(
            "xpath=ancestor-or-self::div[contains(@class,'widget-slider') or contains(@class,'widget-toggle-buttons')"
            " or contains(@class,'widget-dropdown') or contains(@class,'widget-checkbox')][1]")
        if info["kind"] == "toggle":
            self.box = self.handle
        self.output = self.handle.locator(
            "xpath=ancestor::div[contains(@class,'jp-OutputArea-output')][1]")
        if info["dashboard"]:
            # the Dashboard's VBox: the nearest ancestor holding the summary line
            self.root = self.handle.locator(
                "xpath=ancestor::div[./div[contains(@class,'bnlib-summary')]][1]")
            self.summary = self.root.locator(":scope > .bnlib-summary")
            self.canvas = self.root.locator(".jupyter-matplotlib-canvas-div canvas").first
        else:
            self.root, self.summary, self.canvas = self.output, None, None

    @property
    def kind(self) -> str:
        return self.info["kind"]

    @property
    def name(self) -> str:
        label = self.info["label"] or f"slider {self.info['index']}"
        return f"cell {self.info['cell']} · {label}"

    # -- what the learner sees
    def state(self) -> dict:
        """kind, value (a slider's position; the index of the chosen button or option; 0/1 for
        a toggle or checkbox), min, max, readout (the text the learner reads), key (changes
        whenever the control moved), disabled, visible."""
        return self.handle.evaluate(JS_STATE)

    def summary_text(self) -> str | None:
        # textContent, not innerText: JupyterLab skips layout of cells scrolled out of view
        return self.summary.text_content().strip() if self.summary is not None else None

    def bring_into_view(self):
        """Scroll the control's output into view and wait until its figure has pixels (ipympl
        sizes a canvas once its view is laid out)."""
        self.root.scroll_into_view_if_needed()
        self.handle.scroll_into_view_if_needed()
        if self.canvas is None:
            return
        # a canvas scrolled into view is sized first and painted a moment later: wait for
        # pixels that are not all one colour, then until two reads agree
        try:
            self.canvas.evaluate("""c => new Promise((res, rej) => { const t0 = performance.now();
              (function poll() {
                const lost = c.getContext('2d').isContextLost?.() ? ', its 2-D context lost' : '';
                let seen = `a ${c.width} × ${c.height} canvas${lost}`;
                if (c.width > 0 && c.height > 0) {
                  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  for (let i = 4; i < d.length; i += 4)
                    if (d[i] !== d[0] || d[i+1] !== d[1] || d[i+2] !== d[2] || d[i+3] !== d[3])
                      return res(true);
                  seen += `, every pixel rgba(${d.slice(0, 4).join(', ')})`;
                }
                if (performance.now() - t0 > %d) return rej(new Error(seen));
                setTimeout(poll, 50); })(); })""" % (MOVE_TIMEOUT * 1000))
        except Exception as e:     # what the learner would see, and what ipympl did before
            me, parts, calls = self.canvas.evaluate("""c => {
              const me = `#${window.__bnlibCanvasId(c)} `, fig = c.closest('.jupyter-matplotlib-figure');
              // ipympl renders a figure's view in steps (canvas, toolbar, footer): which ones exist
              const parts = ['canvas-container', 'toolbar', 'footer'].filter(p => fig && fig.querySelector(`.jupyter-matplotlib-${p}`));
              return [me, parts.join(', '), window.__bnlibCanvasLog.filter(
                l => l.includes(me) || l.includes(' detached') || l.includes(' frame of ')).slice(-80)]; }""")
            raise FigureStaysBlank(f"{self.name}: the figure stays blank ({e}); this canvas is {me}"
                                   f"(view parts: {parts}), the page's last canvas calls:\n"
                                   + "\n".join(calls)) from e
        previous, deadline = None, time.monotonic() + MOVE_TIMEOUT
        while time.monotonic() < deadline:
            current = self.picture()
            if current == previous:
                return
            previous = current
            time.sleep(0.3)

    def picture(self) -> bytes:
        """The figure's pixels: the PNG of the ipympl canvas the learner sees (read from the
        canvas itself, so no toolbar, tooltip or scroll position can cover or shift it). For
        a slider outside a Dashboard: a screenshot of its whole output, the slider masked."""
        if self.canvas is not None:
            url = self.canvas.evaluate("c => c.toDataURL('image/png')")
            return base64.b64decode(url.split(",", 1)[1])
        self.nb.page.mouse.move(0, 0)            # no hover effects
        return self.output.screenshot(animations="disabled", mask=[self.box],
                                      timeout=MOVE_TIMEOUT * 1000)

    # -- acting
    def press(self, key: str):
        """Focus the control and press a key (ArrowRight, ArrowLeft, Home, End, Enter, Space …)."""
        self.handle.scroll_into_view_if_needed()
        self.handle.focus()
        self.nb.page.keyboard.press(key)

    def act(self, move):
        """Move the control as a learner would: move = +1 / −1 (one step up or down) or
        "end" / "home" (to the last or first value). Toggles and checkboxes flip."""
        kind = self.kind
        if kind == "slider":
            return self.press(KEYS["slider"][move])
        if kind in ("toggle", "checkbox"):
            return self.press("Enter" if kind == "toggle" else "Space")
        st = self.state()
        target = {"end": st["max"], "home": st["min"]}.get(move, st["value"] + (move if move in (1, -1) else 0))
        target = int(min(max(target, st["min"]), st["max"]))
        if kind == "toggles":
            button = self.handle.locator("button").nth(target)
            button.scroll_into_view_if_needed()
            button.focus()
            self.nb.page.keyboard.press("Enter")
        else:                                     # dropdown: pick the option (Chromium's closed
            self.handle.scroll_into_view_if_needed()      # <select> ignores the arrow keys headless)
            self.handle.select_option(index=target)

    def move(self, move, before: dict) -> dict:
        """Act (see `act`; a key name is pressed as such) and wait until the control, the summary
        and the picture have all changed from `before` (a dict from `snapshot()`) and the kernel
        is idle again. Returns the new snapshot; raises AssertionError naming what did not change."""
        if isinstance(move, str) and move not in ("end", "home"):
            self.press(move)
        else:
            self.act(move)
        deadline = time.monotonic() + MOVE_TIMEOUT
        try:      # the control moved: its position, its readout, the chosen button or option
            self.handle.evaluate("""(el, old) => new Promise((res, rej) => {
              const state = %s;
              const t0 = performance.now();
              (function poll() {
                if (state(el).key !== old) return res(true);
                if (performance.now() - t0 > 15000) return rej(new Error('timeout'));
                setTimeout(poll, 20); })(); })""" % JS_STATE, before["key"])
        except Exception as e:
            raise AssertionError(f"{self.name}: {move} did not move the control "
                                 f"(still {before['readout']})") from e
        if self.summary is not None:
            try:
                self.summary.evaluate("""(el, old) => new Promise((res, rej) => {
                  const t0 = performance.now();
                  (function poll() { if (el.textContent.trim() !== old) return res(true);
                    if (performance.now() - t0 > %d) return rej(new Error('timeout'));
                    setTimeout(poll, 25); })(); })""" % (MOVE_TIMEOUT * 1000), before["summary"])
            except Exception as e:
                raise AssertionError(f"{self.name}: after {move} the summary line did not change "
                                     f"from {before['summary']!r}") from e
        self.nb.wait_idle(timeout=max(5.0, deadline - time.monotonic()))
        # the new picture arrives after the summary (ipympl's draw round trip): poll for it,
        # then take it once more to be sure it is the settled one
        picture = self.picture()
        while not self._changed(picture, before["picture"]) and time.monotonic() < deadline:
            time.sleep(0.2)
            picture = self.picture()
        if not self._changed(picture, before["picture"]):
            what = "figure's pixels" if self.canvas is not None else "output"
            raise AssertionError(f"{self.name}: after {move} the {what} did not change")
        self.nb.wait_idle(timeout=max(5.0, deadline - time.monotonic()))
        return self.snapshot(picture=self.picture())

    @staticmethod
    def _changed(now: bytes, before: bytes) -> bool:
        return now != before and pixel_difference(now, before) != 0

    def snapshot(self, picture: bytes | None = None) -> dict:
        self.bring_into_view()
        st = self.state()
        return {"value": st["value"], "min": st["min"], "max": st["max"], "readout": st["readout"],
                "key": st["key"], "aria": st["key"], "summary": self.summary_text(),
                "picture": picture if picture is not None else self.picture()}


JS_TOO_WIDE = """async () => {
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')];
  const frame = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const problems = [];
  const where = (o, e) => `code cell ${cells.indexOf(o.closest('.jp-CodeCell'))}: ${e.tagName.toLowerCase()}`
    + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\\s+/).slice(0, 2).join('.') : '');
  for (const o of document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')) {
    o.scrollIntoView({block: 'center'});
    await frame();
    if (!o.checkVisibility()) continue;
    const box = o.getBoundingClientRect();
    if (box.width === 0) continue;
    for (const f of o.querySelectorAll('canvas, img, svg')) {
      if (!f.checkVisibility()) continue;
      const r = f.getBoundingClientRect();
      const natural = f.tagName === 'IMG' ? f.naturalWidth : r.width;
      if (natural > box.width + 1 || r.right > box.right + 1)
        problems.push(`${where(o, f)} is ${Math.round(natural)} px wide, the output area ${Math.round(box.width)} px`);
    }
    for (const e of [o, ...o.querySelectorAll('*')]) {
      if (!e.checkVisibility() || e.tagName === 'CANVAS' || e.tagName === 'IMG') continue;
      const r = e.getBoundingClientRect();
      if (r.width > 0 && r.right > box.right + 1) {
        problems.push(`${where(o, e)} reaches ${Math.round(r.right - box.right)} px past the output area`);
        continue;
      }
      const ox = getComputedStyle(e).overflowX;
      if (ox !== 'visible' && e.scrollWidth > e.clientWidth + 1)
        problems.push(`${where(o, e)} is cut off or scrolls sideways (${e.scrollWidth} px of content in ${e.clientWidth} px)`);
    }
  }
  return [...new Set(problems)];
}"""


class LabNotebook:
    """One notebook open in its own JupyterLab tab."""

    def __init__(self, page, lab: JupyterLab, name: str):
        self.page, self.lab, self.name = page, lab, name
        self.console_errors: list[str] = []
        page.on("console", lambda m: self.console_errors.append(m.text)
                if m.type == "error" else None)

    @classmethod
    def open(cls, browser, lab: JupyterLab, name: str) -> "LabNotebook":
        page = browser.new_page()
        nb = cls(page, lab, name)
        page.goto(lab.url(name), wait_until="domcontentloaded", timeout=PAGE_TIMEOUT * 1000)
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=PAGE_TIMEOUT * 1000)
        nb.wait_kernel_ready()
        return nb

    def close(self):
        with contextlib.suppress(Exception):
            self.page.close()

    # -- kernel state
    def _accept_kernel_dialog(self) -> bool:
        dialog = self.page.locator(".jp-Dialog")
        if dialog.count() and "Select Kernel" in dialog.first.inner_text():
            dialog.first.locator(".jp-Dialog-button.jp-mod-accept").click()
            return True
        return False

    def wait_kernel_ready(self, timeout: float = PAGE_TIMEOUT):
        """Wait for the notebook's kernel to start and go idle (accepting the kernel dialog)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._accept_kernel_dialog()
            if self.page.evaluate(JS_IDLE % 300):
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name}: the kernel did not become idle in {timeout:.0f} s "
                           f"(server log:\n{self.lab.log_tail(20)})")

    def wait_idle(self, timeout: float = MOVE_TIMEOUT, settle_ms: int = 600):
        """Wait until the kernel has been idle for `settle_ms` without a break."""
        self.page.evaluate("() => { window.__bnlibIdleSince = null; }")
        self.page.wait_for_function(JS_IDLE % settle_ms, polling=50, timeout=timeout * 1000)

    # -- running
    def run_all(self, timeout: float = RUN_ALL_TIMEOUT):
        """Run → Run All Cells from the menu bar, then wait until no cell is queued or running
        and the kernel is idle."""
        self.page.locator(".jp-NotebookPanel .jp-Notebook").first.click(position={"x": 5, "y": 5})
        self.page.get_by_role("menuitem", name="Run", exact=True).click()
        self.page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        self.page.wait_for_function(JS_RUN_FINISHED, polling=200, timeout=timeout * 1000)
        self.wait_idle(timeout=timeout)

    def prompts(self) -> list[str]:
        return self.page.evaluate(JS_PROMPTS)

    def widget_errors(self) -> list[str]:
        """Outputs where ipywidgets reports a widget it could not display."""
        return self.page.evaluate("""() => [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')]
          .filter(e => e.textContent.trim().startsWith('Error displaying widget')
                       || e.querySelector('.jupyter-widgets-error-widget'))
          .map(e => e.textContent.trim().slice(0, 300))""")

    def visible_static_figures(self) -> int:
        """Still pictures (Dashboard's fallback for static pages) the live page still shows:
        where the widget renders they must hide, or the learner sees every figure twice."""
        return self.page.evaluate("""() => [...document.querySelectorAll('.jp-Notebook .bnlib-static-figure')]
          .filter(e => e.checkVisibility ? e.checkVisibility() : e.getClientRects().length > 0).length""")

    def wait_widgets_rendered(self, timeout: float = PAGE_TIMEOUT):
        """Wait until no output still reads 'Loading widget...'."""
        self.page.wait_for_function("""() => ![...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')]
          .some(e => e.textContent.trim().startsWith('Loading widget'))""", polling=200,
                                    timeout=timeout * 1000)

    def output_text(self) -> str:
        """All text in the notebook's outputs (not in its markdown, which may quote errors)."""
        return self.page.evaluate("""() => [...document.querySelectorAll('.jp-Notebook .jp-OutputArea')]
          .map(e => e.textContent).join('\\n')""")

    def page_text(self) -> str:
        return self.page.evaluate("() => document.body.textContent")

    def save(self, timeout: float = 60) -> dict:
        """Save (Ctrl+S) and return the saved notebook as JSON (outputs included)."""
        path = self.lab.root / self.name
        before = path.stat().st_mtime_ns
        self.page.locator(".jp-NotebookPanel .jp-Notebook").first.click(position={"x": 5, "y": 5})
        self.page.keyboard.press("Control+s")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.stat().st_mtime_ns != before:
                with contextlib.suppress(json.JSONDecodeError):
                    nb = json.loads(path.read_text(encoding="utf-8"))
                    if any(c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code"):
                        return nb
            time.sleep(0.2)
        raise TimeoutError(f"{self.name}: saving did not write executed cells in {timeout} s")

    def controls(self) -> list[Control]:
        """Every control on the page (sliders, toggle buttons, dropdowns, checkboxes), hidden
        ones too (a control may show when another one moves: check `state()["visible"]`)."""
        return [Control(self, info) for info in self.page.evaluate(JS_CONTROLS)]

    def too_wide(self) -> list[str]:
        """What does not fit the output column, as sentences: a figure, canvas or image wider
        than its output area (an image by its own pixel width, even if the browser shrinks it to
        fit), or anything in an output reaching past the area's right edge or clipped/scrolled
        sideways (a summary line cut off, an HBox of controls too wide). Each output is scrolled
        into view first, as JupyterLab skips laying out cells out of view."""
        return self.page.evaluate(JS_TOO_WIDE)


def unexecuted_cells(nb_json: dict) -> list[int]:
    """Code cells of a saved notebook that have no execution count. Read from the saved file, not
    from the page: a cell whose source is collapsed (the self-checks) shows no prompt there."""
    code = [c for c in nb_json["cells"] if c["cell_type"] == "code"]
    return [i for i, cell in enumerate(code) if not cell.get("execution_count")]


def error_outputs(nb_json: dict) -> list[str]:
    """'cell i: Ename: evalue' for every error output in a saved notebook."""
    errors = []
    code = [c for c in nb_json["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(code):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append(f"code cell {i}: {out.get('ename')}: {out.get('evalue')}")
    return errors


# ----------------------------------------------------------------------------- matching
def pixel_difference(a: bytes, b: bytes, level: int = 16) -> int:
    """How many pixels of two PNGs differ by more than `level` (of 255) in some channel;
    -1 when their sizes differ. ipympl composites partial ("diff") images, so a figure drawn
    twice for the same value may differ in a few pixels by a level or two."""
    import io

    import numpy as np
    from PIL import Image
    x, y = (np.asarray(Image.open(io.BytesIO(p)).convert("RGBA"), dtype=np.int16) for p in (a, b))
    if x.shape != y.shape:
        return -1
    return int((np.abs(x - y).max(axis=2) > level).sum())


NUMBER = re.compile(r"[-+−]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+−]?\d+)?%?")


def numbers_in(text: str) -> list[tuple[float, float]]:
    """(value, half a unit in its last shown digit) for each number written in `text`;
    '1,000' is 1000, '−3' is -3, '50%' gives both 50 and 0.5."""
    found = []
    for m in NUMBER.finditer(text):
        s = m.group().replace("−", "-").replace(",", "")
        pct = s.endswith("%")
        s = s.rstrip("%")
        try:
            v = float(s)
        except ValueError:
            continue
        mant, _, exp = s.lower().partition("e")
        decimals = len(mant.split(".")[1]) if "." in mant else 0
        half = 0.5 * 10.0 ** (-decimals + (int(exp) if exp else 0))
        found.append((v, half))
        if pct:
            found.append((v / 100, half / 100))
    return found


def shows_value(summary: str, readout: str | None, value: float) -> bool:
    """Does the summary line state the slider's value? The readout (what the learner reads
    beside the slider) is matched as text first, then as a number, allowing for either of them
    rounding it to fewer digits."""
    if readout and readout in summary:
        return True
    words = re.findall(r"[^\W\d_]\w*", readout or "")
    if readout and not numbers_in(readout) and words:       # a label such as 'None (cumulative)'
        return all(re.search(rf"(?i)\b{re.escape(w)}", summary) for w in words)
    targets = numbers_in(readout or "") or [(value, 0.0)]
    for target, half_t in targets:
        for v, half in numbers_in(summary):
            if abs(v - target) <= half + half_t + 1e-12 * max(1.0, abs(target)):
                return True
    return False
