"""OpenHands V0 event lists: basic.json (edit + finish with litellm usage) and basic_interactions.json (chat)."""

from __future__ import annotations

import json

import polars as pl
import pytest

import rlm_jupyter as rj
from rlm_jupyter.sessions.formats import Probe, openhands
from rlm_jupyter.testing.samples import load_one as _load
from rlm_jupyter.testing.samples import sample_files, sample_tree

OH = sample_tree() / "openhands"
BASIC = OH / "basic.json"
CHAT = OH / "basic_interactions.json"


def test_sniffer_claims_exactly_the_openhands_samples(samples):
    files = sample_files()
    assert {p for p in files if openhands.sniff(Probe(p))} == set(OH.iterdir())


def test_basic_edit_and_finish():
    events = json.loads(BASIC.read_text())
    ctx, df, summary = _load(BASIC)
    assert summary["user_prompts"] == [events[0]["args"]["content"]]
    assert summary["tool_calls"] == ["str_replace_editor", "finish"]
    edit = df.filter(pl.col("tool_name") == "str_replace_editor").row(0, named=True)
    assert edit["tool_call_id"] == "toolu_017nBp7UfiGqyrA7j77HgtFP"
    assert edit["tool_output"] == events[2]["content"] and edit["tool_status"] == "ok"  # event 4, cause 3
    assert df.filter(pl.col("id") == edit["parent_id"])["text"][0] == events[1]["args"]["thought"]
    # usage appears on action 3 and observation 4 (same response): counted once per response
    usages = {
        e["tool_call_metadata"]["model_response"]["id"]: e["tool_call_metadata"]["model_response"]["usage"]
        for e in events
        if e.get("tool_call_metadata")
    }
    assert len(usages) == 2
    tok = summary["tokens"]
    assert tok["output"] == sum(u["completion_tokens"] for u in usages.values()) == 1135 + 177
    assert tok["cache_read"] == sum(u["cache_read_input_tokens"] for u in usages.values())
    assert tok["cache_write"] == sum(u["cache_creation_input_tokens"] for u in usages.values())
    # litellm's prompt_tokens include cache reads and writes (3486 = 3482 written + 4 new)
    assert (
        tok["input"]
        == sum(
            u["prompt_tokens"] - u["cache_read_input_tokens"] - u["cache_creation_input_tokens"]
            for u in usages.values()
        )
        == 4 + 6
    )
    notes = [i for i in ctx.report.issues if i.kind == "note"]
    assert len(notes) == 1 and "read as UTC" in notes[0].reason
    assert df["ts"][0].isoformat() == "2025-01-27T22:44:56.900854+00:00"


def test_chat_messages():
    events = json.loads(CHAT.read_text())
    _, df, summary = _load(CHAT)
    assert summary["user_prompts"] == [e["args"]["content"] for e in events if e["source"] == "user"]
    assistants = df.filter(pl.col("role") == "assistant")["text"].to_list()
    assert assistants == [e["message"] for e in events if e["source"] == "agent"]
    # OpenAI usage: prompt_tokens 2473 include 2304 cached
    assert summary["tokens"]["input"] == 2473 - 2304 and summary["tokens"]["cache_read"] == 2304
    assert summary["tool_calls"] == ["finish"]


def _condensed(tmp_path):
    events = json.loads(BASIC.read_text())
    cond = {
        "id": 6,
        "timestamp": "2025-01-27T22:45:20.000000",
        "source": "agent",
        "message": "",
        "action": "condensation",
        "args": {
            "forgotten_events_start_id": 3,
            "forgotten_events_end_id": 4,
            "summary": "The agent wrote game_2048.py.",
            "summary_offset": 1,
        },
    }
    state = {
        "id": 7,
        "timestamp": "2025-01-27T22:45:21.000000",
        "source": "environment",
        "message": "",
        "observation": "agent_state_changed",
        "content": "",
        "extras": {"agent_state": "finished"},
    }
    path = tmp_path / "condensed.json"
    path.write_text(json.dumps([*events, cond, state], indent=2))
    return path


def test_condensation_marks_forgotten_events(tmp_path):
    ctx, df, summary = _load(_condensed(tmp_path))
    assert summary["compactions"] == 1
    out = df.filter(~pl.col("in_context"))
    assert out["raw_type"].to_list() == ["action/edit", "action/edit"]  # the assistant row and its tool row
    summ = df.filter(pl.col("boundary") == "summary").row(0, named=True)
    assert (summ["origin"], summ["text"]) == ("summary", "The agent wrote game_2048.py.")
    assert "agent_state_changed" not in set(df["raw_type"].drop_nulls().str.replace("observation/", ""))


def test_errors_and_stray_observations(tmp_path):
    events = json.loads(BASIC.read_text())
    events[2] = events[2] | {"observation": "error", "content": "ERROR: no such file"}
    stray = {
        "id": 9,
        "timestamp": "2025-01-27T22:45:22",
        "source": "environment",
        "message": "boom",
        "observation": "error",
        "content": "runtime died",
        "cause": None,
        "extras": {},
    }
    path = tmp_path / "err.json"
    path.write_text(json.dumps([*events, stray, "junk"]))
    ctx, df, summary = _load(path)
    assert summary["tool_errors"] == 1
    row = df.filter(pl.col("raw_type") == "observation/error").row(0, named=True)
    assert (row["role"], row["origin"], row["text"]) == ("system", "harness", "runtime died")
    assert any(i.pointer and i.pointer.endswith("#/5") for i in ctx.report.issues)


def test_events_folder_and_discover(tmp_path, monkeypatch):
    monkeypatch.delenv("FILE_STORE_PATH", raising=False)
    folder = tmp_path / ".openhands" / "sessions" / "abc123" / "events"
    folder.mkdir(parents=True)
    for e in json.loads(BASIC.read_text()):
        (folder / f"{e['id']}.json").write_text(json.dumps(e))
    assert openhands.discover(tmp_path) == [folder]
    ctx = rj.load(tmp_path / ".openhands")
    (summary,) = ctx.summaries()
    assert summary["session_id"] == "abc123"
    assert summary["tool_calls"] == ["str_replace_editor", "finish"]


# --- timestamps: the instants the file recorded, in a plausible year -------------------------------------------


@pytest.mark.parametrize("path", [BASIC, CHAT], ids=lambda p: p.name[:40])
def test_timestamps_land_within_the_times_the_file_recorded(path, times_within_file):
    """Every row time lies in the span of ISO times the file wrote, in a plausible year (no unit or zone slip)."""
    times_within_file(path)
