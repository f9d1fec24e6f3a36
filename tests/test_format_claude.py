"""Claude Code JSONL loader, checked against the real sample files in tests/data/samples/claude-code.

Expected values are computed from the files with plain `json` in the tests (independently of the loader),
or were counted by hand from the files where a comment says so.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

import rlm_jupyter as rj
from rlm_jupyter.sessions.formats import Probe, claude, detect
from rlm_jupyter.sessions.report import FileReport
from rlm_jupyter.testing.samples import sample_tree

CLAUDE = sample_tree() / "claude-code"
MAIN_2064 = CLAUDE / "codemie-4c2ddfdc-b619-4525-8d03-1950fb1b0257.jsonl"
SID_2064 = "4c2ddfdc-b619-4525-8d03-1950fb1b0257"
LEGACY_AGENTS = sorted(CLAUDE.glob("codemie-legacy-agent-*.jsonl"))
SESSION_214 = CLAUDE / "codemie-session-9eda1058.jsonl"
INCREMENTAL = CLAUDE / "codemie-incremental-subagents" / "turn-1.jsonl"
SUBAGENT = CLAUDE / "codemie-incremental-subagents" / "turn-1" / "subagents" / "agent-a485154.jsonl"
CATALOG = CLAUDE / "SYNTHETIC-agent-sessions-record-catalog.jsonl"
ALL_FILES = [MAIN_2064, *LEGACY_AGENTS, SESSION_214, INCREMENTAL, SUBAGENT, CATALOG]


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_one(path: Path):
    report = FileReport(str(path), "claude")
    sessions = claude.read(path, report)
    assert len(sessions) == 1
    return sessions[0], report


def rows(session) -> list[dict]:
    cols = session.columns
    return [{k: cols[k][i] for k in cols} for i in range(len(session))]


def expected_usage(recs: list[dict]) -> dict[str, int]:
    """Token totals the way Anthropic bills them: one usage per message.id, output = its largest value."""
    by_id: dict[str, dict] = {}
    for r in recs:
        msg = r.get("message") or {}
        if r.get("type") != "assistant" or msg.get("model") == "<synthetic>" or "usage" not in msg:
            continue
        u = msg["usage"]
        prev = by_id.get(msg["id"])
        if prev is None or u["output_tokens"] > prev["output_tokens"]:
            by_id[msg["id"]] = u
    return {
        "input": sum(u["input_tokens"] for u in by_id.values()),
        "output": sum(u["output_tokens"] for u in by_id.values()),
        "cache_read": sum(u.get("cache_read_input_tokens", 0) for u in by_id.values()),
        "cache_write": sum(u.get("cache_creation_input_tokens", 0) for u in by_id.values()),
    }


def tool_uses(recs: list[dict]) -> list[dict]:
    return [
        b
        for r in recs
        if r.get("type") == "assistant"
        for b in r["message"]["content"]
        if isinstance(b, dict) and b.get("type") == "tool_use"
    ]


def tool_results(recs: list[dict]) -> dict[str, dict]:
    out = {}
    for r in recs:
        content = (r.get("message") or {}).get("content") if r.get("type") == "user" else None
        for b in content if isinstance(content, list) else []:
            if b.get("type") == "tool_result":
                out[b["tool_use_id"]] = b
    return out


def summary_of(ctx, session_id: str) -> dict:
    return next(s for s in ctx.summaries() if s["session_id"] == session_id)


# ---------------------------------------------------------------- sniffing


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_every_claude_sample_is_sniffed_as_claude(path):
    assert claude.sniff(Probe(path))
    assert detect(Probe(path)) is claude


def test_other_formats_are_not_taken_for_claude(samples):
    others = [p for p in samples.rglob("*.json*") if "claude-code" not in p.parts]
    assert others
    for path in others:
        assert not claude.sniff(Probe(path)), path


def test_sniff_is_by_content_not_name(tmp_path):
    renamed = tmp_path / "notes.txt"
    shutil.copy(SESSION_214, renamed)  # its first line is a file-history-snapshot, then user/summary lines
    assert claude.sniff(Probe(renamed))
    other = tmp_path / "x.jsonl"
    other.write_text('{"sessionId": "s", "projectHash": "p", "messages": []}\n')
    assert not claude.sniff(Probe(other))


# ---------------------------------------------------------------- 2.0.64 main session


def test_lines_of_one_api_message_become_one_assistant_row():
    recs = records(MAIN_2064)
    s, report = read_one(MAIN_2064)
    rs = rows(s)
    msg_ids = list(dict.fromkeys(r["message"]["id"] for r in recs if r["type"] == "assistant"))
    assert len(msg_ids) == 7  # 10 assistant lines, 7 API messages (SOURCES.md, and counted here)
    assistants = [r for r in rs if r["role"] == "assistant"]
    assert [r["id"] for r in assistants] == msg_ids
    assert all(r["origin"] == "model" for r in assistants)
    first = assistants[0]
    assert first["text"] == "I'll create three simple files: hello.py, hello.md, and hello.js."
    # msg_bdrk_013S… streams output_tokens 4, 4, 4, 395 over its four lines: counted once, at its largest.
    assert first["output"] == 395
    assert (first["input_uncached"], first["cache_write"], first["cache_read"]) == (3, 35066, 0)
    assert first["context_tokens"] == 3 + 35066
    assert s.session_id == SID_2064 and s.parent_session_id is None
    assert (s.producer, s.producer_version, s.cwd) == ("claude-code", "2.0.64", "/tmp/private")
    assert s.model == "claude-sonnet-4-5-20250929"
    assert report.issues == []


def test_tool_rows_follow_their_call_and_carry_the_result():
    recs = records(MAIN_2064)
    s, _ = read_one(MAIN_2064)
    rs = rows(s)
    uses, results = tool_uses(recs), tool_results(recs)
    tools = [r for r in rs if r["role"] == "tool"]
    assert (
        [t["tool_name"] for t in tools]
        == [u["name"] for u in uses]
        == ["Write", "Write", "Write", "Read", "Edit", "Bash"]
    )
    for t, u in zip(tools, uses, strict=True):
        assert t["id"] == t["tool_call_id"] == u["id"]
        assert t["origin"] == "tool"
        assert json.loads(t["tool_input"]) == u["input"]
        assert t["tool_output"] == results[u["id"]]["content"]
        assert t["tool_status"] == "ok"
    # Each tool row sits after its assistant row (possibly after sibling tool rows) and points to it.
    last_assistant = None
    for r in rs:
        if r["role"] == "assistant":
            last_assistant = r["id"]
        elif r["role"] == "tool":
            assert r["parent_id"] == last_assistant
    # tool_result-only user lines are not user rows: the 3 user rows are the 3 typed prompts.
    typed = [r["message"]["content"] for r in recs if r["type"] == "user" and isinstance(r["message"]["content"], str)]
    assert [r["text"] for r in rs if r["role"] == "user"] == typed


def test_inspect_summary_of_the_main_session_lists_its_legacy_subagents():
    ctx = rj.load(CLAUDE)
    summ = summary_of(ctx, SID_2064)
    assert summ["user_prompts"] == ["create hello.py, md and js", "update py with one liner comment", "delete js"]
    assert summ["messages"] == {"assistant": 7, "tool": 6, "user": 3}
    assert summ["tokens"] == {**expected_usage(records(MAIN_2064)), "reasoning": 0}
    assert summ["tokens"]["output"] == 395 + 82 + 87 + 153 + 1 + 76 + 12  # checked by hand against the file
    assert sorted(summ["subagents"]) == [f"{SID_2064}:agent-36541525", f"{SID_2064}:agent-50243ee8"]
    for agent in LEGACY_AGENTS:
        child = summary_of(ctx, f"{SID_2064}:agent-{agent.stem.rsplit('-', 1)[1]}")
        assert child["parent_session_id"] == SID_2064
        assert child["user_prompts"] == []  # "Warmup" is the harness priming caches, not a person
        assert child["tokens"] == {**expected_usage(records(agent)), "reasoning": 0}


def test_legacy_sidechains_are_found_beside_the_main_file_with_their_real_names(tmp_path):
    main = tmp_path / f"{SID_2064}.jsonl"
    shutil.copy(MAIN_2064, main)
    for agent in LEGACY_AGENTS:
        shutil.copy(agent, tmp_path / f"agent-{agent.stem.rsplit('-', 1)[1]}.jsonl")
    stranger = tmp_path / "agent-ffffffff.jsonl"  # a sidechain of some other session in the same project
    stranger.write_text(LEGACY_AGENTS[0].read_text().replace(SID_2064, "00000000-other-session"))
    assert claude.related(main) == [tmp_path / "agent-36541525.jsonl", tmp_path / "agent-50243ee8.jsonl"]
    assert claude.related(tmp_path / "agent-36541525.jsonl") == []

    ctx = rj.load(main)  # only the main file is named: its sub-agents come through related()
    assert sorted(s["session_id"] for s in ctx.summaries()) == sorted(
        [SID_2064, f"{SID_2064}:agent-36541525", f"{SID_2064}:agent-50243ee8"]
    )
    warm = ctx.df.filter(ctx.df["session_id"] == f"{SID_2064}:agent-36541525")
    assert warm["role"].to_list() == ["user", "assistant"]
    assert warm["origin"].to_list() == ["harness", "model"]
    assert warm["text"][0] == "Warmup"


# ---------------------------------------------------------------- 2.1.4: summaries, thinking, Task


def test_summary_lines_thinking_rejections_and_interruptions():
    recs = records(SESSION_214)
    s, _ = read_one(SESSION_214)
    rs = rows(s)
    summaries = [r for r in rs if r["raw_type"] == "summary"]
    assert len(summaries) == sum(r["type"] == "summary" for r in recs) == 16
    assert {(r["role"], r["origin"], r["boundary"]) for r in summaries} == {("system", "harness", "summary")}
    assert summaries[0]["text"] == "Analyzing missing user message in session file"
    # None of the 16 summaries names a leaf of this file (they title other sessions), so the title is
    # the first prompt.
    uuids = {r.get("uuid") for r in recs}
    assert not any(r["leafUuid"] in uuids for r in recs if r["type"] == "summary")
    assert s.title == "show tools and store response in file"
    assert [r["text"] for r in rs if r["origin"] == "human"] == [
        "show tools and store response in file",
        "explore more of current repo",
        "what else?",
    ]
    notice = [r for r in rs if r["text"] == "[Request interrupted by user for tool use]"]
    assert len(notice) == 1 and notice[0]["origin"] == "harness"
    # The rejected Write is an error; turn_duration lines give no rows.
    write = next(r for r in rs if r["tool_name"] == "Write")
    assert write["tool_status"] == "error"
    assert write["tool_output"].startswith("The user doesn't want to proceed with this tool use.")
    assert not any((r["raw_type"] or "").endswith("turn_duration") for r in rs)
    assistants = [r for r in rs if r["role"] == "assistant"]
    assert len(assistants) == len({r["message"]["id"] for r in recs if r["type"] == "assistant"}) == 5
    thought = next(
        b["thinking"]
        for r in recs
        if r["type"] == "assistant"
        for b in r["message"]["content"]
        if b["type"] == "thinking"
    )
    assert assistants[1]["thinking"] == thought
    assert assistants[1]["text"].startswith("I'll explore the current repository to understand its structure")


def test_task_rows_name_the_subagent_session_they_ran():
    recs = records(SESSION_214)
    s, _ = read_one(SESSION_214)
    agent_ids = [
        r["toolUseResult"]["agentId"]
        for r in recs
        if isinstance(r.get("toolUseResult"), dict) and "agentId" in r["toolUseResult"]
    ]
    assert len(agent_ids) == 2
    tasks = [r for r in rows(s) if r["tool_name"] == "Task"]
    assert len(tasks) == 2
    for row, agent in zip(tasks, agent_ids, strict=True):
        assert row["tool_output"].endswith(f"[sub-agent session: {s.session_id}:agent-{agent}]")
        assert s.extra["subagent_calls"][row["tool_call_id"]] == f"{s.session_id}:agent-{agent}"


# ---------------------------------------------------------------- <session>/subagents/ layout


def test_newer_subagents_folder_is_loaded_with_the_main_file():
    sid = records(INCREMENTAL)[2]["sessionId"]
    assert claude.related(INCREMENTAL) == [SUBAGENT]
    ctx = rj.load(INCREMENTAL)
    child_id = f"{sid}:agent-a485154"
    parent = summary_of(ctx, sid)
    child = summary_of(ctx, child_id)
    assert parent["subagents"] == [child_id]
    assert child["parent_session_id"] == sid
    sub_recs = records(SUBAGENT)
    assert child["tool_calls"] == [u["name"] for u in tool_uses(sub_recs)]
    assert len(child["tool_calls"]) == 20  # SOURCES.md: 20 tool_use blocks
    assert child["messages"]["assistant"] == len({r["message"]["id"] for r in sub_recs if r["type"] == "assistant"})
    assert child["user_prompts"] == []  # its prompt was written by the parent model, not a person
    assert {k: child["tokens"][k] for k in ("input", "output", "cache_read", "cache_write")} == expected_usage(sub_recs)
    # The Task call in the parent points at the child that was loaded.
    task = ctx.df.filter((ctx.df["session_id"] == sid) & (ctx.df["tool_name"] == "Task"))
    assert task["tool_output"][0].endswith(f"[sub-agent session: {child_id}]")
    # The file's one `summary` line names a leaf elsewhere: the title is the first prompt, one-lined.
    assert parent["title"].startswith('@"solution-architect (agent)" analyze existing CLI command')
    assert parent["tokens"] == {**expected_usage(records(INCREMENTAL)), "reasoning": 0}


# ---------------------------------------------------------------- the 22-type catalogue


def test_record_catalogue_every_type_is_handled_on_purpose():
    recs = records(CATALOG)
    types = Counter(r["type"] for r in recs)
    assert len(types) == 22
    s, report = read_one(CATALOG)
    rs = rows(s)
    raw_types = Counter((r["raw_type"] or "").split("/")[0] for r in rs)
    # Bookkeeping types are skipped on purpose and listed in the module.
    for t in types:
        if t in claude.SKIPPED_TYPES:
            assert raw_types[t] == 0, t
    unknown = sorted(
        set(types)
        - claude.SKIPPED_TYPES
        - {"user", "assistant", "system", "attachment", "summary", "custom-title", "ai-title", "pr-link"}
    )
    assert unknown == ["result", "started"]
    for t in unknown:
        kept = [r for r in rs if r["raw_type"] == t]
        assert len(kept) == types[t] and all((r["role"], r["origin"]) == ("system", "harness") for r in kept)
        assert any(i.kind == "unknown" and t in i.reason and i.line for i in report.issues)
    assert s.title == next(r["customTitle"] for r in recs if r["type"] == "custom-title")
    assert any(r["raw_type"] == "pr-link" and "#" in r["text"] for r in rs)


def test_record_catalogue_compaction_summary_media_and_synthetic_errors():
    recs = records(CATALOG)
    s, report = read_one(CATALOG)
    rs = rows(s)
    boundaries = [i for i, r in enumerate(rs) if r["boundary"] == "compaction"]
    assert len(boundaries) == sum(r.get("subtype") == "compact_boundary" for r in recs) == 2
    assert "120,000 tokens before" in rs[boundaries[0]]["text"]  # compactMetadata.preTokens of line 21
    last = boundaries[-1]
    # Before the last boundary only one row stays in context: the queued_command attachment of line 43,
    # because an attachment with the same (scrubbed) uuid, kind and time is written again after it
    # (line 59), which is how preserved messages look (checked by hand in the file).
    assert [r["source"].rsplit(":", 1)[1] for r in rs[:last] if r["in_context"]] == ["43"]
    assert all(r["in_context"] for r in rs[last:])
    summary = next(r for r in rs if r["origin"] == "summary")
    assert (summary["role"], summary["boundary"], summary["text"]) == ("user", "summary", "Summary of prior context.")
    image = next(r for r in rs if "[media:" in (r["text"] or ""))
    assert image["role"] == "user" and "base64" not in image["text"]
    synthetic = next(r for r in rs if r["model"] == "<synthetic>")
    assert synthetic["origin"] == "harness"
    # The one real API message with usage (msg_stage0_1, line 29) is what the token columns add up to.
    assert sum(r["output"] or 0 for r in rs) == 5 and sum(r["input_uncached"] or 0 for r in rs) == 10
    # Records scrubbed to uuid and time "[trimmed for fixture]" repeat with the same kind: kept once, reported.
    assert any(i.kind == "duplicate" for i in report.issues)


# ---------------------------------------------------------------- replays, compaction, bad input


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_fork_replay_of_the_same_uuids_is_loaded_once(tmp_path):
    lines = _lines(MAIN_2064)
    path = tmp_path / "replayed.jsonl"
    path.write_text("\n".join(lines + lines[1:13]) + "\n")
    s, report = read_one(path)
    base, _ = read_one(MAIN_2064)
    assert len(s) == len(base)
    assert s.columns["output"] == base.columns["output"]
    dup = [i for i in report.issues if i.kind == "duplicate"]
    assert len(dup) == 1 and dup[0].line == len(lines) + 1  # line 2 written again
    assert "9 record(s)" in dup[0].reason  # lines 2-13 hold 9 records with a uuid; 7, 9, 11 are snapshots


def test_rows_before_the_last_compaction_are_out_of_context_unless_preserved(tmp_path):
    lines = _lines(MAIN_2064)
    boundary = {
        "parentUuid": None,
        "logicalParentUuid": "52b81d3c",
        "isSidechain": False,
        "type": "system",
        "subtype": "compact_boundary",
        "content": "Conversation compacted",
        "sessionId": SID_2064,
        "uuid": "compact-1",
        "timestamp": "2025-12-10T10:00:00.000Z",
        "compactMetadata": {"trigger": "manual", "preTokens": 36000},
    }
    prompt = lines[14]  # "update py with one liner comment", preserved: re-written after the boundary
    path = tmp_path / "compacted.jsonl"
    path.write_text("\n".join(lines[:14] + [json.dumps(boundary)] + lines[14:] + [prompt]) + "\n")
    s, _ = read_one(path)
    rs = rows(s)
    b = next(i for i, r in enumerate(rs) if r["boundary"] == "compaction")
    assert rs[b]["text"] == "Conversation compacted (manual trigger, 36,000 tokens before)"
    assert [r["in_context"] for r in rs[:b]] == [False] * b
    assert all(r["in_context"] for r in rs[b:])
    assert rs[b + 1]["text"] == "update py with one liner comment" and rs[b + 1]["in_context"]


def test_api_error_messages_add_no_tokens(tmp_path):
    lines = _lines(MAIN_2064)
    err = json.loads(lines[12])  # a real assistant line, turned into Claude Code's synthetic API error
    err["uuid"] = "err-1"
    err["isApiErrorMessage"] = True
    err["message"].update(
        id="synthetic-1",
        model="<synthetic>",
        content=[{"type": "text", "text": "API Error: 529 overloaded"}],
        usage={
            "input_tokens": 999,
            "output_tokens": 999,
            "cache_read_input_tokens": 999,
            "cache_creation_input_tokens": 999,
        },
    )
    path = tmp_path / "err.jsonl"
    path.write_text("\n".join(lines + [json.dumps(err)]) + "\n")
    s, _ = read_one(path)
    base, _ = read_one(MAIN_2064)
    for col in ("input_uncached", "output", "cache_read", "cache_write"):
        assert sum(v or 0 for v in s.columns[col]) == sum(v or 0 for v in base.columns[col])
    row = rows(s)[-1]
    assert (row["role"], row["origin"], row["text"]) == ("assistant", "harness", "API Error: 529 overloaded")
    assert s.model == "claude-sonnet-4-5-20250929"


def test_images_are_placeholders_and_wrappers_are_harness(tmp_path):
    lines = _lines(MAIN_2064)
    first = json.loads(lines[1])
    png = "iVBORw0KGgo" * 400
    first["message"]["content"] = [
        {"type": "text", "text": "<ide_opened_file>The user opened /tmp/private/hello.py</ide_opened_file>"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
        {"type": "text", "text": "create hello.py, md and js"},
    ]
    cmd = dict(json.loads(lines[14]), uuid="cmd-1", isMeta=None)
    cmd["message"] = {"role": "user", "content": "<command-name>/clear</command-name>\n<command-args></command-args>"}
    path = tmp_path / "media.jsonl"
    path.write_text("\n".join([lines[0], json.dumps(first)] + lines[2:] + [json.dumps(cmd)]) + "\n")
    s, _ = read_one(path)
    users = [r for r in rows(s) if r["role"] == "user"]
    assert users[0]["origin"] == "harness" and users[0]["text"].startswith("<ide_opened_file>")
    assert users[1]["origin"] == "human"
    assert users[1]["text"] == f"[media: image/png, {len(png) * 3 // 4:,} bytes]\ncreate hello.py, md and js"
    assert users[-1]["origin"] == "harness" and users[-1]["text"].startswith("<command-name>/clear")
    assert png not in "".join(r["text"] or "" for r in rows(s))


def test_broken_lines_are_reported_and_the_rest_loads(tmp_path):
    lines = _lines(MAIN_2064)
    unknown = json.dumps({"type": "brand-new-record", "sessionId": SID_2064, "uuid": "new-1", "payload": 1})
    body = lines[:5] + ['{"type": "user", "uuid": '] + lines[5:20] + [unknown] + lines[20:]
    data = ("\r\n".join(body)).encode() + b"\r\n"
    data = data.replace(b"delete js", b"delete \xff js")  # a non-UTF-8 byte inside a real prompt
    path = tmp_path / "broken.jsonl"
    path.write_bytes(data + lines[-1][: len(lines[-1]) // 2].encode())  # cut-off last line, no newline
    ctx = rj.load(path)
    summ = summary_of(ctx, SID_2064)
    assert summ["user_prompts"] == [
        "create hello.py, md and js",
        "update py with one liner comment",
        "delete \ufffd js",
    ]
    assert summ["tool_calls"] == ["Write", "Write", "Write", "Read", "Edit", "Bash"]
    assert summ["malformed_lines"] == 1
    issues = {(i.kind, i.line) for i in ctx.report.issues}
    assert ("malformed", 6) in issues  # the half record inserted after line 5
    assert ("unknown", 22) in issues
    assert ("truncated", len(body) + 1) in issues
    assert any(f"{path}:6" == i.where() for i in ctx.report.issues)
    kept = ctx.df.filter(ctx.df["raw_type"] == "brand-new-record")
    assert kept["role"].to_list() == ["system"] and kept["origin"].to_list() == ["harness"]


# ---------------------------------------------------------------- discover


def test_discover_lists_main_sessions_only(tmp_path, monkeypatch):
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    project = tmp_path / ".claude" / "projects" / "-tmp-private"
    (project / SID_2064 / "subagents").mkdir(parents=True)
    shutil.copy(MAIN_2064, project / f"{SID_2064}.jsonl")
    shutil.copy(LEGACY_AGENTS[0], project / "agent-36541525.jsonl")
    shutil.copy(SUBAGENT, project / SID_2064 / "subagents" / "agent-a485154.jsonl")
    assert claude.discover(tmp_path) == [project / f"{SID_2064}.jsonl"]

    other = tmp_path / "elsewhere"
    (other / "projects" / "p").mkdir(parents=True)
    shutil.copy(SESSION_214, other / "projects" / "p" / "s.jsonl")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(other))
    assert claude.discover(tmp_path) == [other / "projects" / "p" / "s.jsonl"]
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "missing"))
    assert claude.discover(tmp_path) == []


# --- timestamps: the instants the file recorded, in a plausible year -------------------------------------------


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name[:40])
def test_timestamps_land_within_the_times_the_file_recorded(path, times_within_file):
    """Every row time lies in the span of ISO times the file wrote, in a plausible year (no unit or zone slip)."""
    times_within_file(path)
