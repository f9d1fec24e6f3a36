"""SWE-agent .traj files: a demonstration (history only), a legacy gpt4 run, a function-calling replay."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest

import rlm_jupyter as rj
from rlm_jupyter.sessions.formats import Probe, swe_agent
from rlm_jupyter.testing.samples import load_one as _load
from rlm_jupyter.testing.samples import sample_files, sample_tree

SWE = sample_tree() / "swe-agent"
SIMPLE = SWE / "function_calling_simple.traj"
LEGACY = SWE / "legacy-gpt4-swe-agent__test-repo-i1.traj"
MARSH = SWE / "marshmallow-1867__function_calling_replace.traj"


def test_sniffer_claims_exactly_the_swe_agent_samples(samples):
    files = sample_files()
    assert {p for p in files if swe_agent.sniff(Probe(p))} == set(SWE.iterdir())


def _calls(path):
    hist = json.loads(path.read_text())["history"]
    return hist, [c["function"]["name"] for m in hist for c in m.get("tool_calls") or []]


def test_function_calling_files_map_history_one_to_one():
    for path in (SIMPLE, MARSH):
        hist, calls = _calls(path)
        ctx, df, summary = _load(path)
        assert summary["tool_calls"] == calls
        # every tool message is fused into its call's row: rows = history messages
        assert df.height == len(hist)
        assert summary["messages"]["assistant"] == sum(m["role"] == "assistant" for m in hist)
        assert summary["user_prompts"] == [hist[1]["content"]]  # the instance prompt
        assert df["ts"].null_count() == df.height
        tools = df.filter(pl.col("role") == "tool")
        replies = [m for m in hist if m["role"] == "tool"]
        assert tools["tool_output"].to_list() == [m["content"] for m in replies]  # \r\n kept as written
        assert any("\r\n" in t for t in tools["tool_output"].to_list())
        assert tools["tool_status"].to_list() == ["ok"] * len(replies)


def test_reused_call_ids_answer_the_latest_call():
    # marshmallow reuses call_5iDdbOYybq7L19vqXmR0DPaU for four bash calls (checked by reading the file)
    _, df, _ = _load(MARSH)
    rows = df.filter(pl.col("tool_call_id") == "call_5iDdbOYybq7L19vqXmR0DPaU")
    assert [json.loads(x)["command"] for x in rows["tool_input"]] == [
        "python reproduce.py",
        "ls -F",
        "python reproduce.py",
        "rm reproduce.py",
    ]
    assert rows["tool_output"][0].startswith("344") and rows["tool_output"][2].startswith("345")


def test_model_stats_stay_on_the_session():
    ctx, _, summary = _load(LEGACY)
    info = json.loads(LEGACY.read_text())["info"]["model_stats"]
    sess = rj.load(LEGACY)
    assert summary["tokens"] == {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0, "reasoning": 0}
    from rlm_jupyter.sessions.load import read_sessions

    (s,), _ = read_sessions(LEGACY)
    assert s.extra["model_stats"] == info and info["tokens_sent"] == 52861
    assert sess.df["cost_usd"].null_count() == sess.df.height
    (m,), _ = read_sessions(MARSH)
    assert m.model == "gpt-4o"


def test_legacy_actions_become_tool_rows():
    doc = json.loads(LEGACY.read_text())
    hist = doc["history"]
    _, df, summary = _load(LEGACY)
    actions = [m["action"].split()[0] for m in hist if m["role"] == "assistant"]
    assert actions == ["find_file", "open", "edit", "python", "submit"]
    # `python` is not a command listed in the system prompt, so it ran in bash
    assert summary["tool_calls"] == ["find_file", "open", "edit", "bash", "submit"]
    demo = df.filter(pl.col("raw_type") == "demo/user")
    assert demo.height == 1 and demo["origin"][0] == "harness"
    assert summary["user_prompts"] == [hist[2]["content"]]
    tools = df.filter(pl.col("role") == "tool")
    # observations are hist[4], [6], [8], [10]; the final submit has none in history
    assert tools["tool_output"].to_list() == [hist[i]["content"] for i in (4, 6, 8, 10)] + [None]
    assert tools["tool_status"].to_list() == ["ok"] * 4 + [None]
    assert df.height == len(hist) + 1  # the last action's tool row has no observation message to stand in for


def test_session_id_is_content_based(tmp_path):
    a = tmp_path / "one" / SIMPLE.name
    b = tmp_path / "two" / SIMPLE.name
    for p in (a, b):
        p.parent.mkdir()
        shutil.copy(SIMPLE, p)
    ctx = rj.load([a, b])
    assert len(ctx.summaries()) == 1
    assert any(i.kind == "duplicate" for i in ctx.report.issues)
    assert ctx.summaries()[0]["session_id"].startswith("function_calling_simple-")


def test_trajectory_only_and_broken_files(tmp_path):
    doc = json.loads(LEGACY.read_text())
    only = tmp_path / "only.traj"
    only.write_text(json.dumps({"trajectory": doc["trajectory"], "info": doc["info"]}))
    _, df, summary = _load(only)
    assert summary["tool_calls"] == [s["action"].split()[0] for s in doc["trajectory"]]
    assert df.filter(pl.col("role") == "tool")["tool_output"][0] == doc["trajectory"][0]["observation"]
    cut = tmp_path / "cut.traj"
    cut.write_bytes(LEGACY.read_bytes()[:5000])
    ctx = rj.load(cut)
    assert ctx.df.height == 0 and "not valid JSON" in ctx.report.issues[0].reason


@pytest.mark.parametrize("path", [SIMPLE, LEGACY, MARSH], ids=lambda p: p.name[:40])
def test_no_timestamps_are_invented(path):
    """These files record no times: every row's ts stays null rather than a made-up instant (1970 or now)."""
    assert '"timestamp"' not in path.read_text(encoding="utf-8")
    df = rj.load(path).df
    assert df.height > 0 and df["ts"].null_count() == df.height
