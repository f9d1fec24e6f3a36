"""`rlm-jupyter ask`: a whole RLM run from the shell, offline, with its trace on disk."""

from __future__ import annotations

import json
import subprocess
import sys

from rlm_jupyter.trace import Trace


def test_ask_json_gives_answer_usage_and_a_trace_file(samples, tmp_path):
    trace = tmp_path / "run.rlmtrace.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlm_jupyter.cli",
            "ask",
            "Which write did the user reject?",
            "--context",
            str(samples / "claude-code" / "codemie-session-9eda1058.jsonl"),
            "--trace",
            str(trace),
            "--json",
            "--step-timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "done" and out["trace"] == str(trace)
    # the rejected Write in this session (its tool_result says the tool use was rejected)
    assert "toolu_bdrk_01SKk2dM5q1c8gecaoatnwJn" in out["answer"]
    assert out["usage"]["calls"] >= 2 and out["usage"]["tokens_in"] > 0
    loaded = Trace.load(trace)
    assert loaded.answer == out["answer"]
    assert loaded.of_type("query"), "the run's context queries are in the trace"


def test_ask_with_a_hosted_model_and_no_key_says_which_variable(samples, tmp_path, monkeypatch):
    env = {k: v for k, v in __import__("os").environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlm_jupyter.cli",
            "ask",
            "anything",
            "--context",
            str(samples / "openhands"),
            "--model",
            "gpt-4o-mini",
            "--trace",
            str(tmp_path / "t.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 2
    assert "OPENAI_API_KEY" in proc.stderr and proc.stderr.count("\n") == 1
