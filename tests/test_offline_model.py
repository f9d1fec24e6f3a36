"""The offline demo model (rule-based, not neural) answers real questions over the sample sessions through the
whole loop (real worker, real litellm custom provider), with evidence from the right messages. Expected answers
were found by reading the sample files; each test re-derives the message ids from the raw files with plain json."""

from __future__ import annotations

import json
import re

import pytest

import rlm_jupyter as rj
from rlm_jupyter.rlm import offline
from rlm_jupyter.rlm.loop import rlm
from rlm_jupyter.rlm.models import Models


@pytest.fixture(scope="module")
def models():
    return Models()


def evidence(answer: str) -> list[str]:
    m = re.search(r"^Evidence: (.+)$", answer, re.M)
    return m.group(1).split(", ") if m else []


def test_which_file_was_made_as_a_copy(samples, models):
    path = samples / "gemini" / "session-2025-12-01T21-45-5b959dae.json"
    doc = json.loads(path.read_text())
    # messages whose own text says lead_gemini.txt (the user's request and the model's closing summary)
    mentioning = {m["id"] for m in doc["messages"] if "lead_gemini.txt" in json.dumps(m.get("content"))}
    run = rlm("Which file did the agent create as a copy of lead_memory.txt?", rj.load(path), models=models)
    assert run.status == "done" and run.trace.of_type("final")[-1]["via"] == "FINAL_VAR"
    assert "lead_gemini.txt" in run.answer
    assert set(evidence(run.answer)) & mentioning
    # it went through the protocol: search and regex queries, batched sub-calls, then the answer
    ops = {q["op"] for q in run.trace.of_type("query")}
    assert {"regex_search", "search", "get_by_id"} <= ops
    subs = run.trace.of_type("sub_call")
    assert subs and all(s["kind"] == "sub_llm_batch" and s["model"] == "offline-sub" for s in subs)


def test_which_command_failed(samples, models):
    folder = samples / "openai-messages"
    doc = json.loads((folder / "mini-swe-agent-github_issue.traj.json").read_text())
    # the command output (sent back as a message with a non-zero <returncode>) that printed the ZeroDivisionError
    # traceback: message #17 of this trajectory (a plain list of chat messages)
    failing = [i for i, m in enumerate(doc) if "<returncode>1</returncode>" in str(m.get("content"))
               and "ZeroDivisionError" in str(m.get("content"))]
    assert failing == [17]
    run = rlm("Which command failed with a ZeroDivisionError?", rj.load(folder), models=models)
    assert "ZeroDivisionError" in run.answer
    assert f"mini-swe-agent-github_issue-b31de13194af#{failing[0]}" in evidence(run.answer)


def test_which_write_was_rejected(samples, models):
    path = samples / "claude-code" / "codemie-session-9eda1058.jsonl"
    rejected = []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        for part in (rec.get("message") or {}).get("content") or []:
            if isinstance(part, dict) and part.get("type") == "tool_result" and "rejected" in str(part.get("content")):
                rejected.append(part["tool_use_id"])
    assert rejected == ["toolu_bdrk_01SKk2dM5q1c8gecaoatnwJn"]
    run = rlm("Which file write was rejected?", rj.load(path), models=models)
    assert "available-tools.md" in run.answer
    assert rejected[0] in evidence(run.answer)


def test_no_matching_terms_says_so_without_inventing(samples, models):
    run = rlm("Which kubernetes cluster was autoscaled?", rj.load(samples / "openhands" / "basic.json"),
              models=models)
    assert run.status == "done" and run.answer.startswith("No message in the context matches")


def test_sub_role_is_extractive():
    text = ("[3] tool/Bash t1 (2026-01-01 00:00:00)\nbash: pytest -q\n→ 2 failed. FAILED test_auth.py::test_login. "
            "Ran in 3 s.\n[4] assistant a2 (-)\nThe login test fails on token expiry.")
    out = offline.respond("sub", [{"role": "user", "content": f"Question: which test failed?\n\nText:\n{text}"}])
    lines = out.splitlines()
    assert "[t1] FAILED test_auth.py::test_login." in lines
    for line in lines:  # every sentence is a substring of the prompt: nothing invented
        assert re.sub(r"^\[[^\]]+\] ", "", line) in text
