"""Run lessons in full mode and store them the way the kit ships them.

    python tools/run_lessons.py notebooks/04_train_mnist.ipynb [...] [--quick]

For each notebook: execute it top to bottom (full mode unless --quick, a fresh
cache so nothing is loaded from an earlier run), time it, drop progress-bar
outputs (a reader on GitHub would see their text fallback, " 0%|"), write the
full-run time into the header line, and refuse to save outputs that show a
machine path. Data comes from SIAMLIB_DATA, as for the tests.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HEADER = re.compile(r"^\*\*Full run:\*\*.*$", re.M)
MACHINE_PATHS = ("/tmp/", "/work/", "/root/", "/home/", "/Users/")
PROGRESS = re.compile(r"\d+%\|| 0it \[|it/s\]|s/it\]")


def _is_progress(output) -> bool:
    data = output.get("data", {})
    text = output.get("text", "") if output.get("output_type") == "stream" else data.get("text/plain", "")
    widget = "application/vnd.jupyter.widget-view+json" in data
    return bool(PROGRESS.search(text)) and (widget or output.get("name") == "stderr")


def clean(nb) -> list[str]:
    """Drop progress bars; return the machine paths still shown (a caller refuses to save those)."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        cell.outputs = [o for o in cell.outputs if not _is_progress(o)]
        for o in cell.outputs:
            text = o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
            problems += [f"cell {i}: {p}" for p in MACHINE_PATHS if p in text]
    nb.metadata.pop("widgets", None)
    return problems


def set_header(nb, minutes: float) -> None:
    threads = os.environ.get("OMP_NUM_THREADS") or os.cpu_count()
    load = open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"
    line = (f"**Full run:** {minutes:.1f} min on a 2-core CPU ({threads} thread(s); a shared machine, load average "
            f"{load} at the end; no GPU measured yet); CI runs it in quick mode (`SIAMLIB_QUICK=1`).")
    first = next(c for c in nb.cells if c.cell_type == "markdown")
    first.source = HEADER.sub(line, first.source) if HEADER.search(first.source) else first.source + "\n\n" + line


def run(path: Path, quick: bool) -> float:
    nb = nbformat.read(path, as_version=4)
    env = {k: v for k, v in os.environ.items() if k != "SIAMLIB_QUICK"}
    if quick:
        env["SIAMLIB_QUICK"] = "1"
    with tempfile.TemporaryDirectory(prefix="siamkit-run-") as cache:
        env["SIAMLIB_CACHE"] = cache
        old = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            start = time.perf_counter()
            NotebookClient(nb, timeout=None, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            minutes = (time.perf_counter() - start) / 60
        finally:
            os.environ.clear()
            os.environ.update(old)
    problems = clean(nb)
    if problems:
        raise SystemExit(f"{path.name}: outputs show machine paths, not saved: {problems[:5]}")
    if not quick:
        set_header(nb, minutes)
    nbformat.write(nb, path)
    return minutes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--quick", action="store_true", help="quick mode (sizes for CI); the header is not changed")
    args = parser.parse_args()
    if not os.environ.get("SIAMLIB_DATA"):
        sys.exit("set SIAMLIB_DATA to the data folder first (see README, 'No internet?')")
    for path in args.notebooks:
        print(f"{path.name}: {run(path, args.quick):.1f} min", flush=True)


if __name__ == "__main__":
    main()
