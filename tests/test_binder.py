"""Binder: the files repo2docker reads (binder/) give an environment that runs the quickstart notebook.

Binder itself cannot be reached from here, so `test_binder_install_runs_the_quickstart` does what its build does:
the files a clone would hold (tracked + not ignored: no built front-end, no node_modules) are copied to a fresh
folder, a clean virtual environment gets `pip install -r binder/requirements.txt` run from that folder (so the
project's build hook runs `npm install` + `npm run build` in labextension/, as on Binder), `binder/postBuild` runs,
and the quickstart notebook is executed with that environment's kernel.

That install needs the package registries (PyPI and npm; pip's and npm's caches make it faster, not offline), and
the suite's tests do not use the network, so it runs only when asked:
    RLM_JUPYTER_BINDER_TEST=1 .venv/bin/pytest tests/test_binder.py
(about 3-4 minutes on 2 cores with warm caches). The other tests here check the binder/ files offline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
BINDER = ROOT / "binder"
MIME = "application/vnd.rlm-jupyter.trace+json"


def _requirements() -> list[str]:
    lines = (BINDER / "requirements.txt").read_text().splitlines()
    return [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]


def test_runtime_is_python_311():
    # without runtime.txt repo2docker picks Python 3.10, below the project's requires-python
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"


def test_requirements_install_the_project_with_its_lab_extra():
    reqs = _requirements()
    project = [r for r in reqs if r.startswith(".")]
    assert project == [".[lab]"], "the project itself, from the repository root where repo2docker runs pip"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "lab" in extras and any(x.startswith("jupyterlab") for x in extras["lab"])
    # the prebuilt extension is built against @jupyterlab/* 4.6 (labextension/package-lock.json): Binder's image
    # (JupyterLab 4.4) must be upgraded to a JupyterLab that provides those shared packages
    lab = next(r for r in reqs if r.startswith("jupyterlab"))
    lock = json.loads((ROOT / "labextension" / "package-lock.json").read_text())
    core_meta = lock["packages"].get("node_modules/@jupyterlab/core-meta", {}).get("version", "")
    m = re.match(r"(\d+)\.(\d+)", core_meta)
    assert m, "labextension/package-lock.json names the @jupyterlab/core-meta it builds against"
    assert f">={m.group(1)}.{m.group(2)}" in lab, f"{lab!r} vs @jupyterlab/core-meta {core_meta}"


def test_post_build_is_an_executable_bash_script_that_stops_on_errors():
    post = BINDER / "postBuild"
    text = post.read_text()
    assert text.startswith("#!/bin/bash\n") and "set -euo pipefail" in text
    assert post.stat().st_mode & stat.S_IXUSR
    assert "rlm-jupyter-trace" in text  # fails the build when the extension is missing
    assert not (ROOT / "binder" / "environment.yml").exists()  # it would make repo2docker ignore runtime.txt


def _clone_like_tree(dest: Path) -> None:
    """The files a clone of this working tree would hold: tracked and untracked-but-not-ignored files."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, out.split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


# Installs from the package registries (PyPI, npm) like repo2docker does: ~5 min with warm caches.
@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("RLM_JUPYTER_SKIP_BINDER_TEST") == "1",
    reason="RLM_JUPYTER_SKIP_BINDER_TEST=1: the clean Binder-style install is skipped",
)
def test_binder_install_runs_the_quickstart(tmp_path):
    import nbformat

    repo, venv, home = tmp_path / "repo", tmp_path / "venv", tmp_path / "home"
    repo.mkdir()
    home.mkdir()
    _clone_like_tree(repo)
    assert not (repo / "rlm_jupyter" / "labextension").exists(), "the built extension must come from the build"
    assert not (repo / "rlm_jupyter" / "jupyter" / "static" / "trace-view.js").exists()

    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
    bin_ = venv / "bin"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "VIRTUAL_ENV"}
    env.update(
        PATH=f"{bin_}:{env['PATH']}",
        HOME=str(home),
        RLM_JUPYTER_CACHE=str(tmp_path / "cache"),
        JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        npm_config_cache=os.environ.get("npm_config_cache", str(Path.home() / ".npm")),  # noqa: SIM112 - npm reads it lower-case
        PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")),
    )

    def run(*cmd, timeout=600, cwd=repo):
        t = time.monotonic()
        p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        assert p.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{(p.stdout + p.stderr)[-6000:]}"
        print(f"{time.monotonic() - t:6.1f} s  {' '.join(map(str, cmd))[:100]}")
        return p

    # what repo2docker runs, from the repository root
    run(bin_ / "pip", "install", "-q", "-r", "binder/requirements.txt", timeout=1200)
    assert (repo / "rlm_jupyter" / "jupyter" / "static" / "trace-view.js").is_file(), "npm build did not run"
    p = run(bin_ / "jupyter", "labextension", "list")
    listing = p.stdout + p.stderr
    assert re.search(r"rlm-jupyter-trace v\S+ .*enabled.*OK", listing), listing
    run("bash", "binder/postBuild")
    assert (
        home / ".jupyter/lab/user-settings/@jupyterlab/apputils-extension" / "notification.jupyterlab-settings"
    ).is_file()

    # the quickstart, with the new environment's kernel
    out = tmp_path / "quickstart-run.ipynb"
    run(
        bin_ / "jupyter",
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--output",
        str(out),
        "--ExecutePreprocessor.kernel_name=python3",
        "--ExecutePreprocessor.timeout=300",
        "notebooks/01-quickstart.ipynb",
    )
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    traces = [o["data"][MIME] for o in outputs if MIME in o.get("data", {})]
    assert traces and sum(e["type"] == "step" for e in traces[-1]["events"]) == 3
    answer = next(e["answer"] for e in traces[-1]["events"] if e["type"] == "final")
    assert "available-tools" in "".join(o.get("text", "") for o in outputs) and "rejected" in answer
    # the kernel "python3" is the new environment's Python, which imports the project from it
    spec = json.loads(run(bin_ / "jupyter", "kernelspec", "list", "--json").stdout)
    argv0 = spec["kernelspecs"]["python3"]["spec"]["argv"][0]
    resolved = shutil.which(argv0, path=env["PATH"]) if "/" not in argv0 else argv0
    assert resolved and Path(resolved).parent == bin_, (argv0, resolved)
    where = run(bin_ / "python", "-c", "import rlm_jupyter; print(rlm_jupyter.__file__)", cwd=home).stdout
    assert where.startswith(str(venv))
    shutil.rmtree(venv)  # ~1.4 GB; pytest keeps the last three tmp folders
