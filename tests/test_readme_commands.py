"""The README's two quick-start commands are the ones that work.

The lesson command must serve JupyterLab on the notebooks; the test command
must be the one CI runs.
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

ROOT = Path(__file__).resolve().parents[1]


def _quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_has_exactly_two_commands():
    commands = _quick_start_commands()
    assert len(commands) == 2, f"the quick start should have two commands, found {commands}"
    assert commands[0].startswith("pip install -r requirements.txt"), commands[0]
    assert "jupyter lab notebooks" in commands[0], commands[0]
    assert re.fullmatch(r"SIAMLIB_QUICK=1 python -m pytest", commands[1]), commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "export SIAMLIB_QUICK=1" in ci
    assert re.search(r'"\$PY" -m pytest\b', ci), ".ci/run must run `python -m pytest`, the README's test command"
    assert "pip install" in ci and "-r requirements.txt" in ci


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lesson_command_serves_jupyterlab_on_the_notebooks(tmp_path):
    lab_part = _quick_start_commands()[0].split("&&", 1)[1].strip()  # "jupyter lab notebooks/"
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
