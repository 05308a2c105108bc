"""Run time and peak kernel memory of every notebook, each top to bottom in a fresh kernel.

    python bench/notebooks.py [notebooks/03_gamma_beta.ipynb ...] [--repeats 1]

For each notebook (default: every notebooks/NN_*.ipynb): start a new python3 kernel (as
`jupyter nbconvert --execute` or nbval would), execute the cells in order with nbclient
(allow_errors=False, 600 s per cell), and report
  start     seconds to start the kernel and connect to it (not part of the notebook's time)
  run       seconds from the first cell sent to the last cell's reply (the learner's Run All)
  peak MB   the kernel process's peak resident memory (VmHWM in /proc/<pid>/status: the kernel's
            own high-water mark kept by Linux, so no sampling can miss a short peak)
and the whole series' total run time. With --repeats N the median run time over N fresh
kernels is shown (peak memory: the largest).
Targets (issue 5, on a 2-core machine): run ≤ 30 s per notebook, ≤ 3 min in all, ≤ 400 MB.
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
TARGET_RUN_S, TARGET_TOTAL_S, TARGET_MB = 30.0, 180.0, 400.0


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size of a live process, from the kernel's own high-water mark."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc: Linux only")


def run_notebook(path: pathlib.Path) -> dict:
    """Execute one notebook in a fresh kernel; returns start_s, run_s, peak_mb, error."""
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
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

    print(f"{len(paths)} notebooks, each in a fresh python3 kernel, {args.repeats} run(s); "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    header = f"{'notebook':<36} {'start s':>8} {'run s':>8} {'peak MB':>8}  verdict"
    print(header)
    print("-" * len(header))
    total, misses = 0.0, []
    for path in paths:
        runs = [run_notebook(path) for _ in range(args.repeats)]
        run_s = statistics.median(r["run_s"] for r in runs)
        start_s = statistics.median(r["start_s"] for r in runs)
        peak = max(r["peak_mb"] for r in runs)
        error = next((r["error"] for r in runs if r["error"]), None)
        total += run_s
        verdict = []
        if error:
            verdict.append(f"ERROR {error}")
        if run_s > TARGET_RUN_S:
            verdict.append(f"> {TARGET_RUN_S:.0f} s")
        if peak > TARGET_MB:
            verdict.append(f"> {TARGET_MB:.0f} MB")
        if verdict:
            misses.append(path.name)
        print(f"{path.name:<36} {start_s:8.1f} {run_s:8.1f} {peak:8.0f}  "
              f"{'; '.join(verdict) or 'ok'}", flush=True)
    print("-" * len(header))
    print(f"{'whole series (run)':<36} {'':>8} {total:8.1f} {'':>8}  "
          f"{'ok' if total <= TARGET_TOTAL_S else f'> {TARGET_TOTAL_S:.0f} s'}")
    print(f"targets: ≤ {TARGET_RUN_S:.0f} s per notebook, ≤ {TARGET_TOTAL_S:.0f} s in all, "
          f"≤ {TARGET_MB:.0f} MB per kernel; missed by: {', '.join(misses) or 'none'}")
    return 1 if misses or total > TARGET_TOTAL_S else 0


if __name__ == "__main__":
    sys.exit(main())
