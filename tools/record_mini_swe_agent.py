"""Re-record real mini-swe-agent trajectories offline, end to end.

Given a Python environment with `mini-swe-agent` installed (NOT the project's venv: `python -m venv /work/venv-rec &&
/work/venv-rec/bin/pip install mini-swe-agent`), run this script with THAT interpreter. It:
  1. creates the scratch git repository of tools/scenario.py under --work,
  2. starts rlm_jupyter.testing.scripted_server in-process on 127.0.0.1 (its OpenAI chat completions endpoint),
  3. runs the `mini` CLI twice, `-y --exit-immediately -t TASK -o FILE`, with an isolated HOME,
     MSWEA_GLOBAL_CONFIG_DIR under --work, MSWEA_CONFIGURED=true (no setup wizard), the model
     `openai/gpt-4o-mini` (litellm prices it, so `cost` is real for the reported tokens) at the server's URL and a
     dummy key: once with the default `mini.yaml` (function calling: `tool` messages answer `tool_calls`), once
     with `mini_textbased.yaml` and `--model-class litellm_textbased` (the command in a fenced block, the
     observation a `user` message),
  4. copies into --out the two `.traj.json` files mini wrote, a slimmed request log and recording.json.

The script makes the model: look at app.py (text + a bash call), run the failing test (exit 1), answer once WITHOUT
a command (mini replies with its format-error message), fix the bug with a Python one-liner, rerun the test (ok) and
submit (`echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT`, after which mini adds its `exit` message).

Not part of the test suite. Example:
    /work/venv-rec/bin/python tools/record_mini_swe_agent.py --out tests/data/recorded/mini-swe-agent
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
TASK = (
    "test_sessions.py fails: an expired session is still returned by get_session in app.py. "
    "Fix the bug so the test passes."
)
FIX = (
    "python3 -c \"import pathlib; p = pathlib.Path('app.py'); "
    f'p.write_text(p.read_text().replace({BUG_LINE.strip()!r}, {FIX_LINES.strip()!r}))"'
)
SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"


def bash(cmd: str) -> dict:
    return {"name": "bash", "arguments": {"command": cmd}}


def fenced(text: str, cmd: str) -> str:
    return f"{text}\n\n```mswea_bash_command\n{cmd}\n```"


def script(mode: str) -> list[dict]:
    """One scripted answer per model call, in order, for the function-calling or the text-based config."""
    steps = [
        ("Let me look at how sessions are stored and checked.", "cat app.py"),
        ("Now I will run the test to see the failure.", TEST),
        ("The bug is clear: get_session returns the session even when it is older than TTL_SECONDS.", None),
        ("I will pop the expired session and return None instead.", FIX),
        ("Rerun the test.", TEST),
        ("The test passes now. Submitting.", SUBMIT),
    ]
    turns = []
    for text, cmd in steps:
        if cmd is None:
            turns.append({"text": text})  # no command: mini answers with its format-error message
        elif mode == "toolcall":
            turns.append({"text": text, "tool_calls": [bash(cmd)]})
        else:
            turns.append({"text": fenced(text, cmd)})
    return turns


def run_mini(
    mini: str, repo: Path, work: Path, base_url: str, config: str, model_class: str, out: Path, timeout: int
) -> str:
    env = isolated_env(
        work,
        MSWEA_GLOBAL_CONFIG_DIR=str(work / "mswea"),
        MSWEA_CONFIGURED="true",
        MSWEA_SILENT_STARTUP="1",
        OPENAI_API_KEY=API_KEY,
        OPENAI_API_BASE=base_url,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
    )
    cmd = [
        mini,
        "-y",
        "--exit-immediately",
        "-m",
        f"openai/{MODEL}",
        "--model-class",
        model_class,
        "-c",
        config,
        "-c",
        f"model.model_kwargs.api_base={base_url}",
        "-c",
        "environment.cwd=" + str(repo),
        "-t",
        TASK,
        "-o",
        str(out),
    ]
    proc = subprocess.run(
        cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0 or not out.exists():
        print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"mini exited {proc.returncode}")
    return " ".join(cmd).replace(base_url, "http://127.0.0.1:<port>/v1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="output folder (replaced)")
    ap.add_argument("--mini", default=str(Path(sys.executable).parent / "mini"), help="the mini executable")
    ap.add_argument("--work", type=Path, default=Path("/tmp/mini-record"), help="scratch folder (wiped)")
    ap.add_argument("--timeout", type=int, default=300)
    args = ap.parse_args()

    from importlib.metadata import version

    versions = {p: version(p) for p in ("mini-swe-agent", "litellm")}
    print(versions)
    shutil.rmtree(args.work, ignore_errors=True)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    runs, requests = [], []
    for mode, config, model_class in (
        ("toolcall", "mini.yaml", "litellm"),
        ("textbased", "mini_textbased.yaml", "litellm_textbased"),
    ):
        work = args.work / mode
        repo = scratch_repo(work / "repo")
        out = args.out / f"{mode}.traj.json"
        with ScriptedServer(script(mode), models=[MODEL]) as server:
            command = run_mini(args.mini, repo, work, server.base_url, config, model_class, out, args.timeout)
            served = list(server.requests)
        requests += [
            json.dumps({"run": mode, "n": r["n"], "path": r["path"], "body": r["body"]}) + "\n" for r in served
        ]
        runs.append(
            {
                "mode": mode,
                "config": config,
                "model_class": model_class,
                "command": command,
                "requests": len(served),
                "file": out.name,
                "repo_dir": str(repo),
            }
        )
        print(f"{mode}: {len(served)} requests -> {out}")
    with (args.out / "requests.jsonl.gz").open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as dst:
        dst.write("".join(requests).encode())
    (args.out / "recording.json").write_text(
        json.dumps(
            {
                "versions": versions,
                "python": sys.version.split()[0],
                "model": f"openai/{MODEL}",
                "task": TASK,
                "runs": runs,
                "scripts": {m: script(m) for m in ("toolcall", "textbased")},
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
