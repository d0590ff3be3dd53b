"""A real browser drives lesson 05 in a real JupyterLab and scrubs the explorer's epoch slider.

Starts JupyterLab on 127.0.0.1 (a free port, a token, temporary settings,
workspace and runtime folders, serving a temporary copy of the notebook so the
lesson itself is never autosaved over), opens lesson 05 in Debian's Chromium
through Playwright (no browser download), runs all cells, waits for the explorer
widget, moves the epoch slider with the keyboard and asserts that the figure the
widget shows changed. Screenshots go to ``artifacts/`` (``SIAMLIB_ARTIFACTS``
overrides). Under CI a missing Chromium or Playwright is a failure, not a skip.

Run it alone with ``python -m pytest -m browser tests/test_browser.py``.
"""
from __future__ import annotations

import json
import os
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
RUN_ALL_TIMEOUT_S = 240  # the lesson runs in about a minute in quick mode on two cores

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]


def _require(ok: bool, msg: str) -> None:
    if not ok:
        if config.in_ci():
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
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={serve}",
           f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
           f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    # no "get Jupyter news?" toast over the page (the settings folder is this test's own)
    news = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false",
                                                                      "checkForUpdates": False}))
    log = open(tmp_path / "jupyterlab.log", "wb")
    proc = subprocess.Popen(cmd, cwd=serve, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}: {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}")
            try:
                _api(port, token, "/api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not answer within 90 s: "
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


def test_explorer_renders_and_the_epoch_slider_changes_the_figure(jupyterlab, tmp_path):
    _require(CHROMIUM.is_file(), f"Chromium not found at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require(False, "playwright (Python) is not installed: pip install playwright")
    url, _, _ = jupyterlab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM),
                                     args=["--headless", "--no-sandbox", "--disable-gpu",
                                           "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            # the kernel must be up before "run all" (the toolbar shows its status)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
            page.locator(".jp-Notebook").first.click()  # focus the notebook, so its Run menu applies
            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            try:
                page.locator(".lm-Menu-item", has_text="Run All Cells").first.click(timeout=10_000)
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "run-menu.png"), full_page=True)
                raise

            explorer = page.locator(".siamlib-explorer")
            idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
            deadline, idle_since, why = time.monotonic() + RUN_ALL_TIMEOUT_S, None, ""
            time.sleep(3)  # let "run all" start
            while explorer.count() == 0 or not explorer.first.is_visible():
                now = time.monotonic()
                if idle.count() > 0:  # the kernel has stopped working: all cells ran, or one failed
                    idle_since = idle_since or now
                    if now - idle_since > 8:
                        why = "the kernel finished (all cells ran or one failed) but no explorer widget is shown"
                        break
                else:
                    idle_since = None
                if now > deadline:
                    why = f"no explorer widget after {RUN_ALL_TIMEOUT_S} s"
                    break
                time.sleep(0.5)
            if why:
                page.screenshot(path=str(ARTIFACTS / "explorer-missing.png"), full_page=True)
                pytest.fail(f"{why} (screenshot: {ARTIFACTS / 'explorer-missing.png'})")
            figure = explorer.locator("img.siamlib-explorer-figure")
            figure.wait_for(state="visible", timeout=30_000)
            explorer.scroll_into_view_if_needed()
            src_before = figure.get_attribute("src")
            png_before = figure.screenshot()
            assert src_before, "the explorer's figure has no image source"

            handle = explorer.locator(".siamlib-epoch-slider .noUi-handle")
            readout = explorer.locator(".siamlib-epoch-slider .widget-readout")
            value_before = readout.inner_text()
            handle.focus()
            page.keyboard.press("ArrowLeft")  # starts at the last epoch; one step back
            page.wait_for_function(
                "([el, old]) => el.getAttribute('src') !== old",
                arg=[figure.element_handle(), src_before], timeout=30_000)
            value_after = readout.inner_text()
            png_after = figure.screenshot()
            assert value_after != value_before, f"the slider did not move ({value_before} -> {value_after})"
            assert png_after != png_before, "the figure's pixels did not change after the slider move"
            explorer.screenshot(path=str(ARTIFACTS / "explorer.png"))
            page.screenshot(path=str(ARTIFACTS / "explorer-page.png"))
        finally:
            browser.close()
    print(f"browser test: explorer rendered and redrew in {time.monotonic() - t0:.0f} s; "
          f"epoch {value_before} -> {value_after}; screenshot {ARTIFACTS / 'explorer.png'}")
