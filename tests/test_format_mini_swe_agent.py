"""mini-swe-agent 2.4.6 trajectories recorded by tools/record_mini_swe_agent.py against the scripted server: the
function-calling `mini.yaml` run and the text-based `mini_textbased.yaml` run (tests/data/recorded/mini-swe-agent)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from rlm_jupyter.sessions.formats import Probe, detect, mini_swe_agent
from rlm_jupyter.testing.samples import load_one as _load
from rlm_jupyter.testing.samples import sample_files

REC = Path(__file__).parent / "data" / "recorded" / "mini-swe-agent"
TOOLCALL = REC / "toolcall.traj.json"
TEXTBASED = REC / "textbased.traj.json"


def test_sniffer_claims_the_v2_files_only(samples):
    assert detect(Probe(TOOLCALL)) is mini_swe_agent and detect(Probe(TEXTBASED)) is mini_swe_agent
    files = sample_files()
    assert not [p for p in files if mini_swe_agent.sniff(Probe(p))]  # 1.x files stay with openai-messages


@pytest.mark.parametrize("path", [TOOLCALL, TEXTBASED], ids=["toolcall", "textbased"])
def test_recorded_run(path):
    doc = json.loads(path.read_text())
    msgs = doc["messages"]
    ctx, df, summary = _load(path)
    assert (summary["format"], summary["producer"], summary["producer_version"]) == (
        "mini-swe-agent",
        "mini-swe-agent",
        doc["info"]["mini_version"],
    )
    # the task is the one human prompt; mini's format-error message is harness
    assert summary["user_prompts"] == [msgs[1]["content"]]
    harness = df.filter((pl.col("role") == "user") & (pl.col("origin") == "harness"))
    assert harness["raw_type"].to_list() == ["user/FormatError"]
    # five commands, fused with what the model saw; the failing test (returncode 1) is the one error
    tools = df.filter(pl.col("role") == "tool")
    commands = [json.loads(s)["command"] for s in tools["tool_input"]]
    assert commands[:2] == ["cat app.py", "python3 test_sessions.py"] and commands[2].startswith("python3 -c")
    assert commands[3:] == ["python3 test_sessions.py", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"]
    assert tools["tool_status"].to_list()[:4] == ["ok", "error", "ok", "ok"]
    assert "AssertionError" in tools["tool_output"][1] and "ok" in tools["tool_output"][3]
    # every model call is an assistant row with its usage and cost: 6 calls, the rejected one included
    calls = doc["info"]["model_stats"]["api_calls"]
    assistants = df.filter(pl.col("role") == "assistant")
    assert assistants.height == calls == 6
    assert assistants.filter(pl.col("raw_type") == "assistant/rejected")["text"].to_list() == [
        "The bug is clear: get_session returns the session even when it is older than TTL_SECONDS."
    ]
    usages = [m["extra"]["response"]["usage"] for m in msgs if "response" in m.get("extra", {})]
    assert summary["tokens"]["input"] == sum(u["prompt_tokens"] for u in usages)
    assert summary["tokens"]["output"] == sum(u["completion_tokens"] for u in usages)
    assert assistants["cost_usd"].sum() == pytest.approx(doc["info"]["model_stats"]["instance_cost"])
    # the run's end is a harness row; times are epoch seconds from the recording day
    end = df.row(-1, named=True)
    assert (end["role"], end["origin"], end["raw_type"], end["text"]) == ("system", "harness", "exit", "Submitted")
    assert ctx.sessions["model"][0] == "openai/gpt-4o-mini"
    assert set(df["ts"].drop_nulls().dt.year().unique().to_list()) == {2026}


def test_bad_messages_are_reported_and_skipped(tmp_path):
    doc = json.loads(TOOLCALL.read_text())
    doc["messages"].insert(3, "not a message")
    path = tmp_path / "bad.traj.json"
    path.write_text(json.dumps(doc, indent=2))
    ctx, df, summary = _load(path)
    (issue,) = ctx.report.files[0].issues
    assert issue.pointer == "/messages/3" and "skipped" in issue.reason
    assert summary["tool_calls"] == ["bash"] * 5
