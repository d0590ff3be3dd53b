"""A student's first hour (issue 15): without data and offline, lesson 01's first data cell shows one
short message whose first line names the fix, not a long chained traceback."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.mark.slow
def test_lesson01_without_data_shows_a_short_message_that_names_the_fix(tmp_path, monkeypatch):
    nb = nbformat.read(ROOT / "notebooks" / "01_twin_network.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    first_data = next(i for i, c in enumerate(code) if "load_mnist(" in c.source)
    nb.cells = code[: first_data + 1]  # the setup cells and the first cell that loads data
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("SIAMLIB_DATA", str(empty))
    monkeypatch.setenv("SIAMLIB_MIRROR", "http://127.0.0.1:9")  # offline: nothing listens there
    monkeypatch.setenv("SIAMLIB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(CellExecutionError):
        NotebookClient(nb, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    error = next(o for o in nb.cells[-1].outputs if o.output_type == "error")
    shown = [line for line in ANSI.sub("", "\n".join(error.traceback)).splitlines() if line.strip()]
    assert error.ename == "DataNotFoundError", error.ename
    assert len(shown) <= 10, "\n".join(shown)
    assert "MNIST not found" in shown[0] and "SIAMLIB_DATA" in shown[0], shown[0]
    assert not any("Traceback" in line or "During handling" in line for line in shown), "\n".join(shown)
