"""The JupyterLab extension's trace reader (labextension/src/tracefile.ts) bundled for Node, so tests can read the
same files with both readers without a browser (test_labext_schema.py, test_trace_fuzz.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

LABEXT = Path(__file__).resolve().parents[1] / "labextension"


def bundle_trace_reader(out: Path, harness: str) -> tuple[str, Path]:
    """(node, harness path): the JupyterLab extension's trace reader (labextension/src/tracefile.ts) bundled for
    Node into `out` beside `harness` (an ES module importing from './tracefile.mjs'). Skips without Node."""
    node = shutil.which("node")
    esbuild = LABEXT / "node_modules" / ".bin" / "esbuild"
    if node is None:
        pytest.skip("node is not installed (it is also needed to build the extension: apt-get install nodejs npm)")
    if not esbuild.exists():
        pytest.fail(f"{esbuild} is missing: run `npm --prefix labextension ci` (pip install -e . does it too)")
    subprocess.run(
        [
            str(esbuild),
            str(LABEXT / "src" / "tracefile.ts"),
            "--bundle",
            "--format=esm",
            "--platform=node",
            f"--outfile={out / 'tracefile.mjs'}",
            "--log-level=warning",
        ],
        check=True,
        cwd=LABEXT,
        timeout=60,
    )
    (out / "harness.mjs").write_text(harness)
    return node, out / "harness.mjs"
