"""What a reader of the stored lessons sees: outputs from a full run, no machine paths, no
progress-bar text fallbacks, no stored errors, and a header that says how long a full run takes."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MACHINE_PATHS = ("/tmp/", "/work/", "/root/", "/home/", "/Users/", "site-packages")
PROGRESS = re.compile(r"\d+%\||\b0it \[|it/s\]")


def _outputs_text(nb: dict) -> list[tuple[int, str]]:
    out = []
    for i, cell in enumerate(nb["cells"]):
        for o in cell.get("outputs", []):
            text = "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
            out.append((i, text))
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_are_clean(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert any(c.get("outputs") for c in code), f"{path.name} is stored without outputs"
    errors = [i for i, c in enumerate(nb["cells"]) for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == [], f"{path.name}: cells {errors} store an error"
    for i, text in _outputs_text(nb):
        shown = [p for p in MACHINE_PATHS if p in text]
        assert not shown, f"{path.name} cell {i} shows a machine path {shown}: {text[:200]!r}"
        assert not PROGRESS.search(text), f"{path.name} cell {i} stores progress-bar text: {text[:200]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_header_states_the_full_run_time(path):
    first = next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown")
    assert re.search(r"\*\*Full run:\*\* \d+(\.\d)? min on a 2-core CPU", "".join(first["source"])), (
        f"{path.name}: the first markdown cell must say how long a full run takes (tools/run_lessons.py writes it)")


def test_the_scan_can_fail():
    bad = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "stream", "text": "saved to /tmp/x 0%|"}]}]}
    texts = _outputs_text(bad)
    assert any(p in texts[0][1] for p in MACHINE_PATHS) and PROGRESS.search(texts[0][1])
