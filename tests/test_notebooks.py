"""The demo notebooks (notebooks/*.ipynb) run top to bottom and their checked outputs still hold, with nbval.

Each notebook is run by `pytest --nbval-lax` in a subprocess (nbval collects .ipynb files, which this suite's
`testpaths = ["tests"]` does not reach): every cell must run without an error, and the cells tagged
`nbval-check-output` (cell metadata `tags`, which nbval reads as it reads a `# NBVAL_CHECK_OUTPUT` comment, but out
of the reader's sight) must print what the stored notebook shows, after notebooks/nbval-sanitize.cfg has replaced
times, costs, trace ids, memory addresses, temporary paths and timestamps. Cells with widgets, polars HTML or the
trace MIME bundle (JSON, which sanitizers do not touch) are run but not compared.

Offline by construction: the notebooks use the `offline` model and the bundled samples, and the kernel gets an
environment without API keys (notebook 04 then skips its real-model cells, as it says) and with its own empty
rlm_jupyter cache, so marks saved by an earlier session cannot change the results.

To refresh the stored outputs after a change (then look at the diff):
    RLM_JUPYTER_CACHE=$(mktemp -d) .venv/bin/jupyter nbconvert --to notebook --execute --inplace \\
        --ExecutePreprocessor.store_widget_state=False notebooks/0*.ipynb
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SANITIZE = ROOT / "notebooks" / "nbval-sanitize.cfg"
# Variables that would make a notebook call a hosted model, or find the sessions of whoever runs the tests.
SCRUB = re.compile(
    r"(_API_KEY|_API_BASE|_AUTH_TOKEN)$|^(RLM_MODEL|CLAUDE_CONFIG_DIR|CODEX_HOME|GEMINI_CLI_HOME|"
    r"FILE_STORE_PATH|XDG_DATA_HOME|AWS_[A-Z_]+|GOOGLE_APPLICATION_CREDENTIALS|VERTEXAI_[A-Z_]+)$"
)


def test_the_four_demo_notebooks_are_there():
    names = [p.name for p in NOTEBOOKS]
    assert names == [
        "01-quickstart.ipynb",
        "02-inside-a-run.ipynb",
        "03-context-management.ipynb",
        "04-your-own-sessions-and-models.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_outputs_are_stored_and_checked(path):
    """GitHub and Binder show the stored outputs: every code cell has run, none failed, and each notebook checks
    some outputs (a notebook with no checked cell would only prove that it does not raise)."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), "store outputs: nbconvert --execute --inplace"
    assert not [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    checked = [c for c in code if "nbval-check-output" in c.metadata.get("tags", [])]
    assert len(checked) >= 3 and all(c.outputs for c in checked)
    # the marks are cell tags: a reader studying the code sees no test machinery
    assert not [c for c in nb.cells if "NBVAL" in c.source]
    assert "widgets" not in nb.metadata, "store without widget state (static fallbacks carry the content)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_with_nbval(path, tmp_path):
    env = {k: v for k, v in os.environ.items() if not SCRUB.search(k)}
    env["RLM_JUPYTER_CACHE"] = str(tmp_path / "cache")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval-lax",
        "--nbval-current-env",
        "--nbval-sanitize-with",
        str(SANITIZE),
        "--nbval-cell-timeout",
        "120",
        "-p",
        "no:cacheprovider",
        "-q",
        str(path),
    ]
    proc = subprocess.run(cmd, cwd=path.parent, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"nbval failed on {path.name}:\n{out[-6000:]}"
    cells = sum(1 for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    m = re.search(r"(\d+) passed", out)
    assert m and int(m.group(1)) == cells, f"expected {cells} cells to pass:\n{out[-3000:]}"


def test_the_readme_links_no_placeholder_binder_address():
    """The README's Binder badge pointed at mybinder.org/v2/gh/OWNER/…: a link that only opens Binder's error page.
    A Binder link is allowed once pyproject names the repository it points at."""
    import tomllib

    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"https://mybinder\.org/v2/gh/([^/\s)]+)/([^/\s)]+)/", readme)
    urls = " ".join(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("urls", {}).values())
    for account, repo in links:
        assert f"github.com/{account}/{repo}" in urls, f"Binder link to {account}/{repo}: not this repository"
    assert "OWNER" not in readme
