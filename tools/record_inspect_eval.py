"""Re-record real inspect_ai evaluation logs (`.eval` and `.json`) offline, end to end.

Given a Python environment with `inspect-ai` and `openai` installed (NOT the project's venv: `python -m venv
/work/venv-rec && /work/venv-rec/bin/pip install inspect-ai openai`), run this script with THAT interpreter. It:
  1. creates the scratch git repository of tools/scenario.py under --work and writes `task.py` there: a task of two
     samples solved by inspect's `basic_agent` with its `bash` tool in the `local` sandbox (a temporary folder
     that gets the repo's app.py and test_sessions.py as sample `files`),
  2. starts rlm_jupyter.testing.scripted_server in-process on 127.0.0.1 (OpenAI chat completions),
  3. runs the `inspect eval` CLI twice (`--log-format eval`, then `--log-format json`) with `--model
     openai/gpt-4o-mini`, OPENAI_BASE_URL at the server, a dummy OPENAI_API_KEY, `--max-samples 1` (the samples run
     one after the other, so the script is served in order), an isolated HOME and INSPECT_LOG_DIR,
  4. copies into --out the two logs inspect wrote, a slimmed request log and recording.json.

Sample "bug": the model runs the failing test (exit 1), fixes app.py with a Python one-liner, reruns it (ok) and
calls `submit`. Sample "ttl": the model answers once without a tool call (basic_agent then nudges it with its
continue message), calls bash with a wrong argument name (inspect records the tool's parsing error), greps
TTL_SECONDS and submits "3600". The includes scorer marks both correct.

Not part of the test suite. Example:
    PYTHONPATH=. /work/venv-rec/bin/python tools/record_inspect_eval.py --out tests/data/recorded/inspect
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scenario import API_KEY, BUG_LINE, FIX_LINES, TEST, isolated_env, scratch_repo  # noqa: E402

from rlm_jupyter.testing.scripted_server import ScriptedServer  # noqa: E402

MODEL = "gpt-4o-mini"
BUG = "Make `python3 test_sessions.py` pass: expired sessions must not be returned by get_session in app.py."
TTL = "What is the session time-to-live in seconds in app.py? Answer with the number only."
FIX = (
    "python3 -c \"import pathlib; p = pathlib.Path('app.py'); "
    f'p.write_text(p.read_text().replace({BUG_LINE.strip()!r}, {FIX_LINES.strip()!r}))"'
)

TASK_PY = '''"""Written by tools/record_inspect_eval.py: two samples on the scratch repository, basic_agent + bash."""
from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.scorer import includes
from inspect_ai.solver import basic_agent
from inspect_ai.tool import bash

FILES = {files!r}  # copied into each sample's sandbox (a fresh temporary folder)


@task
def session_store():
    return Task(
        dataset=[Sample(id="bug", input={bug!r}, target="fixed", files=FILES),
                 Sample(id="ttl", input={ttl!r}, target="3600", files=FILES)],
        solver=basic_agent(tools=[bash(timeout=60)], max_attempts=1, message_limit=30),
        scorer=includes(),
        sandbox="local",
    )
'''


def task_py(repo: Path) -> str:
    files = {name: str(repo / name) for name in ("app.py", "test_sessions.py")}
    return TASK_PY.replace("{bug!r}", repr(BUG)).replace("{ttl!r}", repr(TTL)).replace("{files!r}", repr(files))


def sh(cmd: str) -> dict:
    return {"name": "bash", "arguments": {"command": cmd}}


def submit(answer: str) -> dict:
    return {"name": "submit", "arguments": {"answer": answer}}


def script() -> dict:
    """Each turn matches its sample's prompt, so a turn can only answer the sample it was written for."""
    bug, ttl = "Make `python3 test_sessions.py` pass", "time-to-live in seconds"
    return {
        "turns": [
            {"match": bug, "text": "Let me run the test first.", "tool_calls": [sh(TEST)]},
            {
                "match": bug,
                "text": "get_session returns expired sessions; pop them and return None.",
                "tool_calls": [sh(FIX)],
            },
            {"match": bug, "tool_calls": [sh(TEST)]},
            {"match": bug, "text": "The test passes.", "tool_calls": [submit("fixed: expired sessions are dropped")]},
            {"match": ttl, "text": "I think it is configured in app.py."},
            {"match": ttl, "tool_calls": [{"name": "bash", "arguments": {"cmd": "cat app.py"}}]},  # wrong argument
            {"match": ttl, "tool_calls": [sh("grep -n TTL_SECONDS app.py")]},
            {"match": ttl, "tool_calls": [submit("3600")]},
        ]
    }


def run_eval(inspect: str, repo: Path, work: Path, base_url: str, fmt: str, logs: Path, timeout: int) -> str:
    env = isolated_env(
        work, OPENAI_API_KEY=API_KEY, OPENAI_BASE_URL=base_url, INSPECT_LOG_DIR=str(logs), INSPECT_DISPLAY="plain"
    )
    cmd = [
        inspect,
        "eval",
        "task.py",
        "--model",
        f"openai/{MODEL}",
        "--max-samples",
        "1",
        "--log-format",
        fmt,
        "--log-dir",
        str(logs),
        "--no-log-realtime",
    ]
    proc = subprocess.run(
        cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"inspect eval exited {proc.returncode}")
    return " ".join(cmd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="output folder (replaced)")
    ap.add_argument("--inspect", default=str(Path(sys.executable).parent / "inspect"), help="the inspect executable")
    ap.add_argument("--work", type=Path, default=Path("/tmp/inspect-record"), help="scratch folder (wiped)")
    ap.add_argument("--timeout", type=int, default=600)
    args = ap.parse_args()

    from importlib.metadata import version

    versions = {p: version(p) for p in ("inspect-ai", "openai")}
    print(versions)
    shutil.rmtree(args.work, ignore_errors=True)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    runs, requests = [], []
    for fmt in ("eval", "json"):
        work = args.work / fmt
        repo = scratch_repo(work / "repo")
        (repo / "task.py").write_text(task_py(repo))
        logs = work / "logs"
        with ScriptedServer(script(), models=[MODEL]) as server:
            command = run_eval(args.inspect, repo, work, server.base_url, fmt, logs, args.timeout)
            served = list(server.requests)
        (log,) = sorted(logs.glob(f"*.{fmt}"))
        shutil.copy2(log, args.out / log.name)
        requests += [json.dumps({"run": fmt, "n": r["n"], "path": r["path"], "body": r["body"]}) + "\n" for r in served]
        runs.append(
            {"log_format": fmt, "command": command, "requests": len(served), "file": log.name, "repo_dir": str(repo)}
        )
        print(f"{fmt}: {len(served)} requests -> {log.name}")
    with (args.out / "requests.jsonl.gz").open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as dst:
        dst.write("".join(requests).encode())
    (args.out / "recording.json").write_text(
        json.dumps(
            {
                "versions": versions,
                "python": sys.version.split()[0],
                "model": f"openai/{MODEL}",
                "task_py": task_py(Path(runs[-1]["repo_dir"])),
                "runs": runs,
                "script": script(),
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
