"""Re-record a real OpenCode session store offline, end to end.

Given an installed opencode binary, this:
  1. creates a scratch git repository (a tiny session store with a failing test) under --work,
  2. starts tools/scripted_openai_server.py in-process on 127.0.0.1 with a script of model answers,
  3. writes an isolated HOME / XDG_* tree and an opencode.json declaring an OpenAI-compatible provider
     ("@ai-sdk/openai-compatible", bundled in the binary) pointing at that server, with a small context limit,
  4. runs `opencode run` turn by turn (prompt on stdin, --session for follow-ups, --format json),
  5. exports every session (`opencode export <id>`) and copies the session store into --out:
       opencode.db (WAL checkpointed on the copy) for SQLite versions (1.2+), storage/ for JSON-tree versions (<=1.1),
     plus the run event streams, the server's request log (gzipped) and recording.json (ids, versions, commands).

The script makes the model: read a file, run a failing test (bash exit 1), read a missing file (tool error), edit,
state a decision and a rejected approach, call `task` (a child session), and, by reporting an inflated token
usage, push the session over its context limit so OpenCode auto-compacts once (the compaction request is answered
by a rule). Then one more turn asks about the decision after the compaction.

`--scenario prune` records a longer session instead, with no inflated usage: OpenCode's own pruning is on
(`compaction.prune`) and the model reads large log files (real tool outputs, token usage estimated from the real
request size). OpenCode prunes the old log outputs (`state.time.compacted`) at the end of a turn, and later, when
the real window outgrows the small context limit, auto-compacts. See tests/data/recorded/opencode/NOTES.md.

Not part of the test suite. Example:
    python tools/record_opencode.py \\
        --opencode /work/scratch/opencode-current/node_modules/opencode-linux-x64/bin/opencode \\
        --out tests/data/recorded/opencode/current
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import lzma
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scripted_openai_server import Script, make_server  # noqa: E402

PROVIDER = "scripted"
MODEL = "scripted-model"
CONTEXT_LIMIT = 32000
OUTPUT_LIMIT = 4000
OVERFLOW_TOKENS = 30500  # > CONTEXT_LIMIT - OUTPUT_LIMIT, so the step that reports it triggers auto-compaction
API_KEY = "sk-local-test"  # dummy: the scripted server checks nothing
CHILD_MARK = "REVIEW-CHILD"  # appears in the task prompt, i.e. in the child session's first user message

APP_PY = '''"""Tiny session store for the demo web app."""
import time

SESSIONS = {}
TTL_SECONDS = 3600


def create_session(user_id, now=None):
    now = time.time() if now is None else now
    sid = f"s{len(SESSIONS) + 1}"
    SESSIONS[sid] = {"user": user_id, "created": now}
    return sid


def get_session(sid, now=None):
    now = time.time() if now is None else now
    session = SESSIONS.get(sid)
    if session is None:
        return None
    if now - session["created"] > TTL_SECONDS:
        return session  # BUG: expired sessions are returned instead of dropped
    return session
'''

TEST_PY = """from app import TTL_SECONDS, create_session, get_session


def test_expired_session_is_dropped():
    sid = create_session("ada", now=0)
    assert get_session(sid, now=TTL_SECONDS + 1) is None, "expired session was returned"


if __name__ == "__main__":
    test_expired_session_is_dropped()
    print("ok")
"""

README = "# demo\n\nA toy web app session store used to record an OpenCode session.\n"

BUG_LINE = "        return session  # BUG: expired sessions are returned instead of dropped"
FIX_LINES = "        SESSIONS.pop(sid, None)\n        return None"
DOC_OLD = "def get_session(sid, now=None):\n"
DOC_NEW = DOC_OLD + '    """Return the session, or None if unknown or older than TTL_SECONDS."""\n'

SUMMARY = """## Goal
- Fix session expiry in app.py so expired sessions are dropped.

## Instructions
- Keep the in-process store; no new dependencies.

## Discoveries
- python3 test_sessions.py failed with AssertionError: expired session was returned (exit 1).
- There is no config.py; TTL_SECONDS = 3600 is hard-coded in app.py.

## Accomplished
- get_session now pops expired sessions and returns None; test passes.
- A reviewer sub-agent found no other expiry bugs.
- Added a docstring to get_session.

## Decisions
- We decided to keep the in-process dict with eviction on read.
- We rejected Redis sessions because the app is a single process and Redis adds a network dependency.

## Relevant files
- app.py, test_sessions.py
"""


def build_prompts_and_script(repo: Path) -> tuple[list[str], dict]:
    """The user prompts (one `opencode run` each) and the model's scripted answers, in request order."""
    app, test = str(repo / "app.py"), "python3 test_sessions.py"
    prompts = [
        "Look at app.py and tell me how sessions expire.",
        "Run the test to confirm the bug.",
        "Fix it. Should we move sessions to Redis while we are at it?",
        "Ask a sub-agent to review the fix for other expiry bugs.",
        "Add a docstring to get_session and rerun the test.",
        "What did we decide about Redis, and why?",
    ]
    turns = [
        # run 1
        {"note": "run1", "tool_calls": [{"name": "read", "arguments": {"filePath": app}}]},
        {
            "text": "Sessions live in the module-level dict SESSIONS with a TTL of 3600 s. get_session checks the age "
            "but returns the expired session anyway instead of dropping it: that is a bug."
        },
        # run 2: a failing command, then a tool error
        {
            "note": "run2",
            "tool_calls": [{"name": "bash", "arguments": {"command": test, "description": "Run the expiry test"}}],
        },
        {
            "text": "The test fails as expected. Let me check whether a config file overrides the TTL.",
            "tool_calls": [{"name": "read", "arguments": {"filePath": str(repo / "config.py")}}],
        },
        {
            "text": "Confirmed: `python3 test_sessions.py` exits 1 with `AssertionError: expired session was returned`. "  # noqa: E501
            "There is no config.py, so TTL_SECONDS is hard-coded in app.py."
        },
        # run 3: edit, passing test, decision + rejected approach
        {"note": "run3", "tool_calls": [{"name": "read", "arguments": {"filePath": app}}]},
        {
            "tool_calls": [
                {"name": "edit", "arguments": {"filePath": app, "oldString": BUG_LINE, "newString": FIX_LINES}}
            ]
        },
        {"tool_calls": [{"name": "bash", "arguments": {"command": test, "description": "Rerun the expiry test"}}]},
        {
            "text": "Fixed: get_session now pops an expired session and returns None, and the test prints ok.\n\n"
            "Decision: we decided to keep the in-process dict with eviction on read. We rejected Redis sessions "
            "because the app runs as a single process and Redis would add a network dependency and a "
            "deployment step for no gain."
        },
        # run 4: a sub-agent (child session)
        {
            "note": "run4",
            "tool_calls": [
                {
                    "name": "task",
                    "arguments": {
                        "description": "Review session expiry",
                        "prompt": f"{CHILD_MARK}: Review {app} for other session-expiry bugs after the fix in get_session. "  # noqa: E501
                        "Do not edit files. Reply with a short list of findings.",
                        "subagent_type": "general",
                    },
                }
            ],
        },
        # read, not grep: grep/glob need ripgrep, which opencode downloads from GitHub (fails offline)
        {"note": "child step 1", "tool_calls": [{"name": "read", "arguments": {"filePath": app}}]},
        {
            "note": "child step 2",
            "text": "Findings: create_session never expires anything, which is fine; "
            "get_session is the only reader and now drops expired sessions. "
            "No other expiry bugs.",
        },
        {"text": "The reviewer found no other expiry bugs: get_session is the only reader of SESSIONS."},
        # run 5: edit, test, inflated usage -> auto compaction (answered by a rule) -> continue
        {"note": "run5", "tool_calls": [{"name": "read", "arguments": {"filePath": app}}]},
        {"tool_calls": [{"name": "edit", "arguments": {"filePath": app, "oldString": DOC_OLD, "newString": DOC_NEW}}]},
        {
            "note": "reports an overflowing usage",
            "usage": {"prompt_tokens": OVERFLOW_TOKENS},
            "tool_calls": [{"name": "bash", "arguments": {"command": test, "description": "Rerun the expiry test"}}],
        },
        {"note": "after compaction (continue)", "text": "The docstring is in place and the test still passes."},
        # run 6: after the compaction
        {
            "note": "run6",
            "text": "We decided to keep sessions in the in-process dict with eviction on read. "
            "We rejected Redis sessions because the app is a single process and Redis would "
            "add a network dependency for no gain.",
        },
    ]
    rules = [
        # title generation (small model) may arrive at any point: always answer it
        {"match": ["You are a title generator", "title generator"], "text": "Fix session expiry in app.py"},
        # the compaction agent's summary request (1.18: "anchored summary"; older: "summary of our conversation")
        {
            "match": [
                "anchored summary",
                "summary of our conversation",
                "summarizing conversations",
                "Provide a detailed prompt for continuing",
            ],
            "text": SUMMARY,
        },
    ]
    return prompts, {"rules": rules, "turns": turns}


# --- the prune scenario ----------------------------------------------------------------------------------------
LOG_FILES = 10  # logs/sessions-01.log .. -10.log
LOG_LINES = 480  # ~40 KB each: under the read tool's 50 KB / 2000-line cut, ~11k tokens as OpenCode estimates them
PRUNE_CONTEXT_LIMIT = 92000  # from a calibration run: window peaks at ~82k before the prune, reaches ~94k after
PRUNE_OUTPUT_LIMIT = 4000


def log_text(k: int) -> str:
    """A deterministic access log of the session store: some expired sessions served (the bug), some refused."""
    lines = []
    for i in range(LOG_LINES):
        sid, user, age = 1000 * k + i, (7 * i + k) % 97, (37 * i + 11 * k) % 5400
        expired = age > 3600
        served = "yes" if (not expired or (i + k) % 3 == 0) else "no"
        lines.append(
            f"2026-01-{k:02d}T{(i // 60) % 24:02d}:{i % 60:02d}:00Z get_session sid=s{sid} user=u{user:02d} "
            f"age={age:04d}s expired={'yes' if expired else 'no '} served={served} worker=w{i % 4}"
        )
    return "\n".join(lines) + "\n"


def served_expired(k: int) -> int:
    return sum("expired=yes served=yes" in line for line in log_text(k).splitlines())


def build_prune_scenario(repo: Path) -> tuple[list[str], dict]:
    """Ten turns, no inflated usage. Turns 1-3 as in the basic scenario (a failing test, a missing file, the fix, the
    Redis decision); turns 4-6 read six logs; turns 7-8 are questions (so the log reads are older than the last two
    turns, which OpenCode's prune protects); turns 9-10 read four more logs, until the real window passes the limit;
    the last turn asks about the decision after the compaction."""
    app, test = str(repo / "app.py"), "python3 test_sessions.py"
    log = [str(repo / "logs" / f"sessions-{k:02d}.log") for k in range(1, LOG_FILES + 1)]
    count = [served_expired(k) for k in range(1, LOG_FILES + 1)]

    def reads(a: int, b: int, note: str) -> list[dict]:
        return [
            {"note": note, "tool_calls": [{"name": "read", "arguments": {"filePath": log[a]}}]},
            {"tool_calls": [{"name": "read", "arguments": {"filePath": log[b]}}]},
            {
                "text": f"sessions-{a + 1:02d}.log served {count[a]} expired sessions and sessions-{b + 1:02d}.log "
                f"served {count[b]}: every one of them is the get_session bug we fixed."
            },
        ]

    prompts = [
        "Look at app.py and tell me how sessions expire.",
        "Run the test to confirm the bug.",
        "Fix it. Should we move sessions to Redis while we are at it?",
        "Check logs/sessions-01.log and logs/sessions-02.log: how many expired sessions were served?",
        "Same for logs/sessions-03.log and logs/sessions-04.log.",
        "And logs/sessions-05.log and logs/sessions-06.log.",
        "Is the pattern the same across the six logs?",
        "Should we add a metric for expired sessions served?",
        "Now check logs/sessions-07.log and logs/sessions-08.log.",
        "Last ones: logs/sessions-09.log and logs/sessions-10.log.",
        "What did we decide about Redis, and why?",
    ]
    turns = [
        {"note": "run1", "tool_calls": [{"name": "read", "arguments": {"filePath": app}}]},
        {
            "text": "Sessions live in the module-level dict SESSIONS with a TTL of 3600 s. get_session checks the age "
            "but returns the expired session anyway instead of dropping it: that is a bug."
        },
        {
            "note": "run2",
            "tool_calls": [{"name": "bash", "arguments": {"command": test, "description": "Run the expiry test"}}],
        },
        {
            "text": "The test fails as expected. Let me check whether a config file overrides the TTL.",
            "tool_calls": [{"name": "read", "arguments": {"filePath": str(repo / "config.py")}}],
        },
        {
            "text": "Confirmed: `python3 test_sessions.py` exits 1 with `AssertionError: expired session was returned`. "  # noqa: E501
            "There is no config.py, so TTL_SECONDS is hard-coded in app.py."
        },
        {"note": "run3", "tool_calls": [{"name": "read", "arguments": {"filePath": app}}]},
        {
            "tool_calls": [
                {"name": "edit", "arguments": {"filePath": app, "oldString": BUG_LINE, "newString": FIX_LINES}}
            ]
        },
        {"tool_calls": [{"name": "bash", "arguments": {"command": test, "description": "Rerun the expiry test"}}]},
        {
            "text": "Fixed: get_session now pops an expired session and returns None, and the test prints ok.\n\n"
            "Decision: we decided to keep the in-process dict with eviction on read. We rejected Redis sessions "
            "because the app runs as a single process and Redis would add a network dependency and a "
            "deployment step for no gain."
        },
        *reads(0, 1, "run4"),
        *reads(2, 3, "run5"),
        *reads(4, 5, "run6"),
        {
            "note": "run7",
            "text": "Yes: in all six logs the expired sessions that were served are the ones get_session "
            "returned before the fix. Nothing else serves sessions.",
        },
        {
            "note": "run8",
            "text": "A counter of expired sessions served would have caught this early; with the fix it "
            "should stay at zero. I would add it next to the eviction in get_session.",
        },
        *reads(6, 7, "run9"),
        *reads(8, 9, "run10"),
        {
            "note": "after compaction (continue), if OpenCode sends one",
            "match": "Continue if you have next steps",
            "text": "All ten logs are checked; nothing else to do.",
        },
        {
            "note": "run11",
            "text": "We decided to keep sessions in the in-process dict with eviction on read. "
            "We rejected Redis sessions because the app is a single process and Redis would "
            "add a network dependency for no gain.",
        },
    ]
    rules = [
        {"match": ["You are a title generator", "title generator"], "text": "Fix session expiry in app.py"},
        {
            "match": [
                "anchored summary",
                "summary of our conversation",
                "summarizing conversations",
                "Provide a detailed prompt for continuing",
            ],
            "text": PRUNE_SUMMARY,
        },
    ]
    return prompts, {"rules": rules, "turns": turns}


PRUNE_SUMMARY = SUMMARY.replace(
    "- A reviewer sub-agent found no other expiry bugs.\n- Added a docstring to get_session.\n",
    "- Read logs/sessions-01.log to -10.log: every expired session served came from the get_session bug.\n",
)


def git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
    subprocess.run(
        ["git", "-c", "user.name=Recorder", "-c", "user.email=recorder@example.invalid", *args],
        cwd=repo,
        check=True,
        env=env,
        capture_output=True,
    )


def make_repo(repo: Path, scenario: str = "basic") -> None:
    repo.mkdir(parents=True)
    (repo / "app.py").write_text(APP_PY)
    (repo / "test_sessions.py").write_text(TEST_PY)
    (repo / "README.md").write_text(README)
    if scenario == "prune":
        (repo / "logs").mkdir()
        for k in range(1, LOG_FILES + 1):
            (repo / "logs" / f"sessions-{k:02d}.log").write_text(log_text(k))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "initial session store")


def write_config(config_home: Path, port: int, scenario: str = "basic", context: int | None = None) -> dict:
    prune = scenario == "prune"
    context = context or (PRUNE_CONTEXT_LIMIT if prune else CONTEXT_LIMIT)
    output = PRUNE_OUTPUT_LIMIT if prune else OUTPUT_LIMIT
    cfg = {
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": False,
        "share": "disabled",
        "model": f"{PROVIDER}/{MODEL}",
        "small_model": f"{PROVIDER}/{MODEL}",
        "enabled_providers": [PROVIDER],
        "permission": {"edit": "allow", "bash": "allow", "webfetch": "deny"},
        "provider": {
            PROVIDER: {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Scripted local server",
                "options": {"baseURL": f"http://127.0.0.1:{port}/v1", "apiKey": API_KEY},
                "models": {
                    MODEL: {
                        "name": "Scripted Model",
                        "tool_call": True,
                        "limit": {"context": context, "output": output},
                    }
                },
            }
        },
    }
    if prune:
        cfg["compaction"] = {"auto": True, "prune": True}  # prune is off by default in 1.18
    (config_home / "opencode").mkdir(parents=True, exist_ok=True)
    (config_home / "opencode" / "opencode.json").write_text(json.dumps(cfg, indent=2))
    return cfg


def isolated_env(work: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCODE", "OPENAI", "ANTHROPIC", "XDG_"))}
    env.update(
        {
            "HOME": str(work / "home"),
            "XDG_DATA_HOME": str(work / "data"),
            "XDG_CONFIG_HOME": str(work / "config"),
            "XDG_CACHE_HOME": str(work / "cache"),
            "XDG_STATE_HOME": str(work / "state"),
            "OPENCODE_DISABLE_AUTOUPDATE": "1",
            "OPENCODE_DISABLE_MODELS_FETCH": "1",
            "OPENCODE_DISABLE_SHARE": "1",
            "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
            "OPENCODE_DISABLE_CLAUDE_CODE": "1",
            "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
            "NO_COLOR": "1",
        }
    )
    for d in ("home", "data", "config", "cache", "state"):
        (work / d).mkdir(parents=True, exist_ok=True)
    return env


def run_turn(binary: str, repo: Path, env: dict, prompt: str, session: str | None, timeout: int) -> tuple[list, str]:
    """One `opencode run`; the prompt goes on stdin because positional words get quoted by some versions.

    PWD must be the repo too: opencode takes its project directory from PWD, not from the process cwd."""
    cmd = [binary, "run", "--format", "json"] + (["--session", session] if session else [])
    proc = subprocess.run(
        cmd, input=prompt, cwd=repo, env={**env, "PWD": str(repo)}, capture_output=True, text=True, timeout=timeout
    )
    events = []
    for line in proc.stdout.splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # skip any non-JSON banner line
            events.append(json.loads(line))
    if proc.returncode != 0:
        print(f"  exit {proc.returncode}: {proc.stderr[-2000:]}", file=sys.stderr)
    sid = next((e.get("sessionID") for e in events if e.get("sessionID")), None)
    return events, sid or session


def session_ids(data_dir: Path) -> list[dict]:
    """Sessions in the store, parents first: SQLite (1.2+) or the JSON tree (<=1.1)."""
    db = data_dir / "opencode.db"
    if db.exists():
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        rows = con.execute("select id, parent_id, title from session order by time_created, id").fetchall()
        con.close()
        return [{"id": r[0], "parentID": r[1], "title": r[2]} for r in rows]
    out = []
    for f in sorted((data_dir / "storage" / "session").glob("*/*.json")):
        info = json.loads(f.read_text())
        out.append(
            {
                "id": info["id"],
                "parentID": info.get("parentID"),
                "title": info.get("title"),
                "created": info.get("time", {}).get("created", 0),
            }
        )
    return sorted(out, key=lambda s: (s.pop("created"), s["id"]))


def export_session(binary: str, repo: Path, env: dict, sid: str) -> dict:
    proc = subprocess.run(
        [binary, "export", sid], cwd=repo, env={**env, "PWD": str(repo)}, capture_output=True, text=True, timeout=120
    )
    text = proc.stdout
    return json.loads(text[text.index("{") :])  # stdout may start with a progress line in some versions


def copy_store(data_dir: Path, out: Path) -> list[str]:
    """Copy only the session store: opencode.db (+wal, checkpointed on the copy) and/or storage/."""
    kept = []
    db = data_dir / "opencode.db"
    if db.exists():
        for suffix in ("", "-wal", "-shm"):
            if (data_dir / f"opencode.db{suffix}").exists():
                shutil.copy2(data_dir / f"opencode.db{suffix}", out / f"opencode.db{suffix}")
        con = sqlite3.connect(out / "opencode.db")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        for suffix in ("-wal", "-shm"):
            (out / f"opencode.db{suffix}").unlink(missing_ok=True)
        kept.append("opencode.db")
    if (data_dir / "storage").is_dir():
        shutil.copytree(data_dir / "storage", out / "storage")
        kept.append("storage/")
    return kept


def xz_file(path: Path) -> None:
    """Replace `path` by `path.xz` (the whole file in one xz stream, preset 9 extreme)."""
    with path.open("rb") as src, lzma.open(f"{path}.xz", "wb", preset=9 | lzma.PRESET_EXTREME) as dst:
        shutil.copyfileobj(src, dst)
    path.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--opencode", required=True, help="path to the opencode binary")
    ap.add_argument("--out", required=True, type=Path, help="output folder (replaced)")
    ap.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/opencode-record"),
        help="scratch folder (wiped); its repo path ends up inside the recorded sessions",
    )
    ap.add_argument("--timeout", type=int, default=240, help="seconds per opencode invocation")
    ap.add_argument(
        "--scenario",
        choices=["basic", "prune"],
        default="basic",
        help="basic: 6 turns, a sub-agent, one compaction forced by an inflated usage; prune: 11 turns, "
        "real prune of old tool outputs, then a real auto-compaction",
    )
    ap.add_argument(
        "--xz",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="store opencode.db, requests, exports and run events as .xz (default: on for prune)",
    )
    ap.add_argument("--context-limit", type=int, help="the model's context limit (default: the scenario's)")
    args = ap.parse_args()

    if args.xz is None:
        args.xz = args.scenario == "prune"
    version = subprocess.run([args.opencode, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"opencode {version}")
    shutil.rmtree(args.work, ignore_errors=True)
    repo = args.work / "repo"
    make_repo(repo, args.scenario)
    env = isolated_env(args.work)
    prompts, script = (build_prune_scenario if args.scenario == "prune" else build_prompts_and_script)(repo)
    (args.work / "script.json").write_text(json.dumps(script, indent=2))

    log_path = args.work / "requests.jsonl"
    server = make_server(Script(script), log_path, [MODEL])
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cfg = write_config(args.work / "config", port, args.scenario, args.context_limit)

    runs, session = [], None
    try:
        for i, prompt in enumerate(prompts, 1):
            print(f"run {i}: {prompt}")
            events, session = run_turn(args.opencode, repo, env, prompt, session, args.timeout)
            runs.append({"prompt": prompt, "session": session, "events": events})
        data_dir = args.work / "data" / "opencode"
        sessions = session_ids(data_dir)
        exports = {s["id"]: export_session(args.opencode, repo, env, s["id"]) for s in sessions}
    finally:
        server.shutdown()

    shutil.rmtree(args.out, ignore_errors=True)
    (args.out / "exports").mkdir(parents=True)
    (args.out / "run-events").mkdir()
    kept = copy_store(data_dir, args.out)
    for sid, doc in exports.items():
        (args.out / "exports" / f"{sid}.json").write_text(json.dumps(doc, indent=2) + "\n")
    for i, run in enumerate(runs, 1):
        with (args.out / "run-events" / f"run{i}.jsonl").open("w") as f:
            f.writelines(json.dumps(e) + "\n" for e in run["events"])
    if args.xz:  # the prune scenario repeats 400 KB of logs in every request: xz's large window makes it ~40x smaller
        shutil.copyfile(log_path, args.out / "requests.jsonl")
        for f in [
            args.out / "opencode.db",
            args.out / "requests.jsonl",
            *(args.out / "exports").glob("*.json"),
            *(args.out / "run-events").glob("*.jsonl"),
        ]:
            if f.exists():
                xz_file(f)
        kept = [f"{k}.xz" if k == "opencode.db" else k for k in kept]
    else:
        with (args.out / "requests.jsonl.gz").open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as dst:
            dst.write(log_path.read_bytes())
    unused = Script(script)  # report which scripted turns were never requested
    served = [json.loads(line)["answered_with"] for line in log_path.read_text().splitlines()]
    (args.out / "recording.json").write_text(
        json.dumps(
            {
                "opencode_version": version,
                "binary": os.path.basename(args.opencode),
                "work_dir": str(args.work),
                "repo_dir": str(repo),
                "provider": PROVIDER,
                "model": MODEL,
                "scenario": args.scenario,
                "limit": cfg["provider"][PROVIDER]["models"][MODEL]["limit"],
                "compaction": cfg.get("compaction"),
                "overflow_tokens": OVERFLOW_TOKENS if args.scenario == "basic" else None,
                "store": kept,
                "prompts": prompts,
                "main_session": runs[0]["session"] if runs else None,
                "sessions": sessions,
                "requests_served": served,
                "turns_unused": [i for i in range(len(unused.turns)) if f"turn:{i}" not in served],
                "commands": [
                    f"opencode run --format json {'' if i == 0 else '--session <main> '}< prompt{i + 1}"
                    for i in range(len(prompts))
                ]
                + ["opencode export <sessionID>  (each session)"],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"sessions: {[s['id'] for s in sessions]}\nrequests: {served}\nwrote {args.out}")


if __name__ == "__main__":
    main()
