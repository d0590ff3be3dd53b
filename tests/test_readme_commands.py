"""The README's two quick-start commands are the ones that work.

The lesson command must serve JupyterLab on the notebooks; the test command
must be the one CI runs, and without data it must stop at once with one clear
message (tests/conftest.py), while ``-m "not mirror"`` still runs the rest.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_has_exactly_two_commands():
    commands = _quick_start_commands()
    assert len(commands) == 2, f"the quick start should have two commands, found {commands}"
    install = [part.strip() for part in commands[0].split("&&")]
    assert install[0].startswith("cd "), f"step 1 starts in the clone: {install}"
    assert "python3 -m venv .venv" in install and ". .venv/bin/activate" in install, install
    assert "pip install -r requirements.txt" in install and install[-1].startswith("jupyter lab notebooks"), install
    assert commands[1] == "pip install -r requirements-dev.txt && SIAMLIB_QUICK=1 python -m pytest", commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "export SIAMLIB_QUICK=1" in ci
    assert re.search(r'"\$PY" -m pytest\b', ci), ".ci/run must run `python -m pytest`, the README's test command"
    assert "pip install" in ci and "-r requirements-dev.txt" in ci
    dev = (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert "-r requirements.txt" in dev, "the test tools come on top of the learners' install"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_lesson_command_serves_jupyterlab_on_the_notebooks(tmp_path):
    lab_part = _quick_start_commands()[0].split("&&")[-1].strip()  # "jupyter lab notebooks/"
    argv = shlex.split(lab_part)
    assert argv[:2] == ["jupyter", "lab"], argv
    port, token = _free_port(), "siamkit-test-token"
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"), JUPYTER_DATA_DIR=str(tmp_path / "data"))
    cmd = [sys.executable, "-m", "jupyterlab", *argv[2:], "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI runs as root; JupyterLab refuses root without this
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, listing = time.time() + 60, None
        while time.time() < deadline and listing is None:
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")[-3000:]
            try:
                url = f"http://127.0.0.1:{port}/api/contents?token={token}"
                listing = json.load(urllib.request.urlopen(url, timeout=2))
            except OSError:
                time.sleep(0.5)
        assert listing is not None, "JupyterLab did not answer within 60 s"
        names = {item["name"] for item in listing["content"]}
        assert "01_twin_network.ipynb" in names, f"the lesson command should serve the notebooks, saw {sorted(names)}"
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10).read().decode()
        assert "JupyterLab" in page
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


# ----------------------------------------------------------------------------- the test command without data
def _pytest_without_data(tmp_path, *args: str, ci: bool = False) -> subprocess.CompletedProcess:
    """``python -m pytest ARGS`` in the checkout with SIAMLIB_DATA pointing at an empty folder."""
    empty = tmp_path / "empty-data"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")}
    env.update(SIAMLIB_DATA=str(empty), SIAMLIB_QUICK="1", SIAMLIB_CACHE=str(tmp_path / "cache"),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=540)


# one cheap unit test and one mirror test, plus a notebook (nbval items need the mirror too)
_SELECTION = ("tests/test_metrics.py", "-k", "lake_error or ipynb or Cell")


def _a_notebook() -> str:
    return str(sorted((ROOT / "notebooks").glob("*.ipynb"))[0].relative_to(ROOT))


@pytest.mark.parametrize("ci", [False, True], ids=["local", "CI=true"])
def test_without_data_the_suite_stops_at_once_with_one_message(tmp_path, ci):
    proc = _pytest_without_data(tmp_path, *_SELECTION, _a_notebook(), ci=ci)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"without data the test command must fail, not pass or skip:\n{out}"
    # it stops after collection: nothing ran, nothing was skipped
    assert not re.search(r"\d+ (passed|failed|skipped|xfailed|errors?)\b", out), out
    error = proc.stderr.strip().splitlines()
    assert error and error[0].startswith("ERROR: No data: MNIST"), f"the first line should name what is missing:\n{out}"
    first = error[0]
    assert str(tmp_path / "empty-data") in first and "Set SIAMLIB_DATA" in first and '-m "not mirror"' in first, first
    assert len(error) <= 10, f"the message should be at most 10 lines, got {len(error)}:\n{proc.stderr}"
    assert len(out.strip().splitlines()) <= 20, f"the whole output should be short:\n{out}"
    assert "test_metrics.py" in proc.stderr and _a_notebook() in proc.stderr, "the message names what needs data"


def test_without_data_not_mirror_runs_the_rest_and_leaves_out_notebooks(tmp_path):
    proc = _pytest_without_data(tmp_path, *_SELECTION, _a_notebook(), "-m", "not mirror")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    summary = out.strip().splitlines()[-1]
    # test_lake_error_hand_value runs; the mirror test and every notebook cell are deselected
    match = re.search(r"(\d+) passed, (\d+) deselected", summary)
    assert match and match.group(1) == "1" and int(match.group(2)) >= 3, summary
    assert "No data" not in out, out
