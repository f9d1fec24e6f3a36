"""The whole tree (package, tests, benchmarks, tools, notebooks) passes `ruff check` with the rules in pyproject.toml,
and is laid out as `ruff format` lays it out (the notebooks excepted: pyproject.toml), so a lint or layout regression
fails the suite the way a broken test does."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the `test` extra: pip install -e '.[test]')")
    proc = subprocess.run(
        [ruff, "check", "--output-format", "concise", "."], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"ruff check found problems (fix them, or `ruff check --fix`):\n{proc.stdout}"


def test_ruff_format_is_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the `test` extra: pip install -e '.[test]')")
    proc = subprocess.run([ruff, "format", "--check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"files not laid out as `ruff format` would (run `ruff format .`):\n{proc.stdout}"
