"""Gemini CLI recordings: the two legacy JSON samples, the JSONL sample, and broken/rewound variants of it."""

from __future__ import annotations

import json

import polars as pl
import pytest

import rlm_jupyter as rj
from rlm_jupyter.sessions.formats import Probe, gemini
from rlm_jupyter.testing.samples import sample_files, sample_tree

GEMINI = sample_tree() / "gemini"
LEGACY = sorted(GEMINI.glob("session-*.json"))
JSONL = GEMINI / "SYNTHETIC-agent-sessions-gemini-jsonl_v040.jsonl"


def _rows(path):
    ctx = rj.load(path)
    return ctx, ctx.df.sort("seq")


def test_sniffer_claims_exactly_the_gemini_samples(samples):
    files = sample_files()
    claimed = {p for p in files if gemini.sniff(Probe(p))}
    assert claimed == set(GEMINI.iterdir())


def test_legacy_json_messages_tools_and_tokens():
    for path in LEGACY:
        doc = json.loads(path.read_text())
        msgs = doc["messages"]
        ctx, df = _rows(path)
        (summary,) = ctx.summaries()
        assert summary["session_id"] == doc["sessionId"]
        assert summary["producer"] == "gemini-cli"
        calls = [c["name"] for m in msgs for c in m.get("toolCalls", [])]
        assert summary["tool_calls"] == calls
        assert summary["user_prompts"] == [m["content"] for m in msgs if m["type"] == "user"]
        assert summary["messages"] == {
            k: v
            for k, v in {
                "user": sum(m["type"] == "user" for m in msgs),
                "assistant": sum(m["type"] == "gemini" for m in msgs),
                "tool": len(calls),
            }.items()
            if v
        }
        toks = [m["tokens"] for m in msgs if m["type"] == "gemini"]
        # `input` includes `cached` (total == input + output + thoughts + tool in these files, cached not added)
        assert all(t["total"] == t["input"] + t["output"] + t["thoughts"] + t["tool"] for t in toks)
        assert summary["tokens"]["input"] == sum(t["input"] - t["cached"] for t in toks)
        assert summary["tokens"]["cache_read"] == sum(t["cached"] for t in toks)
        assert summary["tokens"]["output"] == sum(t["output"] for t in toks)
        assert summary["tokens"]["reasoning"] == sum(t["thoughts"] for t in toks)
        # tool rows follow their assistant row and carry the nested functionResponse output
        first_call = next(c for m in msgs for c in m.get("toolCalls", []))
        tool = df.filter(pl.col("tool_call_id") == first_call["id"]).row(0, named=True)
        assert tool["tool_output"] == first_call["result"][0]["functionResponse"]["response"]["output"]
        assert tool["tool_status"] == "ok" and tool["id"] == first_call["id"]
        parent = df.filter(pl.col("id") == tool["parent_id"]).row(0, named=True)
        assert parent["role"] == "assistant" and parent["seq"] < tool["seq"]
        assert df["ts"].null_count() == 0


def test_thoughts_become_thinking():
    path = GEMINI / "session-2025-12-01T21-45-5b959dae.json"
    first = json.loads(path.read_text())["messages"][1]
    _, df = _rows(path)
    row = df.filter(pl.col("id") == first["id"]).row(0, named=True)
    assert first["thoughts"][0]["subject"] in row["thinking"]
    assert row["model"] == first["model"] == "gemini-3-pro-image-preview"


def test_jsonl_sample():
    ctx, df = _rows(JSONL)
    (summary,) = ctx.summaries()
    # checked by hand: 1 user, 2 gemini records, one run_shell_command; tokens 11855/0 and 12069/11502 cached
    assert summary["session_id"] == "gemini_stage0_jsonl"
    assert summary["user_prompts"] == ["Say hello and list files."]
    assert summary["tool_calls"] == ["run_shell_command"]
    assert summary["tokens"]["input"] == 11855 + (12069 - 11502)
    assert summary["tokens"]["cache_read"] == 11502
    tool = df.filter(pl.col("role") == "tool").row(0, named=True)
    assert tool["tool_output"].startswith("Output: AgentSessions/")
    assert tool["source"].endswith(":4")
    # the $set updated lastUpdated
    assert ctx.sessions["updated"][0].isoformat().startswith("2026-04-29T21:39:33.156")


def _lines():
    return JSONL.read_text().splitlines()


def test_rewind_keeps_rewound_messages_out_of_context(tmp_path):
    lines = _lines()
    user2 = json.loads(lines[1]) | {"id": "g-user-2", "content": [{"text": "Try again"}]}
    lines += [json.dumps({"$rewindTo": "g-assistant-2"}), json.dumps(user2)]
    path = tmp_path / "session-rewind.jsonl"
    path.write_text("\n".join(lines) + "\n")
    _, df = _rows(path)
    assert df["id"].to_list()[:2] == ["g-user-1", "g-assistant-1"]
    rewind = df.filter(pl.col("boundary") == "rewind")
    assert rewind.height == 1 and rewind["raw_type"][0] == "$rewindTo"
    out = df.filter(~pl.col("in_context"))["id"].to_list()
    assert out == ["g-assistant-2"]  # the target and everything after it, as gemini-cli does
    assert df.filter(pl.col("seq") > rewind["seq"][0])["id"].to_list() == ["g-user-2"]


def test_upsert_rewrites_a_message_in_place(tmp_path):
    lines = _lines()
    again = json.loads(lines[3])
    again["toolCalls"][0]["status"] = "error"
    path = tmp_path / "session-upsert.jsonl"
    path.write_text("\n".join([*lines, json.dumps(again)]) + "\n")
    _, df = _rows(path)
    assert df.height == 4  # same rows as the sample: the later write replaced the earlier one
    assert df.filter(pl.col("role") == "tool")["tool_status"].to_list() == ["error"]
    assert df["id"].to_list()[1] == "g-assistant-1"


def test_broken_jsonl_variants(tmp_path):
    lines = _lines()
    bad = tmp_path / "session-bad.jsonl"
    # CRLF endings, a malformed middle line (3), an unknown record (5), a cut-off last line (7)
    body = [lines[0], lines[1], "{not json", lines[2], json.dumps({"mystery": 1}), lines[3]]
    raw = "\r\n".join(body).encode() + b"\r\n" + lines[4].encode()[:-5]
    bad.write_bytes(raw)
    ctx, df = _rows(bad)
    issues = ctx.report.issues
    assert any(i.line == 3 and i.kind == "malformed" for i in issues), issues
    assert any(i.line == 7 and i.kind == "truncated" for i in issues), issues
    assert any(i.line == 5 and i.kind == "unknown" for i in issues), issues
    assert df.filter(pl.col("raw_type") == "unknown-record").row(0, named=True)["role"] == "system"
    assert df.filter(pl.col("role") == "tool").height == 1  # the rest loaded
    assert ctx.sessions["malformed_lines"][0] == 1


def test_unknown_message_type_and_non_utf8(tmp_path):
    lines = _lines()
    odd = json.loads(lines[1]) | {"id": "x1", "type": "compression", "content": "squeezed"}
    path = tmp_path / "session-odd.jsonl"
    path.write_bytes("\n".join([*lines, json.dumps(odd)]).encode().replace(b"squeezed", b"sque\xffezed") + b"\n")
    _, df = _rows(path)
    row = df.filter(pl.col("id") == "x1").row(0, named=True)
    assert (row["role"], row["origin"], row["raw_type"]) == ("system", "harness", "compression")
    assert "\ufffd" in row["text"]


def test_jsonl_named_json_and_json_named_jsonl(tmp_path):
    # the suffix is not trusted: content decides
    a = tmp_path / "a.json"
    a.write_bytes(JSONL.read_bytes())
    b = tmp_path / "b.jsonl"
    b.write_bytes(LEGACY[0].read_bytes())
    assert gemini.sniff(Probe(a)) and gemini.sniff(Probe(b))
    assert rj.load(a).df.height == 4
    assert rj.load(b).df.height == rj.load(LEGACY[0]).df.height


def test_discover(tmp_path, monkeypatch):
    monkeypatch.delenv("GEMINI_CLI_HOME", raising=False)
    chats = tmp_path / ".gemini" / "tmp" / "abc" / "chats"
    (chats / "parent-id").mkdir(parents=True)
    for name in ("session-1.json", "session-2.jsonl", "notes.txt", "parent-id/child.jsonl"):
        (chats / name).write_text("{}")
    found = gemini.discover(tmp_path)
    assert [p.relative_to(chats).as_posix() for p in found] == [
        "session-1.json",
        "session-2.jsonl",
        "parent-id/child.jsonl",
    ]
    monkeypatch.setenv("GEMINI_CLI_HOME", str(tmp_path / "elsewhere"))
    assert gemini.discover(tmp_path) == []


# --- timestamps: the instants the file recorded, in a plausible year -------------------------------------------


@pytest.mark.parametrize("path", [*LEGACY, JSONL], ids=lambda p: p.name[:40])
def test_timestamps_land_within_the_times_the_file_recorded(path, times_within_file):
    """Every row time lies in the span of ISO times the file wrote, in a plausible year (no unit or zone slip)."""
    times_within_file(path)
