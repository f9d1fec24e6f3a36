"""What every recorder shares: the scratch repository the agent works in, and an isolated environment to run it in.

The repository is the tiny session store of tools/record_opencode.py (`app.py` with an expired-session bug,
`test_sessions.py`, `README.md`) plus `DESIGN.md` and the ~56 KB `sessions.log` of tools/record_claude_code.py,
committed with fixed dates so every recording starts from the same tree. The scripted turns of the recorders refer
to these files: `python3 test_sessions.py` fails until `BUG_LINE` is replaced by `FIX_LINES`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
from record_claude_code import design_doc, expired_served, sessions_log  # noqa: E402
from record_opencode import BUG_LINE, DOC_NEW, DOC_OLD, FIX_LINES, git, make_repo  # noqa: E402

__all__ = ["BUG_LINE", "DOC_NEW", "DOC_OLD", "FIX_LINES", "ROOT", "expired_served", "git", "isolated_env",
           "scratch_repo"]

TEST = "python3 test_sessions.py"
API_KEY = "sk-local-test"  # dummy: the scripted server checks nothing


def scratch_repo(repo: Path) -> Path:
    """Create the scenario's git repository at `repo` (which must not exist) and return it."""
    make_repo(repo)
    (repo / "sessions.log").write_text(sessions_log())
    (repo / "DESIGN.md").write_text(design_doc())
    git(repo, "add", "sessions.log", "DESIGN.md")
    git(repo, "commit", "-q", "-m", "add the design notes and the access log")
    return repo


def isolated_env(work: Path, **extra: str) -> dict[str, str]:
    """PATH, locale and a HOME / TMPDIR of its own under `work`; no key or setting of the caller's environment."""
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "LANG": "C.UTF-8", "TERM": "dumb",
           "NO_COLOR": "1", "HOME": str(work / "home"), "TMPDIR": str(work / "tmp")}
    for d in ("home", "tmp"):
        (work / d).mkdir(parents=True, exist_ok=True)
    env.update(extra)
    return env
