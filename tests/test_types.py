"""The type checker (mypy, configured in pyproject.toml) on the package: no module may get more errors than
tests/mypy-baseline.json records, a module that got fewer must lower its number (the baseline only goes down), and
the core packages the others build on are clean.

    python tests/test_types.py --update   # rewrite the baseline after fixing errors
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).parents[1]
BASELINE = Path(__file__).parent / "mypy-baseline.json"
# Packages held at zero errors: the core the others build on (issue 15).
CLEAN = ("rlm_jupyter/trace/", "rlm_jupyter/sessions/", "rlm_jupyter/context/")
ERROR = re.compile(r"^(rlm_jupyter/[\w/]+\.py):\d+: error: ", re.M)


def mypy_errors() -> Counter[str]:
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary"], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    if out.returncode not in (0, 1) or out.stderr.strip():
        raise RuntimeError(f"mypy did not run: {out.stderr.strip() or out.stdout[-2000:]}")
    return Counter(ERROR.findall(out.stdout))


def test_no_module_gets_new_type_errors():
    baseline: dict[str, int] = json.loads(BASELINE.read_text())
    now = mypy_errors()
    worse = {m: f"{baseline.get(m, 0)} -> {n}" for m, n in now.items() if n > baseline.get(m, 0)}
    assert not worse, f"new mypy errors (run `python -m mypy` and fix them): {worse}"
    better = {m: f"{n} -> {now.get(m, 0)}" for m, n in baseline.items() if now.get(m, 0) < n}
    assert not better, f"fewer mypy errors than the baseline: run `python tests/test_types.py --update` ({better})"
    dirty = sorted(m for m in now if m.startswith(CLEAN))
    assert not dirty, f"{CLEAN} must stay free of mypy errors: {dirty}"


if __name__ == "__main__" and "--update" in sys.argv:
    counts = mypy_errors()
    BASELINE.write_text(json.dumps(dict(sorted(counts.items())), indent=1) + "\n")
    print(f"{BASELINE}: {sum(counts.values())} errors in {len(counts)} modules")
