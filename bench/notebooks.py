"""Run time and peak kernel memory of every notebook, each top to bottom in a fresh kernel.

    python bench/notebooks.py [notebooks/03_gamma_beta.ipynb ...] [--repeats 1] [--edition en|ja|both]
                              [--cores 2,1]

For each notebook (default: every notebooks/NN_*.ipynb and its Japanese twin in notebooks/ja/),
and for each core count (default: both machines' cores, then pinned to one core as on Binder,
which gives a kernel about one CPU): start a new python3 kernel (as
`jupyter nbconvert --execute` or nbval would), execute the cells in order with nbclient
(allow_errors=False, 600 s per cell), and report
  start     seconds to start the kernel and connect to it (not part of the notebook's time)
  run       seconds from the first cell sent to the last cell's reply (the learner's Run All),
            one column per core count (the kernel and its children pinned with sched_setaffinity)
  peak MB   the kernel process's peak resident memory (VmHWM in /proc/<pid>/status: the kernel's
            own high-water mark kept by Linux, so no sampling can miss a short peak)
and the whole series' total run time. With --repeats N the median run time over N fresh
kernels is shown (peak memory: the largest).
Targets: run ≤ 30 s per notebook on 2 cores, ≤ 45 s on one core, ≤ 400 MB.
A benchmark, not a test: numbers depend on the machine and on what else runs on it.
"""
import argparse
import os
import pathlib
import statistics
import sys
import time

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET_RUN_S = {2: 30.0, 1: 45.0}        # per notebook, by cores
TARGET_MB = 400.0


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size of a live process, from the kernel's own high-water mark."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc: Linux only")


def run_notebook(path: pathlib.Path, cores: int = 2) -> dict:
    """Execute one notebook in a fresh kernel on `cores` CPUs; returns start_s, run_s, peak_mb, error."""
    nb = nbformat.read(path, as_version=4)
    km = KernelManager(kernel_name="python3")
    client = NotebookClient(nb, km=km, timeout=600, allow_errors=False, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    result = {"error": None}
    try:
        with client.setup_kernel(cwd=str(path.parent)):
            result["start_s"] = time.perf_counter() - t0
            pid = km.provisioner.pid
            available = sorted(os.sched_getaffinity(0))
            os.sched_setaffinity(pid, set(available[:cores]))    # threads started later inherit it
            t1 = time.perf_counter()
            try:
                for index, cell in enumerate(nb.cells):
                    client.execute_cell(cell, index)
            except CellExecutionError as e:
                result["error"] = f"cell {index}: " + str(e).strip().splitlines()[-1][:120]
            result["run_s"] = time.perf_counter() - t1
            result["peak_mb"] = peak_rss_mb(pid)
    finally:                                    # we own the kernel manager: stop the kernel
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--edition", choices=("en", "ja", "both"), default="both")
    parser.add_argument("--cores", default="2,1", help="core counts to run on, e.g. 2,1 or 1")
    args = parser.parse_args(argv)
    cores = [int(c) for c in args.cores.split(",")]
    folders = {"en": [ROOT / "notebooks"], "ja": [ROOT / "notebooks" / "ja"],
               "both": [ROOT / "notebooks", ROOT / "notebooks" / "ja"]}[args.edition]
    paths = args.notebooks or [p for folder in folders for p in sorted(folder.glob("[0-9][0-9]_*.ipynb"))]
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

    print(f"{len(paths)} notebooks, each in a fresh python3 kernel, {args.repeats} run(s) per core count; "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    runs_header = " ".join(f"{f'run s, {c} CPU':>15}" for c in cores)
    header = f"{'notebook':<40} {'start s':>8} {runs_header} {'peak MB':>8}  verdict"
    print(header)
    print("-" * len(header))
    totals, misses = {c: 0.0 for c in cores}, []
    for path in paths:
        name = str(path.relative_to(ROOT / "notebooks")) if path.is_relative_to(ROOT / "notebooks") else path.name
        runs = {c: [run_notebook(path, c) for _ in range(args.repeats)] for c in cores}
        run_s = {c: statistics.median(r["run_s"] for r in runs[c]) for c in cores}
        start_s = statistics.median(r["start_s"] for rs in runs.values() for r in rs)
        peak = max(r["peak_mb"] for rs in runs.values() for r in rs)
        error = next((r["error"] for rs in runs.values() for r in rs if r["error"]), None)
        verdict = []
        if error:
            verdict.append(f"ERROR {error}")
        for c in cores:
            totals[c] += run_s[c]
            target = TARGET_RUN_S.get(c, TARGET_RUN_S[1])
            if run_s[c] > target:
                verdict.append(f"> {target:.0f} s on {c} core(s)")
        if peak > TARGET_MB:
            verdict.append(f"> {TARGET_MB:.0f} MB")
        if verdict:
            misses.append(name)
        columns = " ".join(f"{run_s[c]:15.1f}" for c in cores)
        print(f"{name:<40} {start_s:8.1f} {columns} {peak:8.0f}  {'; '.join(verdict) or 'ok'}", flush=True)
    print("-" * len(header))
    columns = " ".join(f"{totals[c]:15.1f}" for c in cores)
    print(f"{'all (run)':<40} {'':>8} {columns}")
    targets = ", ".join(f"≤ {TARGET_RUN_S.get(c, TARGET_RUN_S[1]):.0f} s on {c} core(s)" for c in cores)
    print(f"targets per notebook: {targets}, ≤ {TARGET_MB:.0f} MB per kernel; missed by: {', '.join(misses) or 'none'}")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
