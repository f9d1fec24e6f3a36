"""The CLI, rj.rlm and the trace writer at their edges (issue 19): every failure is one line that says what happened,
with a non-zero exit, and nothing reaches a model that should not. Real processes: the installed `rlm-jupyter`
entry point, run against the real scripted model server for the failing-server cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import rlm_jupyter as rj
from rlm_jupyter.engine.options import MIN_MEMORY_MB, OptionError
from rlm_jupyter.engine.worker import Limits
from rlm_jupyter.testing import ScriptedServer
from rlm_jupyter.trace import Trace, TraceWriter
from rlm_jupyter.trace.writer import TraceInUseError

REPO = Path(__file__).parents[1]
CLI = Path(sys.executable).parent / "rlm-jupyter"
CLAUDE = "claude-code/codemie-session-9eda1058.jsonl"


def ask(*args: str, server: ScriptedServer | None = None, timeout: float = 180, wait: bool = True):
    """`rlm-jupyter ask ...` as a user runs it; with `server`, hosted-model calls go to the scripted server."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("RLM_JUPYTER_DEBUG", None)
    if server is not None:
        env.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-scripted-0000000000000000")
    cmd = [str(CLI), "ask", *args]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize(
    ("fault", "reason", "requests"),
    [
        ({"status": 401, "error": "Incorrect API key provided"}, "auth failed", 1),  # never retried
        ({"status": 500}, "server error", None),
        ({"raw": "<html>502 Bad Gateway</html>"}, "bad response", None),
        ({"no_choices": True}, "bad response", None),
    ],
)
def test_a_failing_model_server_is_named_with_a_nonzero_exit(samples, tmp_path, fault, reason, requests):
    trace = tmp_path / "t.rlmtrace.jsonl"
    with ScriptedServer([], exhausted=fault) as srv:
        proc = ask(
            "Which write was rejected?",
            "--context",
            str(samples / CLAUDE),
            "--model",
            "openai/scripted-model",
            "--trace",
            str(trace),
            server=srv,
        )
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    assert line.startswith(f"rlm-jupyter: the run failed: {reason}: openai/scripted-model: ") and str(trace) in line
    assert "litellm." not in line and "<APIResponse" not in line  # the provider's words, not the wrapping
    assert proc.stdout == ""
    if requests is not None:
        assert len(srv.requests) == requests
    assert Trace.load(trace).of_type("error"), "the trace keeps the error too"


def test_ask_json_has_the_failure_reason(samples, tmp_path):
    with ScriptedServer([], exhausted={"status": 401}) as srv:
        proc = ask(
            "q about writes",
            "--context",
            str(samples / CLAUDE),
            "--model",
            "openai/scripted-model",
            "--trace",
            str(tmp_path / "t.jsonl"),
            "--json",
            server=srv,
        )
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "error" and out["answer"] is None
    assert out["error"]["kind"] == "auth" and out["error"]["reason"] == "auth failed"
    assert "scripted HTTP 401" in out["error"]["message"]


@pytest.mark.parametrize("kind", ["empty", "junk"])
def test_ask_with_no_sessions_stops_before_any_model_call(tmp_path, kind):
    folder = tmp_path / kind
    folder.mkdir()
    if kind == "junk":
        (folder / "notes.jsonl").write_bytes(b"garbage\x00\x01\n")
        (folder / "readme.txt").write_text("hello")
    with ScriptedServer(["FINAL(never asked)"]) as srv:
        proc = ask(
            "Which write was rejected?",
            "--context",
            str(folder),
            "--model",
            "openai/scripted-model",
            "--trace",
            str(tmp_path / "t.jsonl"),
            server=srv,
        )
        assert srv.requests == []
    assert proc.returncode == 2 and proc.stdout == ""
    line = one_line(proc.stderr)
    assert line.startswith(f"rlm-jupyter: no sessions in {folder} (")
    assert ("notes.jsonl: skipped, not a known session format" in line) == (kind == "junk")
    assert not (tmp_path / "t.jsonl").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--step-timeout", "0"], "--step-timeout must be more than 0 seconds"),
        (["--step-timeout", "-5"], "--step-timeout must be more than 0 seconds"),
        (["--memory-mb", "0"], f"--memory-mb must be at least {MIN_MEMORY_MB}"),
        (["--memory-mb", "-1"], f"--memory-mb must be at least {MIN_MEMORY_MB}"),
        (
            ["--memory-mb", "10"],
            f"--memory-mb must be at least {MIN_MEMORY_MB} (MB: the REPL worker needs about 150 MB",
        ),
        (["--max-iterations", "0"], "--max-iterations must be at least 1, got 0"),
        (["--max-iterations", "-3"], "--max-iterations must be at least 1, got -3"),
        (["--max-depth", "0"], "--max-depth must be at least 1"),
        (["--budget-seconds", "0"], "--budget-seconds must be more than 0 (leave it out for no limit)"),
        (["--budget-usd", "-1"], "--budget-usd must be more than 0"),
        (["--budget-tokens", "0"], "--budget-tokens must be more than 0"),
        (["--budget-seconds", "inf"], "--budget-seconds must be a finite number"),
        (["--trace", "{tmp}"], "trace path {tmp} is a folder: give a file name, e.g. {tmp}/run.rlmtrace.jsonl"),
        (["--trace", "/dev/null"], "trace path /dev/null is not a regular file"),
    ],
)
def test_bad_options_are_refused_in_one_line_before_anything_runs(samples, tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    t0 = time.monotonic()
    proc = ask("Which write was rejected?", "--context", str(samples / CLAUDE), *args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert one_line(proc.stderr).startswith("rlm-jupyter: " + message.replace("{tmp}", str(tmp_path)))
    assert time.monotonic() - t0 < 30  # refused up front: no load, no worker, no model


def test_a_trace_path_another_live_run_holds_is_refused(samples, tmp_path):
    """Two runs on one trace file would interleave their events and readers would show one run's answer: the
    second run is refused while the first writes; the first finishes with its trace whole."""
    trace = tmp_path / "shared.rlmtrace.jsonl"
    second_done = threading.Event()

    def answer(request: dict) -> str:  # the first run's first model call waits until the second run was refused
        if request["n"] == 1:
            second_done.wait(120)
            return "```repl\nprint(len(context))\n```"
        return "FINAL(the first run's answer)"

    with ScriptedServer(answer) as srv:
        first = ask(
            "Which write was rejected?",
            "--context",
            str(samples / CLAUDE),
            "--model",
            "openai/scripted-model",
            "--trace",
            str(trace),
            server=srv,
            wait=False,
        )
        try:
            deadline = time.monotonic() + 60
            while not srv.requests and time.monotonic() < deadline:  # the first run is inside its model call
                time.sleep(0.1)
            assert srv.requests, "the first run never called the model"
            second = ask("another question", "--context", str(samples / CLAUDE), "--trace", str(trace))
            second_done.set()
            out, err = first.communicate(timeout=120)
        finally:
            first.kill()
    assert second.returncode == 2
    assert one_line(second.stderr) == (
        f"rlm-jupyter: trace path {trace} is being written by another run that is "
        "still going: give this run its own trace file (--trace FILE / "
        "trace_path=...)"
    )
    assert first.returncode == 0, err
    loaded = Trace.load(trace)
    assert len(loaded.runs) == 1 and loaded.answer == "the first run's answer" == out.strip()
    assert "issues" not in loaded.header


def test_the_writer_lock_goes_with_the_run_and_a_finished_trace_can_be_appended_to(tmp_path):
    path = tmp_path / "t.rlmtrace.jsonl"
    w = TraceWriter(path)
    w.emit("run", None, question="one", model="m")
    with pytest.raises(TraceInUseError, match="being written by another run"):
        TraceWriter(path)
    w.close()
    with TraceWriter(path) as w2:  # the first run ended: a second run appends, with no second header
        w2.emit("run", None, question="two", model="m")
    lines = path.read_text().splitlines()
    assert sum('"type":"header"' in x for x in lines) == 1
    assert [r["question"] for r in Trace.load(path).runs] == ["one", "two"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_iterations": 0}, "rlm: max_iterations must be at least 1, got 0"),
        ({"max_depth": -1}, "rlm: max_depth must be at least 1, got -1"),
        ({"max_iterations": 2.5}, "rlm: max_iterations must be a whole number, got 2.5"),
        ({"limits": Limits(step_timeout_s=0)}, "rlm: limits.step_timeout_s must be more than 0 seconds"),
        ({"limits": Limits(memory_mb=0)}, f"rlm: limits.memory_mb must be at least {MIN_MEMORY_MB}"),
        ({"budget": rj.Budget(seconds=-1)}, "rlm: budget.seconds must be more than 0"),
        ({"budget": rj.Budget(depth=-1)}, "rlm: budget.depth must be 0 or more"),
    ],
)
def test_rj_rlm_checks_its_options_before_anything_runs(samples, tmp_path, kwargs, message):
    trace = tmp_path / "t.rlmtrace.jsonl"
    with pytest.raises(OptionError) as e:
        rj.rlm("Which write was rejected?", context=samples / CLAUDE, trace_path=trace, **kwargs)
    assert str(e.value).startswith(message)
    assert isinstance(e.value, ValueError) and not trace.exists()
