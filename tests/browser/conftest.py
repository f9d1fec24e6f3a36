"""Fixtures for the browser tests: a real JupyterLab server and Debian's Chromium driven by Playwright.

Shared by the widget tests (issue 5) and the JupyterLab extension tests (issue 6):

    def test_x(jupyterlab, page, open_notebook, shot):
        nb = open_notebook("x.ipynb", ["%load_ext rlm_jupyter", "1 + 1"])   # written under jupyterlab.root_dir
        run_all(page)                                                          # helper below
        shot("x")                                                              # tests/browser/artifacts/x.png

The server runs with an isolated Jupyter config/data/runtime dir and IPython dir (nothing under ~ is touched), a
token, and --expose-app-in-browser (so tests can call window.jupyterapp.commands). Playwright drives the system
Chromium (RLM_CHROMIUM or /usr/bin/chromium): `playwright install` cannot download browsers on these machines.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parent.parent
ARTIFACTS = HERE / "artifacts"
BUNDLE = REPO / "rlm_jupyter" / "jupyter" / "static" / "trace-view.js"
LABEXT = REPO / "labextension"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str | None:
    path = os.environ.get("RLM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return path if Path(path).exists() else None


def _missing() -> str | None:
    """Why the browser tests cannot run at all here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (python) is not installed: pip install 'playwright>=1.50' (browsers are not downloaded)"
    if chromium_path() is None:
        return "no Chromium: apt-get install chromium (or set RLM_CHROMIUM to a Chromium binary)"
    return None


def pytest_collection_modifyitems(config, items):
    why = _missing()
    if why is None:
        return
    mark = pytest.mark.skip(reason=why)
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(mark)


# ---- the JupyterLab server -------------------------------------------------------------------------------------


@dataclass
class Lab:
    url: str  # http://127.0.0.1:PORT (no trailing slash)
    token: str
    root_dir: Path  # the server's notebook dir: write notebooks here
    log: Path
    env: dict

    def lab_url(self, path: str = "") -> str:
        """URL of a notebook (relative to root_dir) in JupyterLab, with a fresh workspace."""
        return f"{self.url}/lab/tree/{path}?token={self.token}&reset"

    def api(self, path: str):
        with urllib.request.urlopen(f"{self.url}/api/{path}?token={self.token}", timeout=5) as r:
            return json.loads(r.read())

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def widget_bundle() -> Path:
    """The widget's front-end bundle (a git-ignored build output), rebuilt if older than its sources."""
    sources = list((LABEXT / "src").glob("*.ts"))
    newest = max((p.stat().st_mtime for p in sources), default=0)
    if BUNDLE.exists() and BUNDLE.stat().st_mtime >= newest:
        return BUNDLE
    npm = shutil.which("npm")
    if npm is None or not (LABEXT / "node_modules").exists():
        if BUNDLE.exists():
            return BUNDLE  # stale but usable; cannot rebuild here
        pytest.fail(
            f"{BUNDLE} is missing: build it with `npm --prefix labextension ci && npm --prefix labextension run bundle`"
        )
    r = subprocess.run([npm, "run", "bundle"], cwd=LABEXT, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        pytest.fail(f"npm run bundle failed in {LABEXT}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return BUNDLE


def _start_lab(base: Path, extra_args: list[str]):
    """Start `jupyter lab` with its Jupyter dirs under `base`; yield a Lab once /api/status answers; stop it."""
    root = base / "notebooks"
    root.mkdir()
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(base / "cfg"),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "rt"),
        IPYTHONDIR=str(base / "ipy"),
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        PYTHONUNBUFFERED="1",
    )
    # a JUPYTER_PATH of the user's could load other extensions; one inside this repository (a worktree's .jshare,
    # linking its own build of the extension) is kept, so the server loads the build under test
    if not os.environ.get("JUPYTER_PATH", "").startswith(str(REPO)):
        env.pop("JUPYTER_PATH", None)
    # no "would you like news?" toast over the page
    settings = base / "cfg" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    token = secrets.token_hex(16)
    port = _free_port()
    log = base / "lab.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.workspaces_dir={base / 'ws'}",
        "--expose-app-in-browser",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--ServerApp.port_retries=0",
        *extra_args,
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    lab = Lab(url=f"http://127.0.0.1:{port}", token=token, root_dir=root, log=log, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{lab.log_tail()}")
            try:
                lab.api("status")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer /api/status within 60 s:\n{lab.log_tail()}")
                time.sleep(0.25)
        yield lab
    finally:
        _kill_group(proc)


LABEXT_NAME = "rlm-jupyter-trace"
LABEXT_BUILD = REPO / "rlm_jupyter" / "labextension"


@pytest.fixture(scope="session")
def labextension() -> Path:
    """The prebuilt JupyterLab extension as the servers will load it (rebuilt first when a source is newer)."""
    from jupyter_core.paths import jupyter_path

    found = next(
        (
            Path(d) / LABEXT_NAME
            for d in jupyter_path("labextensions")
            if (Path(d) / LABEXT_NAME / "package.json").exists()
        ),
        None,
    )
    if found is None:
        pytest.fail(
            f"the {LABEXT_NAME} JupyterLab extension is not installed in {sys.prefix}: run `make .venv/.js` "
            "(or pip install -e .)"
        )
    if found.resolve() != LABEXT_BUILD.resolve():
        return found  # an installed copy (a wheel): use it as is
    sources = [*(LABEXT / "src").glob("*.ts"), LABEXT / "style" / "index.css", LABEXT / "package.json"]
    newest = max(p.stat().st_mtime for p in sources if p.exists())
    built = LABEXT_BUILD / "package.json"
    if built.stat().st_mtime < newest:
        npm = shutil.which("npm")
        if npm is None:
            return found  # stale but usable; cannot rebuild here
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        r = subprocess.run(
            [npm, "run", "build:labext"], cwd=LABEXT, env=env, capture_output=True, text=True, timeout=300
        )
        if r.returncode != 0:
            pytest.fail(f"npm run build:labext failed in {LABEXT}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return found


@pytest.fixture(scope="session")
def jupyterlab(tmp_path_factory):
    """A real JupyterLab server on a free port (kernel: this Python, so rlm_jupyter is importable)."""
    if _missing():
        pytest.skip(_missing())
    yield from _start_lab(tmp_path_factory.mktemp("jupyterlab"), [])


@pytest.fixture(scope="session")
def jupyterlab_nokernel(tmp_path_factory):
    """A JupyterLab server that cannot start any kernel: no kernelspec is allowed (/api/kernelspecs lists none),
    so whatever renders there rendered from saved outputs and files alone (docs/labextension.md)."""
    if _missing():
        pytest.skip(_missing())
    yield from _start_lab(
        tmp_path_factory.mktemp("jupyterlab-nokernel"), ["--KernelSpecManager.allowed_kernelspecs=nokernel"]
    )


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop the server and its kernels (they share its process group, started by us)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


# ---- the browser -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    if _missing():
        pytest.skip(_missing())
    from playwright.sync_api import sync_playwright

    home = Path(os.environ.get("TMPDIR", "/tmp"))
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, env={**os.environ, "HOME": str(home)}
        )  # crash reports not under ~/.config
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, request):
    """A fresh Chromium page (1400x900). On failure a screenshot goes to artifacts/<test>-failed.png."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        with contextlib.suppress(Exception):  # the page may be gone; the failure itself is what matters
            pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-failed.png"), full_page=True)
    ctx.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


@pytest.fixture
def shot(page, request):
    """shot("name", locator=None): save a screenshot to tests/browser/artifacts/<name>.png and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)

    def take(name: str, locator=None, full_page: bool = False) -> Path:
        path = ARTIFACTS / f"{name}.png"
        (locator or page).screenshot(path=str(path), **({} if locator else {"full_page": full_page}))
        return path

    return take


# ---- notebooks -------------------------------------------------------------------------------------------------


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A minimal nbformat-4 notebook of code cells (Python 3 kernel)."""
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": [
            {"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [], "source": src}
            for i, src in enumerate(cells)
        ],
    }
    path.write_text(json.dumps(nb, indent=1))
    return path


def wait_kernel_idle(page, timeout: float = 90_000) -> None:
    """Wait until the notebook's kernel is connected and idle (the execution indicator alone says "idle" before
    there is any kernel: running then opens a kernel dialog and hangs)."""
    page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first.wait_for(timeout=timeout)


def run_all(page) -> None:
    """Run all cells of the current notebook (not awaited: the command resolves only when all cells finish)."""
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


def run_cell(page, index: int) -> None:
    """Select cell `index` and run it (Ctrl+Enter: no new cell, the notebook stays as written)."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Control+Enter")


@pytest.fixture
def open_notebook(jupyterlab, page):
    """open_notebook(name, cells) writes the notebook under the server root, opens it in `page` and waits for an
    idle kernel; returns the page."""

    def go(name: str, cells: list[str]):
        path = jupyterlab.root_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_notebook(path, cells)
        page.goto(jupyterlab.lab_url(name))
        page.wait_for_selector(".jp-NotebookPanel", timeout=60_000)
        wait_kernel_idle(page)
        return page

    return go
