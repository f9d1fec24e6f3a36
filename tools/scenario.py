"""What every recorder shares: the scratch repository the agent works in, and an isolated environment to run it in.

The repository is the tiny session store of tools/record_opencode.py (`app.py` with an expired-session bug,
`test_sessions.py`, `README.md`) plus `DESIGN.md` and the ~56 KB `sessions.log` defined here,
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
from record_opencode import BUG_LINE, DOC_NEW, DOC_OLD, FIX_LINES, git, make_repo  # noqa: E402

__all__ = [
    "API_KEY",
    "BUG_LINE",
    "DOC_NEW",
    "DOC_OLD",
    "FIX_LINES",
    "ROOT",
    "TEST",
    "design_doc",
    "expired_served",
    "git",
    "isolated_env",
    "scratch_repo",
    "sessions_log",
]

TEST = "python3 test_sessions.py"
API_KEY = "sk-local-test"  # dummy: the scripted server checks nothing
LOG_LINES = 220


def sessions_log() -> str:
    """A deterministic ~56 KB access log: every 8th request served an expired session (the bug, before the fix)."""
    lines = []
    for i in range(LOG_LINES):
        age = 3000 + (i * 97) % 1400
        verdict = "EXPIRED-SERVED" if age > 3600 and i % 8 == 0 else "ok"
        lines.append(
            f"2026-01-01T{i // 60 % 24:02d}:{i % 60:02d}:00Z GET /profile sid=s{i % 37 + 1} "
            f"user=u{i % 11} age={age}s status=200 {verdict} latency_ms={5 + i % 13}"
        )
    return "\n".join(lines) + "\n"


def design_doc() -> str:
    """DESIGN.md (~4 KB), read in turn 1: history that a compaction can drop, so the first compaction frees more
    than the summary costs and the request after it stays below the threshold."""
    endpoints = ["/login", "/logout", "/profile", "/settings", "/cart", "/checkout", "/orders", "/search"]
    rows = "\n".join(f"| GET {e} | get_session(sid) | 401 when get_session returns None |" for e in endpoints)
    return f"""# Session store design

Sessions are created by create_session(user_id) and looked up by get_session(sid). They live in the module-level
dict SESSIONS of app.py, keyed by a short id, with the creation time in seconds. TTL_SECONDS (3600) is the maximum
age: a session older than that must be treated as unknown, and the handler answers 401 so the client logs in again.

## Constraints
- The app runs as ONE process behind a reverse proxy; there is no shared state between machines.
- No new runtime dependencies without a design review: the deployment is a single container image.
- Expired sessions must never be served: an expired session that is returned leaks another login's data.

## Endpoints that read sessions
| endpoint | lookup | on a missing or expired session |
|---|---|---|
{rows}

## Options considered for storage
1. In-process dict (current). Zero dependencies. Lost on restart, which is acceptable: users log in again.
2. Redis. Survives restarts and could be shared by several processes, but adds a network hop per request, a
   service to deploy and monitor, and a failure mode (Redis down = nobody can log in).
3. Signed cookies. No server state at all, but logout cannot revoke a cookie before it expires.

## Open questions
- Should expired sessions be evicted on read, or by a periodic sweep? Eviction on read needs no background thread.
- Should TTL_SECONDS come from a config file? There is no config.py today.
"""


def expired_served() -> int:
    return sessions_log().count("EXPIRED-SERVED")


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
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "HOME": str(work / "home"),
        "TMPDIR": str(work / "tmp"),
    }
    for d in ("home", "tmp"):
        (work / d).mkdir(parents=True, exist_ok=True)
    env.update(extra)
    return env
