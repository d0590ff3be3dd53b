"""A real browser drives lesson 05 in a real JupyterLab and scrubs the explorer's epoch slider.

Starts JupyterLab on 127.0.0.1 (a free port, a token, temporary settings,
workspace and runtime folders, serving a temporary copy of the notebook so the
lesson itself is never autosaved over), opens lesson 05 in Debian's Chromium
through Playwright (no browser download), and then, step by step, each step
reading what JupyterLab itself reports (its app object, exposed with
``expose_app_in_browser``):

1. waits until the notebook's session context is ready and its kernel is
   connected and idle (what the toolbar shows as "Kernel status: Idle");
2. clears the stored outputs (so every execution count is empty) and runs all
   cells; checks that the run really started (a prompt shows ``*`` or a number)
   and runs all cells once more if it did not;
3. waits until every code cell has an execution count and the kernel is idle
   again (a cell that raised ends the test with that cell's error: a missing or
   unreadable dataset is reported as a data problem naming ``SIAMLIB_DATA``);
4. only then moves the explorer's epoch slider with the keyboard (while later
   cells still run, the kernel would queue the widget's message behind them) and
   asserts that the slider moved and that the figure the widget shows changed.

Every wait is bounded, and all of them together by ``BUDGET_S``. Screenshots go
to ``artifacts/`` (``SIAMLIB_ARTIFACTS`` overrides). Under CI a missing
Chromium or Playwright is a failure, not a skip.

Run it alone with ``python -m pytest -m browser tests/test_browser.py``; leave it
out with ``-m "not slow"``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from siamlib import config

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "notebooks" / "05_explore_embeddings.ipynb"
CHROMIUM = Path(os.environ.get("SIAMLIB_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("SIAMLIB_ARTIFACTS", ROOT / "artifacts"))
# Each phase has its own cap; all of them together, from the browser's start, have BUDGET_S.
# Lesson 05 runs in about 1 min in quick mode on two idle cores and in about 2 min with both kept busy.
BUDGET_S = 360
LAB_START_S = 90          # JupyterLab answers its REST API (in the fixture, before the budget starts)
KERNEL_READY_S = 90       # page loaded, session ready, kernel connected and idle
RUN_START_S = 20          # after "run all", a prompt shows "*" or a number
RUN_ALL_S = 300           # every code cell executed
REDRAW_S = 60             # the figure changes after the slider moves
DATA_ERRORS = ("DataNotFoundError", "FileNotFoundError", "DownloadError", "ChecksumError")

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.mirror,
              pytest.mark.timeout(LAB_START_S + BUDGET_S + 60)]

# What JupyterLab reports about the open notebook, read from its own app object.
_STATE_JS = """(name) => {
  const app = window.jupyterapp;
  if (!app) return {stage: "JupyterLab app not loaded"};
  const panel = Array.from(app.shell.widgets("main")).find(w => w.context && w.context.path === name);
  if (!panel) return {stage: "notebook not open"};
  const sc = panel.sessionContext;
  const kernel = sc && sc.session ? sc.session.kernel : null;
  const cells = [];
  panel.content.widgets.forEach((cell, i) => {
    if (cell.model.type !== "code") return;
    const prompt = cell.node.querySelector(".jp-InputPrompt");
    const err = cell.model.outputs.toJSON().find(o => o.output_type === "error");
    cells.push({index: i, count: cell.model.executionCount,
                prompt: prompt ? prompt.textContent.trim() : "",
                error: err ? {ename: err.ename, evalue: String(err.evalue)} : null});
  });
  return {stage: "open", ready: Boolean(panel.context.isReady && sc.isReady && !sc.isTerminating && !sc.isRestarting),
          kernel: kernel ? {status: kernel.status, connection: kernel.connectionStatus} : null,
          indicator: (document.querySelector(".jp-Notebook-ExecutionIndicator") || {dataset: {}}).dataset.status || null,
          cells: cells};
}"""

# Run a command of JupyterLab's on the notebook (the same commands as its menus). With wait=false
# it returns at once (run-all's promise settles only when the last cell is done) and records the outcome.
_COMMAND_JS = """async ([name, command, wait]) => {
  const app = window.jupyterapp;
  const panel = Array.from(app.shell.widgets("main")).find(w => w.context && w.context.path === name);
  app.shell.activateById(panel.id);
  const run = app.commands.execute(command);
  if (wait) { await run; return true; }
  window.siamkitCommand = {command: command, settled: false, error: null};
  run.then(() => { window.siamkitCommand.settled = true; },
           (e) => { window.siamkitCommand.settled = true; window.siamkitCommand.error = String(e); });
  return true;
}"""


class _Budget:
    """Bounded waits: each phase gets min(its cap, what is left of the whole budget)."""

    def __init__(self, total_s: float):
        self.end = time.monotonic() + total_s

    def deadline(self, cap_s: float) -> float:
        return min(time.monotonic() + cap_s, self.end)


def _require(ok: bool, msg: str) -> None:
    if not ok:
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}:
            pytest.fail(msg + " (CI=true: a missing browser is a failure; .ci/run installs chromium with apt-get)")
        pytest.skip(msg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(port: int, token: str, path: str, method: str = "GET") -> bytes:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read()


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server serving a copy of lesson 05; yields (url, token, port); stopped in a finally."""
    serve = tmp_path / "serve"
    serve.mkdir()
    shutil.copy(LESSON, serve / LESSON.name)
    port, token = _free_port(), os.urandom(16).hex()
    env = dict(os.environ, SIAMLIB_QUICK="1", JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"), SIAMLIB_CACHE=str(tmp_path / "cache"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
               # one thread per kernel: on a loaded two-core machine, torch's spinning worker threads
               # would fight the load for the cores (the lesson's results do not depend on it)
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={serve}",
           f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
           f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.expose_app_in_browser=True"]  # window.jupyterapp: the test reads what the lab reports
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    # no "get Jupyter news?" toast over the page (the settings folder is this test's own)
    news = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false",
                                                                      "checkForUpdates": False}))
    # every cell attached to the page (no virtual scrolling): prompts and the widget are in the DOM
    tracker = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    log = open(tmp_path / "jupyterlab.log", "wb")
    proc = subprocess.Popen(cmd, cwd=serve, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + LAB_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}: {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}")
            try:
                _api(port, token, "/api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within {LAB_START_S} s: "
                                + (tmp_path / "jupyterlab.log").read_text()[-2000:])
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/lab/tree/{LESSON.name}?token={token}", token, port
    finally:
        try:  # shut kernels and server down cleanly, then make sure
            for k in json.loads(_api(port, token, "/api/kernels")):
                _api(port, token, f"/api/kernels/{k['id']}", method="DELETE")
            _api(port, token, "/api/shutdown", method="POST")
            proc.wait(timeout=15)
        except Exception:  # noqa: BLE001 - fall through to signals
            pass
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def _state(page) -> dict:
    return page.evaluate(_STATE_JS, LESSON.name)


def _describe(state: dict) -> str:
    """One line on where the notebook stands: kernel, and each code cell's prompt."""
    if state.get("stage") != "open":
        return state.get("stage", "?")
    prompts = " ".join(c["prompt"] or "[?]" for c in state["cells"])
    return f"kernel {state['kernel']}, session ready {state['ready']}, prompts {prompts}"


def _started(state: dict) -> bool:
    """Run all has started once a prompt shows "*" or a number (the outputs were cleared before)."""
    return state.get("stage") == "open" and any(
        "*" in c["prompt"] or c["count"] is not None for c in state["cells"])


def _cell_error(state: dict, page) -> None:
    """Fail with the first cell error; a loader's error is reported as the data problem it is."""
    for c in state["cells"]:
        err = c["error"]
        if err is None:
            continue
        first = re.sub(r"\x1b\[[0-9;]*m", "", err["evalue"]).strip().splitlines() or [""]
        shot = ARTIFACTS / "cell-error.png"
        page.screenshot(path=str(shot), full_page=True)
        if err["ename"] in DATA_ERRORS or "SIAMLIB_DATA" in err["evalue"]:
            pytest.fail(
                f"data problem, not a widget problem: lesson 05 could not load its data "
                f"(SIAMLIB_DATA={os.environ.get('SIAMLIB_DATA', '')!r}, data root {config.data_root()}): "
                f"cell {c['index']} raised {err['ename']}: {first[0]} -- point SIAMLIB_DATA at the data mirror "
                f"(screenshot: {shot})", pytrace=False)
        pytest.fail(f"lesson 05 failed in cell {c['index']}: {err['ename']}: {first[0]} (screenshot: {shot})",
                    pytrace=False)


def _safe_state(page) -> dict:
    try:
        return _state(page)
    except Exception as exc:  # noqa: BLE001 - the page is still loading its scripts
        return {"stage": f"page not ready ({type(exc).__name__}: {str(exc)[:80]})"}


def _wait(page, what: str, until, deadline: float, shot: str, poll_s: float = 0.5) -> dict:
    """Poll the notebook's state until ``until(state)``; past the deadline, fail with the last state."""
    while True:
        state = _safe_state(page)
        if until(state):
            return state
        if time.monotonic() > deadline:
            page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
            pytest.fail(f"{what}; last state: {_describe(state)} (screenshot: {ARTIFACTS / shot})", pytrace=False)
        time.sleep(poll_s)


def _kernel_idle(state: dict) -> bool:
    k = state.get("kernel") or {}
    return bool(state.get("ready")) and k.get("connection") == "connected" and k.get("status") == "idle"


def test_explorer_renders_and_the_epoch_slider_changes_the_figure(jupyterlab, mirror_root, tmp_path):
    _require(CHROMIUM.is_file(), f"Chromium not found at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require(False, "playwright (Python) is not installed: pip install playwright")
    url, _, _ = jupyterlab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    budget = _Budget(BUDGET_S)
    times = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM),
                                     args=["--headless", "--no-sandbox", "--disable-gpu",
                                           "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(url, timeout=60_000)

            # 1. the kernel is ready the way JupyterLab reports it: session ready, kernel connected and idle
            # (twice, half a second apart: the status can read "idle" for a moment while the kernel starts)
            ready = budget.deadline(KERNEL_READY_S)
            _wait(page, f"the notebook's kernel was not ready within {KERNEL_READY_S} s",
                  lambda s: _kernel_idle(s) and (time.sleep(0.5) or _kernel_idle(_safe_state(page))),
                  ready, "kernel-not-ready.png")
            times["kernel ready"] = time.monotonic() - t0

            # 2. clear the stored outputs, run all, and check that the run started (retry once if not)
            page.evaluate(_COMMAND_JS, [LESSON.name, "notebook:clear-all-cell-outputs", True])
            cleared = _wait(page, "the stored outputs were not cleared",
                            lambda s: s.get("stage") == "open" and not _started(s), budget.deadline(15),
                            "not-cleared.png")
            assert cleared["cells"], "lesson 05 has no code cell"
            for attempt in (1, 2):
                page.evaluate(_COMMAND_JS, [LESSON.name, "notebook:run-all-cells", False])
                start_by = budget.deadline(RUN_START_S)
                while time.monotonic() < start_by and not _started(state := _safe_state(page)):
                    time.sleep(0.25)
                if _started(state):
                    break
                page.screenshot(path=str(ARTIFACTS / f"run-all-not-started-{attempt}.png"), full_page=True)
                command = page.evaluate("() => window.siamkitCommand")
                if attempt == 2:
                    pytest.fail(f"'Run All Cells' did not start twice (no prompt showed * or a number within "
                                f"{RUN_START_S} s); command {command}; last state: {_describe(state)}",
                                pytrace=False)
                print(f"browser test: run all did not start ({command}; {_describe(state)}); running it again")
                _wait(page, "the kernel did not return to idle after a run all that did not start",
                      _kernel_idle, budget.deadline(KERNEL_READY_S), "kernel-not-ready.png")
            times["run started"] = time.monotonic() - t0
            times["attempts"] = attempt

            # 3. every code cell ran (or one raised: then that cell's error is the failure)
            def finished(s: dict) -> bool:
                if s.get("stage") != "open":
                    return False
                if any(c["error"] for c in s["cells"]) or (s.get("kernel") or {}).get("status") == "dead":
                    return True
                done = all(c["count"] is not None and "*" not in c["prompt"] for c in s["cells"])
                return done and _kernel_idle(s)

            state = _wait(page, f"lesson 05 did not finish within {RUN_ALL_S} s", finished,
                          budget.deadline(RUN_ALL_S), "run-all-unfinished.png", poll_s=1.0)
            _cell_error(state, page)
            if state["kernel"]["status"] == "dead":
                page.screenshot(path=str(ARTIFACTS / "kernel-dead.png"), full_page=True)
                pytest.fail(f"the kernel died while lesson 05 ran (out of memory?); last state: {_describe(state)}",
                            pytrace=False)
            times["run finished"] = time.monotonic() - t0

            # 4. the explorer is shown; moving its epoch slider changes the figure
            explorer = page.locator(".siamlib-explorer")
            figure = explorer.locator("img.siamlib-explorer-figure")
            try:
                figure.wait_for(state="visible", timeout=max(1_000, (budget.deadline(30) - time.monotonic()) * 1000))
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "explorer-missing.png"), full_page=True)
                pytest.fail("lesson 05 ran to the end without an error, but no explorer widget (with its figure) "
                            f"is shown (screenshot: {ARTIFACTS / 'explorer-missing.png'})", pytrace=False)
            explorer.scroll_into_view_if_needed()
            src_before = figure.get_attribute("src")
            png_before = figure.screenshot()
            assert src_before, "the explorer's figure has no image source"

            handle = explorer.locator(".siamlib-epoch-slider .noUi-handle")
            readout = explorer.locator(".siamlib-epoch-slider .widget-readout")
            value_before = readout.inner_text()
            handle.focus()
            page.keyboard.press("ArrowLeft")  # starts at the last epoch; one step back
            try:
                page.wait_for_function(
                    "([el, old]) => el.getAttribute('src') !== old", arg=[figure.element_handle(), src_before],
                    timeout=max(1_000, (budget.deadline(REDRAW_S) - time.monotonic()) * 1000))
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "explorer-no-redraw.png"), full_page=True)
                pytest.fail(f"the explorer's figure did not change within {REDRAW_S} s of moving the epoch slider "
                            f"({value_before} -> {readout.inner_text()}); kernel idle before the move "
                            f"(screenshot: {ARTIFACTS / 'explorer-no-redraw.png'})", pytrace=False)
            value_after = readout.inner_text()
            png_after = figure.screenshot()
            assert value_after != value_before, f"the slider did not move ({value_before} -> {value_after})"
            assert png_after != png_before, "the figure's pixels did not change after the slider move"
            explorer.screenshot(path=str(ARTIFACTS / "explorer.png"))
            page.screenshot(path=str(ARTIFACTS / "explorer-page.png"))
            times["redrawn"] = time.monotonic() - t0
        finally:
            browser.close()
    print(f"browser test: explorer rendered and redrew in {time.monotonic() - t0:.0f} s "
          f"({', '.join(f'{k} {v:.0f}' if k != 'attempts' else f'{k} {v}' for k, v in times.items())}); "
          f"epoch {value_before} -> {value_after}; screenshot {ARTIFACTS / 'explorer.png'}")
