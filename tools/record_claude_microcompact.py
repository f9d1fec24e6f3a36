"""Record a real Claude Code session in which it MICRO-COMPACTS (clears old tool results), offline.

What triggers micro-compaction (read from the CLI's bundle, 2.1.197 and 2.1.332; see docs/xray.md):
  - the "context hint" path: when the tool results older than the 5 most recent clearable tool uses (Read, Bash, …)
    add up to >= 20,000 tokens, a request of the interactive REPL (querySource `repl_main_thread`; `claude -p` sends
    `sdk` and never does this) carries the beta `context-hint-2026-04-09` and `"context_hint": {"enabled": true}`.
    When the API rejects it with HTTP 422 or 424, Claude Code clears those old results (each one is saved to
    `<session>/tool-results/<tool_use_id>.txt` and replaced by a `<persisted-output>` pointer, else by
    "[Old tool result content cleared]") and retries;
  - it is gated by the GrowthBook flag `tengu_hazel_osprey` (default off), which Claude Code only consults when
    non-essential traffic and telemetry are allowed (no CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC / DISABLE_TELEMETRY),
    from its cached copy `cachedGrowthBookFeatures` in $CLAUDE_CONFIG_DIR/.claude.json when no fetch succeeds.

So this recorder, unlike tools/record_claude_code.py (`claude -p`, turn by turn):
  1. creates the scratch repository of tools/scenario.py under --work,
  2. seeds $CLAUDE_CONFIG_DIR/.claude.json: onboarding done, the repo trusted, the dummy key approved, and
     `cachedGrowthBookFeatures: {"tengu_hazel_osprey": true}` (the one flag; nothing else of Claude Code is changed),
  3. starts the scripted server; every request that carries `context_hint` is answered with HTTP 422 (what the API
     does when it wants the client to clear), side requests (no tools) with a short text, the rest by the script,
  4. runs the interactive `claude` in a pseudo-terminal (pexpect) with telemetry allowed but every HTTP(S) request
     that is not for 127.0.0.1 sent to a closed local proxy port (so nothing leaves the machine), types one prompt
     and waits for the scripted final answer: the model reads sessions.log and dumps it five more ways (~20 KB
     each), then makes 5 small tool calls, so the old dumps are clearable,
  5. copies into --out the session file and its tool-results/ folder, the slimmed, gzipped request log and
     recording.json (versions, the seeded flag, which requests were rejected).

Not part of the test suite. Example:
    python tools/record_claude_microcompact.py \\
        --claude /tmp/cc332/node_modules/@anthropic-ai/claude-code-linux-x64/claude \\
        --out tests/data/recorded/claude-code/2.1.332-microcompact
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
from record_claude_code import API_KEY, MODEL, TOOLS, slim_requests, write_gz  # noqa: E402
from scenario import TEST, isolated_env, scratch_repo  # noqa: E402

from rlm_jupyter.testing.scripted_server import Script, ScriptedServer  # noqa: E402

FLAG = "tengu_hazel_osprey"  # Claude Code's gate for the context-hint micro-compaction
PROMPT = "Look at sessions.log and app.py: were expired sessions served?"
FINAL = "Yes: sessions.log shows expired sessions served, and app.py returns an expired session instead of dropping it."
DUMPS = [
    "cat sessions.log DESIGN.md",
    "tac sessions.log",
    "sort sessions.log",
    "rev sessions.log",
    "sort -r sessions.log",
]
DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens there: any request not for 127.0.0.1 fails at once


def script_turns(repo: Path) -> list[dict]:
    """Six large tool results (~20 KB each, under Bash's 30,000-character limit), then five small ones."""

    def bash(command: str, description: str) -> dict:
        return {"tool_calls": [{"name": "Bash", "arguments": {"command": command, "description": description}}]}

    def read(name: str) -> dict:
        return {"tool_calls": [{"name": "Read", "arguments": {"file_path": str(repo / name)}}]}

    return [
        read("sessions.log"),
        *(bash(c, "Look at the access log") for c in DUMPS),
        read("app.py"),
        bash(TEST, "Run the expiry test"),
        read("test_sessions.py"),
        bash("git log --oneline", "Show the history"),
        read("README.md"),
        {"text": FINAL},
    ]


class Answerer:
    def __init__(self, turns: list[dict]):
        self.script = Script({"turns": turns})
        self.labels: dict[int, str] = {}

    def __call__(self, request: dict) -> dict:
        body = request["body"]
        if "context_hint" in body:
            self.labels[request["n"]] = "reject:422"
            return {"status": 422, "error": "context_hint: clear old tool results and retry"}
        if body.get("model") != MODEL or not body.get("tools"):  # title / quota side requests
            self.labels[request["n"]] = "side"
            return {"text": "Expired sessions in the access log"}
        label, entry = self.script.pick(json.dumps(body))
        self.labels[request["n"]] = label
        return entry


def seed_config(cfg: Path, repo: Path) -> dict:
    cfg.mkdir(parents=True, exist_ok=True)
    seeded = {
        "hasCompletedOnboarding": True,
        "theme": "dark",
        "numStartups": 1,
        "cachedGrowthBookFeatures": {FLAG: True},
        "customApiKeyResponses": {"approved": [API_KEY[-20:]], "rejected": []},
        "projects": {str(repo): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}},
    }
    (cfg / ".claude.json").write_text(json.dumps(seeded, indent=2))
    return seeded


def pump(child, seconds: float) -> None:
    """Read the terminal for `seconds`: the CLI blocks on a full pty buffer if nobody reads its screen."""
    import pexpect

    end = time.time() + seconds
    while time.time() < end:
        try:
            child.expect([pexpect.TIMEOUT, pexpect.EOF], timeout=min(1.0, max(0.05, end - time.time())))
        except pexpect.EOF:
            return
        if not child.isalive():
            return


def drive(binary: str, repo: Path, env: dict, answerer: Answerer, timeout: int) -> None:
    """Type the prompt into the interactive CLI and wait for the final scripted answer, then leave."""
    import pexpect  # only the recorder needs it

    child = pexpect.spawn(
        binary,
        ["--model", MODEL, "--tools", TOOLS, "--allowedTools", *TOOLS.split(",")],
        cwd=str(repo),
        env=env,
        dimensions=(50, 160),
        encoding="utf-8",
        timeout=5,
    )
    pump(child, 8)  # the start screen
    child.send(PROMPT)
    pump(child, 1)
    child.send("\r")
    deadline = time.time() + timeout
    while time.time() < deadline and answerer.script.remaining():
        pump(child, 1)
    pump(child, 4)  # the answer is written to the session file
    child.send("\x03")
    pump(child, 1)
    child.send("\x03")
    pump(child, 2)
    child.terminate(force=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--claude", required=True, help="path to the claude binary")
    ap.add_argument("--out", required=True, type=Path, help="output folder (replaced)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/claude-record-mc"), help="scratch folder (wiped)")
    ap.add_argument("--timeout", type=int, default=180, help="seconds to wait for the scripted answers")
    args = ap.parse_args()

    version = subprocess.run([args.claude, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"claude {version}")
    shutil.rmtree(args.work, ignore_errors=True)
    repo = scratch_repo(args.work / "repo")
    cfg = args.work / "config"
    seeded = seed_config(cfg, repo)
    turns = script_turns(repo)
    answerer = Answerer(turns)
    log_path = args.work / "requests.jsonl"
    with ScriptedServer(answerer, models=[MODEL], log_path=log_path) as server:
        env = isolated_env(
            args.work,
            TERM="xterm-256color",  # a TUI: the scenario's TERM=dumb / NO_COLOR would not do
            CLAUDE_CONFIG_DIR=str(cfg),
            ANTHROPIC_BASE_URL=f"http://127.0.0.1:{server.port}",
            ANTHROPIC_API_KEY=API_KEY,
            HTTPS_PROXY=DEAD_PROXY,
            HTTP_PROXY=DEAD_PROXY,
            NO_PROXY="127.0.0.1,localhost",
            DISABLE_AUTOUPDATER="1",
            DISABLE_ERROR_REPORTING="1",
            DISABLE_BUG_COMMAND="1",
            CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY="1",
        )
        env.pop("NO_COLOR", None)
        drive(args.claude, repo, env, answerer, args.timeout)
        served = [answerer.labels.get(r["n"], "?") for r in server.requests]

    projects = cfg / "projects"
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    shutil.copytree(projects, args.out / "projects", ignore=shutil.ignore_patterns("memory"))
    write_gz(args.out / "requests.jsonl.gz", slim_requests(log_path, answerer.labels))
    files = sorted(str(p.relative_to(args.out)) for p in (args.out / "projects").rglob("*") if p.is_file())
    (args.out / "recording.json").write_text(
        json.dumps(
            {
                "claude_version": version,
                "model": MODEL,
                "work_dir": str(args.work),
                "repo_dir": str(repo),
                "interactive": True,
                "prompts": [PROMPT],
                "seeded_config": {**seeded, "customApiKeyResponses": {"approved": ["(the dummy key)"], "rejected": []}},
                "proxy_for_everything_but_127.0.0.1": DEAD_PROXY,
                "session_files": files,
                "requests_served": served,
                "turns_unused": answerer.script.remaining(),
                "command": f"claude --model {MODEL} --tools {TOOLS} --allowedTools {' '.join(TOOLS.split(','))}",
            },
            indent=2,
        )
        + "\n"
    )
    print(f"requests: {served}\nwrote {args.out}")


if __name__ == "__main__":
    main()
