"""Unit tests of the trace view's pure TypeScript helpers (time axis, usage roll-up, query patterns, search, the
worker-start phase), run without a browser: each labextension/test/*.test.ts is bundled for Node with the
extension's own esbuild and run by Node's built-in test runner (`node --test`). A failing TypeScript assertion
fails this test with Node's report."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

LABEXT = Path(__file__).resolve().parents[1] / "labextension"
TESTS = sorted((LABEXT / "test").glob("*.test.ts"))


@pytest.mark.parametrize("src", TESTS, ids=[p.stem for p in TESTS])
def test_typescript_units(src: Path, tmp_path: Path):
    node = shutil.which("node")
    esbuild = LABEXT / "node_modules" / ".bin" / "esbuild"
    if node is None:
        pytest.skip("node is not installed (it is also needed to build the extension: apt-get install nodejs npm)")
    if not esbuild.exists():
        pytest.fail(f"{esbuild} is missing: run `npm --prefix labextension ci` (pip install -e . does it too)")
    out = tmp_path / (src.stem + ".mjs")
    subprocess.run(
        [
            str(esbuild),
            str(src),
            "--bundle",
            "--format=esm",
            "--platform=node",
            f"--outfile={out}",
            "--log-level=warning",
        ],
        check=True,
        cwd=LABEXT,
        timeout=60,
    )
    r = subprocess.run(
        [node, "--test", "--test-reporter=spec", str(out)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert r.returncode == 0, f"node --test {src.name} failed:\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}"
    assert "# fail 0" in r.stdout or "fail 0" in r.stdout, r.stdout[-3000:]


def test_there_are_typescript_unit_tests():
    assert TESTS, f"no *.test.ts under {LABEXT / 'test'}"
