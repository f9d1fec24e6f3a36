"""Re-record a real Claude Code session (with real compactions) offline, end to end.

Given an installed `claude` binary (npm @anthropic-ai/claude-code, its platform package ships the binary), this:
  1. creates a scratch git repository under --work (the same tiny session store as tools/record_opencode.py),
  2. starts rlm_jupyter.testing.scripted_server in-process on 127.0.0.1 (its Anthropic Messages endpoint),
  3. runs `claude -p --output-format stream-json --verbose` turn by turn with an isolated HOME and CLAUDE_CONFIG_DIR,
     ANTHROPIC_BASE_URL pointing at that server and a dummy ANTHROPIC_API_KEY, telemetry / updates / non-essential
     traffic disabled; later turns use --resume <session id>,
  4. copies into --out: the session file(s) Claude Code wrote under $CLAUDE_CONFIG_DIR/projects/, the stream-json
     stdout of every turn (gzipped), a slimmed, gzipped request log and recording.json (ids, versions, commands).

The script makes the model: read DESIGN.md and app.py, run a failing test (Bash exit 1), read a missing file (tool
error), edit, state a decision and a rejected approach (Redis sessions). In turn 4 it reads a ~20 KB log; with
CLAUDE_CODE_AUTO_COMPACT_WINDOW=100000 and CLAUDE_AUTOCOMPACT_PCT_OVERRIDE=23 (threshold 23% of 80k = 18.4k tokens)
that crosses the auto-compact threshold, so Claude Code AUTO-compacts in the middle of turn 4. Claude Code keeps the
last messages (the log read among them) verbatim after its summary, so the window stays near the threshold and it
auto-compacts again in turn 5 (2.1.332 did so twice). Every compaction request is answered by a scripted summary.
Turn 7 is a MANUAL `/compact` with instructions, and turn 8 asks about the rejected approach after all that.
Token usage is never inflated: the server reports its estimate of the request (4 characters a token).

Not part of the test suite. Example:
    python tools/record_claude_code.py \\
        --claude /work/scratch/claude-code-latest/node_modules/@anthropic-ai/claude-code-linux-x64/claude \\
        --out tests/data/recorded/claude-code/current
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
from scenario import BUG_LINE, DOC_NEW, DOC_OLD, FIX_LINES, TEST, expired_served, scratch_repo  # noqa: E402
from scenario import isolated_env as scenario_env  # noqa: E402

from rlm_jupyter.testing.scripted_server import Script, ScriptedServer  # noqa: E402

MODEL = "claude-sonnet-4-5"  # a real id, so Claude Code knows its window (200k) and output limit
API_KEY = "sk-ant-local-test"  # dummy: the scripted server checks nothing
# Proactive auto-compact only runs when the window is configured (CLAUDE_CODE_AUTO_COMPACT_WINDOW, minimum 100k, or
# the autoCompactWindow setting); with the default "auto" window 2.1.x only compacts reactively, on a prompt-too-long
# API error. It fires when the context (last reported input tokens + new messages) reaches
# min(PCT% of (window - 20k output reserve), that - 13k) = 23% of 80k = 18.4k here (the compactions of the recording
# happened at 19.3k, 18.8k and 18.4k), so an inflated usage alone does NOT trigger it: the messages must really grow.
# With --tools Bash,Edit,Read the system prompt + tools are ~12.3k tokens (the server estimates 4 characters a
# token); turns 1-3 bring ~2.4k (DESIGN.md is there to make that history worth compacting), and turn 4's ~4.3k-token
# log read crosses the threshold. A lower PCT made 2.1.332 compact on every request (the kept tail alone was above
# it); with 2.1.332's default tool set (~12k tokens more), PCT 50 and a 56 KB log the context stayed under 40k.
AUTOCOMPACT_WINDOW = "100000"
AUTOCOMPACT_PCT = "23"
TOOLS = "Bash,Edit,Read"  # only these built-in tools: ~3k tokens of tool schemas instead of ~12k
COMPACT_MATCH = ["Your task is to create a detailed summary of the"]  # Claude Code's compaction prompt

SUMMARY = """<analysis>
The user asked about session expiry in app.py, confirmed the bug with a failing test, and asked for a fix.
</analysis>

<summary>
1. Primary Request and Intent:
   Fix session expiry in app.py so expired sessions are dropped; keep the in-process store.

2. Key Technical Concepts:
   - Module-level dict SESSIONS, TTL_SECONDS = 3600, eviction on read.

3. Files and Code Sections:
   - app.py: get_session now pops an expired session and returns None.
   - test_sessions.py: test_expired_session_is_dropped.

4. Errors and fixes:
   - `python3 test_sessions.py` failed with AssertionError: expired session was returned (exit 1); fixed in get_session.
   - config.py does not exist; TTL_SECONDS is hard-coded in app.py.

5. Problem Solving:
   Decision: we decided to keep the in-process dict with eviction on read.
   Rejected: Redis sessions, because the app runs as a single process and Redis would add a network dependency.

6. All user messages:
   - Look at app.py and tell me how sessions expire.
   - Run the test to confirm the bug.
   - Fix it. Should we move sessions to Redis while we are at it?

7. Pending Tasks:
   - None.

8. Current Work:
   The fix is in place and the test passes.

9. Optional Next Step:
   Wait for the user's next request.
</summary>"""

SUMMARY2 = SUMMARY.replace(
    "8. Current Work:\n   The fix is in place and the test passes.",
    "8. Current Work:\n   The fix and the get_session docstring are in place; the test passes.",
)


def build_prompts_and_script(repo: Path) -> tuple[list[str], dict]:
    """The user prompts (one `claude -p` each) and the model's scripted answers, in request order."""
    app = str(repo / "app.py")
    prompts = [
        "Read DESIGN.md, then look at app.py and tell me how sessions expire.",
        "Run the test to confirm the bug.",
        "Fix it. Should we move sessions to Redis while we are at it?",
        "Check sessions.log: how many expired sessions were served before the fix?",
        "Add a docstring to get_session and rerun the test.",
        "What did we decide about Redis, and why?",
        "/compact Keep the Redis decision and the failed test run.",
        "Which approach did we reject, and what did the failing test print?",
    ]
    turns = [
        # turn 1
        {"note": "turn1", "tool_calls": [{"name": "Read", "arguments": {"file_path": str(repo / "DESIGN.md")}}]},
        {"tool_calls": [{"name": "Read", "arguments": {"file_path": app}}]},
        {
            "text": "Sessions live in the module-level dict SESSIONS with a TTL of 3600 s. get_session checks the age "
            "but returns the expired session anyway instead of dropping it: that is a bug."
        },
        # turn 2: a failing command, then a tool error
        {
            "note": "turn2",
            "tool_calls": [{"name": "Bash", "arguments": {"command": TEST, "description": "Run the expiry test"}}],
        },
        {
            "text": "The test fails as expected. Let me check whether a config file overrides the TTL.",
            "tool_calls": [{"name": "Read", "arguments": {"file_path": str(repo / "config.py")}}],
        },
        {
            "text": "Confirmed: `python3 test_sessions.py` exits 1 with `AssertionError: expired session was returned`. "  # noqa: E501
            "There is no config.py, so TTL_SECONDS is hard-coded in app.py."
        },
        # turn 3: edit, passing test, decision + rejected approach; the last answer reports a near-full window
        {"note": "turn3", "tool_calls": [{"name": "Read", "arguments": {"file_path": app}}]},
        {
            "tool_calls": [
                {"name": "Edit", "arguments": {"file_path": app, "old_string": BUG_LINE, "new_string": FIX_LINES}}
            ]
        },
        {"tool_calls": [{"name": "Bash", "arguments": {"command": TEST, "description": "Rerun the expiry test"}}]},
        {
            "text": "Fixed: get_session now pops an expired session and returns None, and the test prints ok.\n\n"
            "Decision: we decided to keep the in-process dict with eviction on read. We rejected Redis sessions "
            "because the app runs as a single process and Redis would add a network dependency and a "
            "deployment step for no gain."
        },
        # turn 4: a large read fills the window; Claude Code auto-compacts before the next request
        {"note": "turn4", "tool_calls": [{"name": "Read", "arguments": {"file_path": str(repo / "sessions.log")}}]},
        {
            "note": "turn4 after the auto compaction",
            "text": f"sessions.log has {expired_served()} requests marked "
            "EXPIRED-SERVED: sessions older than 3600 s were served before the fix.",
        },
        # turn 5
        {"note": "turn5", "tool_calls": [{"name": "Read", "arguments": {"file_path": app}}]},
        {
            "tool_calls": [
                {"name": "Edit", "arguments": {"file_path": app, "old_string": DOC_OLD, "new_string": DOC_NEW}}
            ]
        },
        {"tool_calls": [{"name": "Bash", "arguments": {"command": TEST, "description": "Rerun the expiry test"}}]},
        {"text": "The docstring is in place and the test still passes."},
        # turn 6
        {
            "note": "turn6",
            "text": "We decided to keep sessions in the in-process dict with eviction on read. "
            "We rejected Redis sessions because the app is a single process and Redis would "
            "add a network dependency for no gain.",
        },
        # turn 7 is /compact: answered by the second summary, no turn entry
        # turn 8 (after the manual compaction)
        {
            "note": "turn8",
            "text": "We rejected Redis sessions (single process, extra network dependency). The failing "
            "run printed `AssertionError: expired session was returned` and exited 1.",
        },
    ]
    return prompts, {"summaries": [SUMMARY, SUMMARY2], "turns": turns}


class Answerer:
    """Compaction requests (the prompt is in the LAST message) get a summary; the rest the next scripted turn.

    A substring rule on the whole body would not do: the /compact instructions stay in the history afterwards.
    Claude Code may compact more often than planned (its preserved tail can keep the large read in the window), so
    every compaction request is answered: the first with SUMMARY, later ones with SUMMARY2."""

    def __init__(self, script: dict):
        self.summaries = list(script["summaries"])
        self.script = Script({"turns": script["turns"]})
        self.labels: dict[int, str] = {}
        self.compactions = 0

    def __call__(self, request: dict) -> dict:
        messages = request["body"].get("messages") or [{}]
        if any(m in json.dumps(messages[-1]) for m in COMPACT_MATCH):
            self.labels[request["n"]] = f"summary:{self.compactions}"
            self.compactions += 1
            return {"text": self.summaries[min(self.compactions, len(self.summaries)) - 1]}
        label, entry = self.script.pick(json.dumps(request["body"]))
        self.labels[request["n"]] = label
        return entry


def isolated_env(work: Path, port: int) -> dict:
    (work / "config").mkdir(parents=True, exist_ok=True)
    return scenario_env(
        work,
        PATH="/usr/local/bin:/usr/bin:/bin",
        CLAUDE_CONFIG_DIR=str(work / "config"),
        ANTHROPIC_BASE_URL=f"http://127.0.0.1:{port}",
        ANTHROPIC_API_KEY=API_KEY,
        DISABLE_TELEMETRY="1",
        DISABLE_ERROR_REPORTING="1",
        DISABLE_AUTOUPDATER="1",
        DISABLE_BUG_COMMAND="1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_NON_ESSENTIAL_MODEL_CALLS="1",
        CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY="1",
        CLAUDE_CODE_AUTO_COMPACT_WINDOW=AUTOCOMPACT_WINDOW,
        CLAUDE_AUTOCOMPACT_PCT_OVERRIDE=AUTOCOMPACT_PCT,
    )


def run_turn(
    binary: str, repo: Path, env: dict, prompt: str, session: str | None, timeout: int
) -> tuple[list, str, str]:
    """One `claude -p` turn: (stream-json events, session id, raw stdout)."""
    cmd = [
        binary,
        "-p",
        prompt,
        "--output-format",
        "stream-json",
        "--verbose",
        "--model",
        MODEL,
        "--tools",
        TOOLS,
        "--allowedTools",
        *TOOLS.split(","),
    ] + (["--resume", session] if session else [])
    proc = subprocess.run(
        cmd,
        cwd=repo,
        env={**env, "PWD": str(repo)},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    events = []
    for line in proc.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            print(f"  non-JSON stdout: {line[:200]}", file=sys.stderr)
    if proc.returncode != 0:
        print(f"  exit {proc.returncode}: {proc.stderr[-2000:]}", file=sys.stderr)
    sid = next((e.get("session_id") for e in events if e.get("session_id")), None)
    return events, sid or session, proc.stdout


def write_gz(path: Path, data: bytes) -> None:
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as dst:  # mtime 0: reproducible
        dst.write(data)


def slim_requests(log_path: Path, labels: dict[int, str]) -> bytes:
    """The request log with the (large, constant) system prompt and tool list kept only where they change."""
    out, last = [], {}
    for line in log_path.read_text().splitlines():
        rec = json.loads(line)
        body = rec["body"]
        rec["answered_with"] = labels.get(rec["n"], rec.get("answered_with"))
        for key in ("system", "tools"):
            if key in body and body[key] == last.get(key):
                body[key] = f"(same as the previous request with {key})"
            elif key in body:
                last[key] = body[key]
        out.append(json.dumps(rec) + "\n")
    return "".join(out).encode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--claude", required=True, help="path to the claude binary")
    ap.add_argument("--out", required=True, type=Path, help="output folder (replaced)")
    ap.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/claude-record"),
        help="scratch folder (wiped); its repo path ends up inside the recorded sessions",
    )
    ap.add_argument("--timeout", type=int, default=300, help="seconds per claude invocation")
    args = ap.parse_args()

    version = subprocess.run([args.claude, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"claude {version}")
    shutil.rmtree(args.work, ignore_errors=True)
    repo = args.work / "repo"
    scratch_repo(repo)
    prompts, script = build_prompts_and_script(repo)
    (args.work / "script.json").write_text(json.dumps(script, indent=2))
    log_path = args.work / "requests.jsonl"

    runs, session = [], None
    answerer = Answerer(script)
    with ScriptedServer(answerer, models=[MODEL], log_path=log_path) as server:
        env = isolated_env(args.work, server.port)
        for i, prompt in enumerate(prompts, 1):
            print(f"turn {i}: {prompt}")
            events, session, stdout = run_turn(args.claude, repo, env, prompt, session, args.timeout)
            runs.append({"prompt": prompt, "session": session, "events": events, "stdout": stdout})
        served = [answerer.labels.get(r["n"], "?") for r in server.requests]
        unused = [i for i in range(len(script["turns"])) if f"turn:{i}" not in served]

    projects = args.work / "config" / "projects"
    shutil.rmtree(args.out, ignore_errors=True)
    (args.out / "stream-json").mkdir(parents=True)
    shutil.copytree(projects, args.out / "projects", ignore=shutil.ignore_patterns("memory"))
    for i, run in enumerate(runs, 1):  # stdout byte for byte, gzipped (they repeat much of the session file)
        write_gz(args.out / "stream-json" / f"turn{i}.jsonl.gz", run["stdout"].encode())
    write_gz(args.out / "requests.jsonl.gz", slim_requests(log_path, answerer.labels))
    files = sorted(str(p.relative_to(args.out)) for p in (args.out / "projects").rglob("*") if p.is_file())
    (args.out / "recording.json").write_text(
        json.dumps(
            {
                "claude_version": version,
                "model": MODEL,
                "work_dir": str(args.work),
                "repo_dir": str(repo),
                "autocompact_window": AUTOCOMPACT_WINDOW,
                "autocompact_pct_override": AUTOCOMPACT_PCT,
                "prompts": prompts,
                "sessions": sorted({r["session"] for r in runs}),
                "session_files": files,
                "requests_served": served,
                "turns_unused": unused,
                "commands": [
                    f"claude -p <prompt{i + 1}> --output-format stream-json --verbose --model {MODEL} "
                    f"--tools {TOOLS} --allowedTools {' '.join(TOOLS.split(','))}"
                    f"{'' if i == 0 else ' --resume <session>'}"
                    for i in range(len(prompts))
                ],
            },
            indent=2,
        )
        + "\n"
    )
    print(
        f"sessions: {sorted({r['session'] for r in runs})}\nrequests: {served}\nunused turns: {unused}\n"
        f"wrote {args.out}"
    )


if __name__ == "__main__":
    main()
