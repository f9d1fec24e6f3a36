"""Codex CLI rollout loader, checked against the real sample files.

Expected values are computed in the tests from the raw JSON lines (independently of the loader) or were
counted by hand in the files, as noted next to them.
"""

from __future__ import annotations

import json
import re
import sys

import orjson
import pytest

import rlm_jupyter as rj
from rlm_jupyter.sessions import formats
from rlm_jupyter.sessions.formats import codex
from rlm_jupyter.sessions.report import FileReport
from rlm_jupyter.testing.samples import sample_tree

ROLLOUT = "rollout-2026-05-11T11-26-55-019e1625-789d-76c0-80ab-3724b5ddb799.jsonl"
CATALOG = "SYNTHETIC-agent-sessions-record-catalog.jsonl"


@pytest.fixture(scope="module")
def rollout_path(samples):
    return samples / "codex" / ROLLOUT


@pytest.fixture(scope="module")
def catalog_path(samples):
    return samples / "codex" / CATALOG


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _load(path):
    ctx = rj.load(path)
    return ctx, ctx.summaries()[0]


# --------------------------------------------------------------------------- the real codex-tui rollout


def test_rollout_session_fields(rollout_path):
    recs = _lines(rollout_path)
    meta = recs[0]["payload"]
    models = [r["payload"]["model"] for r in recs if r["type"] == "turn_context"]
    ctx, summ = _load(rollout_path)
    assert summ["format"] == "codex"
    assert summ["session_id"] == meta["id"] == "019e1625-789d-76c0-80ab-3724b5ddb799"
    assert (summ["producer"], summ["producer_version"]) == ("codex-tui", "0.125.0")
    assert summ["title"] == "show tools"
    row = ctx.sessions.row(0, named=True)
    assert row["cwd"] == meta["cwd"]
    assert row["model"] == models[0] == "gpt-5.5"
    # base_instructions (~20 KB) are not a row
    head = meta["base_instructions"]["text"][:200]
    assert not ctx.df["text"].str.contains(head, literal=True).any()


def test_rollout_prompts_and_harness(rollout_path):
    recs = _lines(rollout_path)
    prompts = [r["payload"]["message"] for r in recs if r["payload"].get("type") == "user_message"]
    ctx, summ = _load(rollout_path)
    assert summ["user_prompts"] == prompts  # event_msg/user_message duplicates were dropped, not added
    df = ctx.df
    harness = df.filter(df["origin"] == "harness")["text"].to_list()
    # line 3: the developer message (<permissions instructions>…), line 4: AGENTS.md + <environment_context>
    assert len(harness) == 2
    assert harness[0].startswith("<permissions instructions>")
    assert harness[1].startswith("# AGENTS.md instructions")
    assert df.filter(df["origin"] == "harness")["role"].to_list() == ["system", "user"]


def test_rollout_tools(rollout_path):
    recs = _lines(rollout_path)
    names, failed = [], 0
    for r in recs:
        p = r["payload"]
        if p.get("type") in ("function_call", "custom_tool_call"):
            names.append(p["name"])
        elif p.get("type") == "web_search_call":
            names.append("web_search")
        elif p.get("type") == "function_call_output":
            m = re.search(r"Process exited with code (\d+)", p["output"])
            failed += bool(m and m.group(1) != "0")
    ctx, summ = _load(rollout_path)
    assert summ["tool_calls"] == names
    assert len(names) == 105  # 99 function_call + 3 apply_patch + 3 web_search_call
    assert summ["tool_errors"] == failed == 4
    df = ctx.df
    tools = df.filter(df["role"] == "tool")
    assert tools["tool_status"].null_count() == 0
    # every tool row hangs under an assistant row that precedes it
    ids = dict(zip(df["id"], df["role"], strict=True))
    assert all(ids[p] == "assistant" for p in tools["parent_id"])
    patch = tools.filter(tools["tool_name"] == "apply_patch").row(0, named=True)
    assert patch["text"] == "apply_patch: src/agents/plugins/__tests__/codemie-code-reasoning.test.ts"
    assert patch["tool_input"].startswith("*** Begin Patch")
    assert patch["tool_output"].startswith("Success. Updated the following files:")  # inner "output" of the JSON
    first = tools.row(0, named=True)
    assert first["id"] == first["tool_call_id"] == "call_Y2p6KmqwoTtpi6atpDPuxC5M"
    assert json.loads(first["tool_input"])["cmd"].startswith("sed -n '1,180p'")


def test_rollout_assistant_rows_and_tokens(rollout_path):
    recs = _lines(rollout_path)
    assistant_texts = [
        r["payload"]["content"][0]["text"]
        for r in recs
        if r["payload"].get("type") == "message" and r["payload"]["role"] == "assistant"
    ]
    totals = [r["payload"]["info"]["total_token_usage"] for r in recs if r["payload"].get("type") == "token_count"]
    final = totals[-1]
    ctx, summ = _load(rollout_path)
    df = ctx.df
    asst = df.filter(df["role"] == "assistant")
    # agent_message events are not extra rows: the visible texts are exactly the assistant message items
    assert [t for t in asst["text"].to_list() if t] == assistant_texts
    # last_token_usage per step adds up to the final cumulative total; input counts cached tokens too
    assert summ["tokens"] == {
        "input": final["input_tokens"] - final["cached_input_tokens"],
        "output": final["output_tokens"],
        "cache_read": final["cached_input_tokens"],
        "cache_write": 0,
        "reasoning": final["reasoning_output_tokens"],
    }
    assert summ["tokens"]["input"] == 6055836 - 4929536  # line 386, read by hand
    # the 66 token_count events all have distinct totals: one per model step
    assert len({json.dumps(t) for t in totals}) == 66 == asst["output"].is_not_null().sum()
    assert df.filter(df["role"] != "assistant")["output"].null_count() == len(df) - len(asst)
    first = asst.row(0, named=True)
    assert (first["input_uncached"], first["cache_read"], first["output"], first["reasoning"]) == (18703, 0, 167, 62)
    assert first["context_tokens"] == 18703
    assert summ["compactions"] == 0 and df["in_context"].all()


# --------------------------------------------------------------------------- the SYNTHETIC record catalogue


def test_catalog_loads(catalog_path):
    recs = _lines(catalog_path)
    metas = [r for r in recs if r["type"] == "session_meta"]
    n_compacted = sum(r["type"] == "compacted" for r in recs)
    ctx, summ = _load(catalog_path)
    assert len(metas) == 7 and n_compacted == 6
    assert summ["session_id"] == metas[0]["payload"]["id"] == "019fc8be-3658-7ca3-9e29-000000000000"
    assert (summ["producer"], summ["producer_version"]) == ("codex_cli_rs", "0.146.0")
    df = ctx.df
    # 6 compacted records + the context_compacted event of line 19 (no compacted record next to it)
    assert summ["compactions"] == n_compacted + 1
    # the 6 later session_meta lines (ids differ from the first) each open a fork/replay block
    assert (df["boundary"] == "fork").sum() == len(metas) - 1
    assert any("session_meta" in i.reason for i in ctx.report.issues if i.kind == "note")
    # tokens: line 22 is the only non-zero token_count (86 has info null, 87 is all zeros)
    assert summ["tokens"] == {
        "input": 16341 - 3584,
        "output": 81,
        "cache_read": 3584,
        "cache_write": 0,
        "reasoning": 63,
    }
    # line 4 user_message is matched by the response item of line 6; lines 71 and 85 have no item: kept as prompts
    assert summ["user_prompts"] == ["List the files\n[image]", "[trimmed for fixture]", "[trimmed for fixture]"]
    # call-2 (lines 10/11): output given as a content object
    call2 = df.filter(df["tool_call_id"] == "call-2").row(0, named=True)
    assert (call2["tool_output"], call2["tool_status"]) == ("a.txt\n", "ok")
    call1 = df.filter(df["tool_call_id"] == "call-1").row(0, named=True)
    assert call1["tool_output"] == "a.txt\nb.txt\n"  # line 21: a list of input_text parts


def test_catalog_compaction_in_context(catalog_path):
    ctx, _ = _load(catalog_path)
    df = ctx.df
    last = df.filter(df["boundary"] == "compaction")["seq"].max()
    before = df.filter(df["seq"] < last)
    after = df.filter(df["seq"] >= last)
    assert after["in_context"].all()
    assert not before["in_context"].all()
    # what stays in context before the boundary are messages the replacement_history of line 111 repeats
    kept = before.filter(before["in_context"])
    assert set(kept["role"]) <= {"user", "system"}
    assert not before.filter(before["role"] == "tool")["in_context"].any()


# --------------------------------------------------------------------------- variants built in tmp_path


def _write(path, lines, newline="\n"):
    path.write_bytes(newline.join(lines).encode() + newline.encode())
    return path


def test_broken_variants(tmp_path, rollout_path):
    lines = rollout_path.read_text().splitlines()
    n = len(lines)
    bad = lines[:]
    bad[5] = bad[5][:40]  # line 6: the "show tools" prompt, cut in the middle
    bad.insert(10, '{"timestamp":"2026-05-11T08:27:22.000Z","type":"mystery_record","payload":{"x":1}}')
    body = "\n".join(bad).encode() + b"\n"
    body = body.replace(b"let's update the defailt", b"let's update the d\xff\xfeilt")  # non-UTF-8 bytes
    path = tmp_path / "rollout-broken.jsonl"
    path.write_bytes(body + b'{"timestamp":"2026-05-11T08:45:00.000Z","type":"event_msg","payl')  # cut-off tail
    ctx, summ = _load(path)
    issues = {(i.line, i.kind) for i in ctx.report.issues}
    assert (6, "malformed") in issues
    assert (n + 2, "truncated") in issues
    assert any(i.kind == "unknown" and "mystery_record" in i.reason for i in ctx.report.issues)
    assert summ["malformed_lines"] == 1
    df = ctx.df
    unknown = df.filter(df["raw_type"] == "mystery_record").row(0, named=True)
    assert (unknown["role"], unknown["origin"], unknown["source"]) == ("system", "harness", f"{path}:11")
    # the lost prompt row is gone, the rest loads; the replaced bytes survive as U+FFFD
    assert summ["user_prompts"][0] == "show tools"  # its event_msg twin (line 7) stands in for the cut item
    assert summ["user_prompts"][1].startswith("let's update the d\ufffd")
    assert len(summ["tool_calls"]) == 105


def test_crlf_line_endings(tmp_path, rollout_path):
    path = _write(tmp_path / "rollout-crlf.jsonl", rollout_path.read_text().splitlines(), "\r\n")
    _, plain = _load(rollout_path)
    _, crlf = _load(path)
    for key in ("session_id", "user_prompts", "tool_calls", "tool_errors", "tokens", "messages"):
        assert crlf[key] == plain[key]
    assert not rj.load(path).report.issues


def test_early_2025_layout(tmp_path, rollout_path):
    """A small file in the envelope-less early layout, made from real items of the rollout sample."""
    recs = _lines(rollout_path)
    items = [r["payload"] for r in recs if r["type"] == "response_item"][:12]
    head = {"id": "0b8bd1b5-early", "timestamp": "2025-04-20T10:00:00.000Z", "instructions": "", "git": {}}
    lines = [json.dumps(head)]
    for i, item in enumerate(items):
        lines.append(json.dumps(item))
        if i % 4 == 3:
            lines.append(json.dumps({"record_type": "state"}))
    path = _write(tmp_path / "rollout-2025-04-20-early.jsonl", lines)
    assert codex.sniff(formats.Probe(path))
    ctx, summ = _load(path)
    assert summ["session_id"] == "0b8bd1b5-early"
    # items 3 and 10 are the two prompts; 1, 2 the developer and AGENTS.md injections
    assert summ["user_prompts"] == [items[2]["content"][0]["text"], items[9]["content"][0]["text"]]
    expected = [p["name"] for p in items if p["type"] == "function_call"]
    assert summ["tool_calls"] == expected == ["exec_command", "write_stdin"]
    assert not ctx.report.issues
    assert ctx.df["ts"].null_count() == len(ctx.df)  # early items carry no time


def test_zstd(tmp_path, rollout_path, monkeypatch):
    zstandard = pytest.importorskip("zstandard")
    path = tmp_path / "rollout-z.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(rollout_path.read_bytes()))
    assert codex.sniff(formats.Probe(path))
    _, plain = _load(rollout_path)
    _, packed = _load(path)
    assert packed["tool_calls"] == plain["tool_calls"] and packed["tokens"] == plain["tokens"]
    monkeypatch.setitem(sys.modules, "zstandard", None)  # as if the extra were not installed
    with pytest.raises(ValueError, match=r"pip install rlm-jupyter\[zstd\]"):
        codex.read(path, FileReport(str(path)))


def test_fork_replay_marked(tmp_path, rollout_path):
    lines = rollout_path.read_text().splitlines()
    child = json.loads(lines[0])
    child["payload"] = {**child["payload"], "id": "child-0001", "forked_from_id": child["payload"]["id"]}
    # a forked rollout: its own meta, then the parent's meta and items replayed
    path = _write(tmp_path / "rollout-fork.jsonl", [json.dumps(child)] + lines)
    ctx, summ = _load(path)
    assert summ["session_id"] == "child-0001"
    fork = ctx.df.filter(ctx.df["boundary"] == "fork")
    assert fork.height == 1 and fork["seq"][0] == 0
    assert "019e1625-789d-76c0-80ab-3724b5ddb799" in fork["text"][0]
    assert ctx.sessions["session_id"].to_list() == ["child-0001"]


def test_compacted_keeps_replacement_history(tmp_path, rollout_path):
    lines = rollout_path.read_text().splitlines()
    compacted = {
        "timestamp": "2026-05-11T08:32:00.000Z",
        "type": "compacted",
        "payload": {
            "message": "Summary: the user asked to show tools.",
            "replacement_history": [
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "show tools"}]}
            ],
        },
    }
    event = {"timestamp": "2026-05-11T08:32:00.001Z", "type": "event_msg", "payload": {"type": "context_compacted"}}
    # after line 19 (end of the first turn); the event right after belongs to the same compaction
    new = lines[:19] + [json.dumps(compacted), json.dumps(event)] + lines[19:]
    ctx, summ = _load(_write(tmp_path / "rollout-compact.jsonl", new))
    assert summ["compactions"] == 1
    df = ctx.df
    row = df.filter(df["boundary"] == "compaction").row(0, named=True)
    assert (row["origin"], row["text"], row["in_context"]) == ("summary", compacted["payload"]["message"], True)
    before = df.filter(df["seq"] < row["seq"])
    assert before.filter(before["in_context"])["text"].to_list() == ["show tools"]
    assert df.filter(df["seq"] > row["seq"])["in_context"].all()
    assert summ["user_prompts"] == ["show tools", "let's update the defailt context compart to 90 in env var"]


def test_image_data_url_placeholder(tmp_path, rollout_path):
    lines = rollout_path.read_text().splitlines()
    data = "data:image/png;base64," + "iVBORw0KGgo" * 300
    rec = json.loads(lines[5])
    rec["payload"]["content"].append({"type": "input_image", "image_url": data})
    lines[5] = json.dumps(rec)
    ctx, _ = _load(_write(tmp_path / "rollout-img.jsonl", lines))
    text = ctx.df.filter(ctx.df["origin"] == "human")["text"][0]
    assert text.startswith("show tools\n[media: image/png, ")
    assert "iVBOR" not in text


def test_huge_first_line_still_sniffed(tmp_path, rollout_path):
    lines = rollout_path.read_text().splitlines()
    meta = json.loads(lines[0])
    meta["payload"]["base_instructions"]["text"] *= 5  # > 64 KB: the probe sees only its start
    lines[0] = orjson.dumps(meta).decode()
    path = _write(tmp_path / "rollout-huge.jsonl", lines)
    assert len(lines[0]) > 65536
    assert codex.sniff(formats.Probe(path))
    assert _load(path)[1]["session_id"] == "019e1625-789d-76c0-80ab-3724b5ddb799"


def test_sniff_rejects_other_samples(samples):
    others = [p for p in samples.rglob("*") if p.is_file() and p.parent.name != "codex" and p.suffix != ".md"]
    assert others
    assert not [p for p in others if codex.sniff(formats.Probe(p))]


def test_discover(tmp_path, monkeypatch):
    monkeypatch.delenv("CODEX_HOME", raising=False)
    day = tmp_path / ".codex" / "sessions" / "2026" / "05" / "11"
    day.mkdir(parents=True)
    (day / "rollout-a.jsonl").write_text("{}\n")
    (day / "rollout-a.jsonl.zst").write_bytes(b"")  # the plain copy wins
    (day / "rollout-b.jsonl.zst").write_bytes(b"")
    (day / "history.jsonl").write_text("{}\n")
    arch = tmp_path / ".codex" / "archived_sessions"
    arch.mkdir()
    (arch / "rollout-c.jsonl").write_text("{}\n")
    found = sorted(p.name for p in codex.discover(tmp_path))
    assert found == ["rollout-a.jsonl", "rollout-b.jsonl.zst", "rollout-c.jsonl"]
    other = tmp_path / "elsewhere"
    (other / "sessions").mkdir(parents=True)
    (other / "sessions" / "rollout-d.jsonl").write_text("{}\n")
    monkeypatch.setenv("CODEX_HOME", str(other))
    assert [p.name for p in codex.discover(tmp_path)] == ["rollout-d.jsonl"]


# --- timestamps: the instants the file recorded, in a plausible year -------------------------------------------
_CODEX = sample_tree() / "codex"


@pytest.mark.parametrize("path", [_CODEX / ROLLOUT, _CODEX / CATALOG], ids=lambda p: p.name[:40])
def test_timestamps_land_within_the_times_the_file_recorded(path, times_within_file):
    """Every row time lies in the span of ISO times the file wrote, in a plausible year (no unit or zone slip)."""
    times_within_file(path)
