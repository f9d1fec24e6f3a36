"""Re-record a real Codex CLI rollout (with real compactions) offline, end to end.

Given an installed `codex` binary (npm @openai/codex; its platform package ships the musl binary), this:
  1. creates a scratch git repository under --work (the session store of tools/record_opencode.py plus the
     DESIGN.md and sessions.log of tools/record_claude_code.py),
  2. starts rlm_jupyter.testing.scripted_server in-process on 127.0.0.1 (its OpenAI Responses endpoint, streamed),
  3. writes an isolated CODEX_HOME/config.toml: a custom model provider `scripted` (wire_api "responses", base_url the
     server, env_key SCRIPTED_API_KEY = a dummy key), a small model_context_window and model_auto_compact_token_limit,
     approval_policy never, sandbox danger-full-access, analytics / feedback / update checks / history off,
  4. runs `codex exec --json` for turn 1 and `codex exec resume --json <thread id>` for the next turns; a MANUAL
     compaction is asked through `codex app-server` (JSON-RPC over stdio: initialize, thread/resume,
     thread/compact/start), since `codex exec` has no /compact,
  5. copies into --out: the rollout file(s) exactly as Codex wrote them under $CODEX_HOME/sessions/, the --json stdout
     of every exec, the app-server transcript, a slimmed gzipped request log and recording.json.

The script makes the model: run `cat` on files (exec_command), run a failing test (exit 1), cat a missing file (exit 1),
edit with apply_patch (a freeform custom tool), state a decision and a rejected approach (Redis sessions), then cat
a ~20 KB log. Codex compacts when the reported total tokens of a response reach model_auto_compact_token_limit: the
request after that `cat` crosses it, so Codex AUTO-compacts in the middle of turn 4 (its "CONTEXT CHECKPOINT
COMPACTION" request is answered by a scripted summary). After turn 6 the app-server compacts MANUALLY, and turn 7
asks about the rejected approach. Token usage is never inflated: the server reports its estimate (4 chars a token).

Not part of the test suite. Example:
    python tools/record_codex.py \\
        --codex /work/scratch/codex/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex \\
        --out tests/data/recorded/codex
"""

from __future__ import annotations

import argparse
import gzip
import json
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
from scenario import BUG_LINE, DOC_NEW, DOC_OLD, FIX_LINES, TEST, expired_served, scratch_repo  # noqa: E402
from scenario import isolated_env as scenario_env  # noqa: E402

from rlm_jupyter.testing.scripted_server import Script, ScriptedServer  # noqa: E402

MODEL = "gpt-5.5"  # a slug this Codex knows (no "fallback metadata" warning); its tools include apply_patch
API_KEY = "sk-local-test"  # dummy: the scripted server checks nothing
# The first request (instructions + tools + environment) is ~9.6k tokens by the server's estimate; turns 1-3 add
# ~3k; the ~5k-token `cat sessions.log` in turn 4 crosses the limit; after the compaction ~11k remain.
CONTEXT_WINDOW = 32000
AUTO_COMPACT_LIMIT = 16000
COMPACT_MATCH = "CONTEXT CHECKPOINT COMPACTION"  # Codex's local (non-OpenAI provider) compaction prompt

SUMMARY = """Progress so far:
- app.py keeps sessions in the module-level dict SESSIONS, TTL_SECONDS = 3600.
- `python3 test_sessions.py` failed with AssertionError: expired session was returned (exit 1).
- There is no config.py (cat failed); TTL_SECONDS is hard-coded in app.py.
- Fixed get_session: an expired session is popped and None is returned; the test now prints ok.

Key decisions:
- We decided to keep the in-process dict with eviction on read.
- Rejected: Redis sessions, because the app runs as a single process and Redis would add a network dependency.

Next steps:
- Count the EXPIRED-SERVED lines of sessions.log for the user."""

SUMMARY2 = SUMMARY.replace(
    "Next steps:\n- Count the EXPIRED-SERVED lines of sessions.log for the user.",
    f"- sessions.log had {expired_served()} EXPIRED-SERVED requests before the fix.\n"
    "- Added a docstring to get_session; the test still passes.\n\nNext steps:\n- None.",
)


def patch(old: str, new: str) -> str:
    """An apply_patch envelope replacing the lines `old` by `new` in app.py."""
    minus = "".join(f"-{line}\n" for line in old.rstrip("\n").split("\n"))
    plus = "".join(f"+{line}\n" for line in new.rstrip("\n").split("\n"))
    return f"*** Begin Patch\n*** Update File: app.py\n@@\n{minus}{plus}*** End Patch\n"


def sh(cmd: str) -> dict:
    return {"name": "exec_command", "arguments": {"cmd": cmd}}


def build_prompts_and_script() -> tuple[list[str], dict]:
    """The user prompts (one `codex exec` each; None = the manual compaction) and the scripted answers in order."""
    prompts: list[str | None] = [
        "Read DESIGN.md, then look at app.py and tell me how sessions expire.",
        "Run the test to confirm the bug.",
        "Fix it. Should we move sessions to Redis while we are at it?",
        "Check sessions.log: how many expired sessions were served before the fix?",
        "Add a docstring to get_session and rerun the test.",
        "What did we decide about Redis, and why?",
        None,  # manual compaction (app-server thread/compact/start)
        "Which approach did we reject, and what did the failing test print?",
    ]
    apply_fix = {"name": "apply_patch", "type": "custom", "arguments": patch(BUG_LINE, FIX_LINES)}
    apply_doc = {"name": "apply_patch", "type": "custom", "arguments": patch(DOC_OLD, DOC_NEW)}
    turns = [
        # turn 1
        {"note": "turn1", "tool_calls": [sh("cat DESIGN.md")]},
        {"tool_calls": [sh("cat app.py")]},
        {
            "text": "Sessions live in the module-level dict SESSIONS with a TTL of 3600 s. get_session checks the age "
            "but returns the expired session anyway instead of dropping it: that is a bug."
        },
        # turn 2: a failing command, then another failing command (missing file)
        {"note": "turn2", "tool_calls": [sh(TEST)]},
        {
            "text": "The test fails as expected. Let me check whether a config file overrides the TTL.",
            "tool_calls": [sh("cat config.py")],
        },
        {
            "text": "Confirmed: `python3 test_sessions.py` exits 1 with `AssertionError: expired session was returned`. "  # noqa: E501
            "There is no config.py, so TTL_SECONDS is hard-coded in app.py."
        },
        # turn 3: edit, passing test, decision + rejected approach
        {"note": "turn3", "tool_calls": [apply_fix]},
        {"tool_calls": [sh(TEST)]},
        {
            "text": "Fixed: get_session now pops an expired session and returns None, and the test prints ok.\n\n"
            "Decision: we decided to keep the in-process dict with eviction on read. We rejected Redis sessions "
            "because the app runs as a single process and Redis would add a network dependency and a "
            "deployment step for no gain."
        },
        # turn 4: a large output crosses the auto-compact limit; Codex compacts before the next request
        {"note": "turn4", "tool_calls": [sh("cat sessions.log")]},
        {
            "note": "turn4 after the auto compaction",
            "text": f"sessions.log has {expired_served()} requests marked "
            "EXPIRED-SERVED: sessions older than 3600 s were served before the fix.",
        },
        # turn 5
        {"note": "turn5", "tool_calls": [apply_doc]},
        {"tool_calls": [sh(TEST)]},
        {"text": "The docstring is in place and the test still passes."},
        # turn 6
        {
            "note": "turn6",
            "text": "We decided to keep sessions in the in-process dict with eviction on read. "
            "We rejected Redis sessions because the app is a single process and Redis would "
            "add a network dependency for no gain.",
        },
        # (manual compaction: a summary, no turn entry)
        {
            "note": "turn7",
            "text": "We rejected Redis sessions (single process, extra network dependency). The failing "
            "run printed `AssertionError: expired session was returned` and exited 1.",
        },
    ]
    return prompts, {"summaries": [SUMMARY, SUMMARY2], "turns": turns}


class Answerer:
    """Compaction requests (the compaction prompt is the LAST input item) get a summary; the rest the next turn."""

    def __init__(self, script: dict):
        self.summaries = list(script["summaries"])
        self.script = Script({"turns": script["turns"]})
        self.labels: dict[int, str] = {}
        self.compactions = 0

    def __call__(self, request: dict) -> dict:
        items = request["body"].get("input") or [{}]
        if COMPACT_MATCH in json.dumps(items[-1]):
            self.labels[request["n"]] = f"summary:{self.compactions}"
            self.compactions += 1
            return {"text": self.summaries[min(self.compactions, len(self.summaries)) - 1]}
        label, entry = self.script.pick(json.dumps(request["body"]))
        self.labels[request["n"]] = label
        return entry


def write_config(codex_home: Path, base_url: str) -> str:
    text = f"""# written by tools/record_codex.py: offline, scripted provider, small window
model = "{MODEL}"
model_provider = "scripted"
model_context_window = {CONTEXT_WINDOW}
model_auto_compact_token_limit = {AUTO_COMPACT_LIMIT}
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false

[model_providers.scripted]
name = "Scripted local server"
base_url = "{base_url}"
env_key = "SCRIPTED_API_KEY"
wire_api = "responses"

[analytics]
enabled = false

[feedback]
enabled = false

[history]
persistence = "none"
"""
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(text)
    return text


def isolated_env(work: Path) -> dict:
    (work / "codex").mkdir(parents=True, exist_ok=True)
    return scenario_env(
        work, PATH="/usr/local/bin:/usr/bin:/bin", CODEX_HOME=str(work / "codex"), SCRIPTED_API_KEY=API_KEY
    )


def run_exec(
    binary: str, repo: Path, env: dict, prompt: str, thread: str | None, timeout: int
) -> tuple[list, str, str]:
    """One `codex exec [resume]` turn: (JSONL events, thread id, raw stdout)."""
    cmd = [binary, "exec"] + (["resume"] if thread else []) + ["--json"] + ([thread] if thread else []) + [prompt]
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
    tid = next((e.get("thread_id") for e in events if e.get("type") == "thread.started"), None)
    return events, tid or thread, proc.stdout


class AppServer:
    """A minimal JSON-RPC client of `codex app-server` over stdio (JSONL, no "jsonrpc" header)."""

    def __init__(self, binary: str, repo: Path, env: dict):
        self.proc = subprocess.Popen(
            [binary, "app-server"],
            cwd=repo,
            env={**env, "PWD": str(repo)},
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue = queue.Queue()
        self.transcript: list[dict] = []
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, method: str, params: dict | None = None, request: bool = True) -> int | None:
        msg: dict = {"method": method}
        if request:
            self.next_id += 1
            msg["id"] = self.next_id
        if params is not None:
            msg["params"] = params
        self.transcript.append({"sent": msg})
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return msg.get("id")

    def wait(self, done, timeout: float) -> dict:
        """Read messages until done(msg) is true; a JSON-RPC error answer raises."""
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                raise RuntimeError(f"codex app-server exited: {self.proc.stderr.read()[-2000:]}")
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue
            self.transcript.append({"received": msg})
            if "error" in msg:
                raise RuntimeError(f"codex app-server error: {msg['error']}")
            if done(msg):
                return msg

    def request(self, method: str, params: dict, timeout: float = 120) -> dict:
        rid = self.send(method, params)
        return self.wait(lambda m: m.get("id") == rid, timeout)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def manual_compaction(binary: str, repo: Path, env: dict, thread: str, timeout: int) -> list[dict]:
    """initialize -> thread/resume -> thread/compact/start, then wait for the compaction turn to complete."""
    srv = AppServer(binary, repo, env)
    try:
        srv.request("initialize", {"clientInfo": {"name": "rlm-jupyter-recorder", "title": None, "version": "1"}})
        srv.send("initialized", request=False)
        srv.request("thread/resume", {"threadId": thread})
        srv.request("thread/compact/start", {"threadId": thread})
        srv.wait(lambda m: m.get("method") == "turn/completed", timeout)
    finally:
        srv.close()
    return srv.transcript


def slim_requests(requests: list[dict], labels: dict[int, str]) -> bytes:
    """The request log; the (large, constant) tools list is kept only where it changes."""
    out, last_tools = [], None
    for rec in requests:
        body = dict(rec["body"])
        if "tools" in body:
            if body["tools"] == last_tools:
                body["tools"] = "(same as the previous request with tools)"
            else:
                last_tools = body["tools"]
        out.append(
            json.dumps({"n": rec["n"], "path": rec["path"], "answered_with": labels.get(rec["n"], "?"), "body": body})
            + "\n"
        )
    return "".join(out).encode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--codex", required=True, help="path to the codex binary")
    ap.add_argument("--out", required=True, type=Path, help="output folder (replaced)")
    ap.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/codex-record"),
        help="scratch folder (wiped); its repo path ends up inside the recorded rollout",
    )
    ap.add_argument("--timeout", type=int, default=300, help="seconds per codex invocation")
    args = ap.parse_args()

    version = subprocess.run([args.codex, "--version"], capture_output=True, text=True).stdout.strip()
    print(version)
    shutil.rmtree(args.work, ignore_errors=True)
    repo = args.work / "repo"
    scratch_repo(repo)
    prompts, script = build_prompts_and_script()
    (args.work / "script.json").write_text(json.dumps(script, indent=2))

    runs, thread, app_transcript = [], None, []
    answerer = Answerer(script)
    with ScriptedServer(answerer, models=[MODEL]) as server:
        env = isolated_env(args.work)
        config = write_config(args.work / "codex", server.base_url)
        for i, prompt in enumerate(prompts, 1):
            if prompt is None:
                print(f"turn {i}: manual compaction (app-server thread/compact/start)")
                app_transcript = manual_compaction(args.codex, repo, env, thread, args.timeout)
                runs.append({"prompt": None, "thread": thread, "events": [], "stdout": ""})
                continue
            print(f"turn {i}: {prompt}")
            events, thread, stdout = run_exec(args.codex, repo, env, prompt, thread, args.timeout)
            runs.append({"prompt": prompt, "thread": thread, "events": events, "stdout": stdout})
        requests = list(server.requests)
    served = [answerer.labels.get(r["n"], "?") for r in requests]
    unused = [i for i in range(len(script["turns"])) if f"turn:{i}" not in served]

    shutil.rmtree(args.out, ignore_errors=True)
    (args.out / "exec-json").mkdir(parents=True)
    shutil.copytree(args.work / "codex" / "sessions", args.out / "sessions")
    for i, run in enumerate(runs, 1):
        if run["prompt"] is not None:  # stdout byte for byte
            (args.out / "exec-json" / f"turn{i}.jsonl").write_text(run["stdout"])
    (args.out / "app-server-compact.jsonl").write_text("".join(json.dumps(m) + "\n" for m in app_transcript))
    with (args.out / "requests.jsonl.gz").open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as dst:
        dst.write(slim_requests(requests, answerer.labels))
    files = sorted(str(p.relative_to(args.out)) for p in (args.out / "sessions").rglob("*") if p.is_file())
    (args.out / "recording.json").write_text(
        json.dumps(
            {
                "codex_version": version,
                "model": MODEL,
                "work_dir": str(args.work),
                "repo_dir": str(repo),
                "model_context_window": CONTEXT_WINDOW,
                "model_auto_compact_token_limit": AUTO_COMPACT_LIMIT,
                "config_toml": config.replace(server.base_url, "http://127.0.0.1:<port>/v1"),
                "prompts": prompts,
                "threads": sorted({r["thread"] for r in runs if r["thread"]}),
                "session_files": files,
                "requests_served": served,
                "turns_unused": unused,
                "commands": ["codex exec --json <prompt1>"]
                + [
                    (
                        "codex app-server: initialize, initialized, thread/resume, thread/compact/start"
                        if p is None
                        else f"codex exec resume --json <thread> <prompt{i + 1}>"
                    )
                    for i, p in enumerate(prompts)
                    if i > 0
                ],
            },
            indent=2,
        )
        + "\n"
    )
    print(
        f"threads: {sorted({r['thread'] for r in runs if r['thread']})}\nrequests: {served}\n"
        f"unused turns: {unused}\nwrote {args.out}"
    )


if __name__ == "__main__":
    main()
