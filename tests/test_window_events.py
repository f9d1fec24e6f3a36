"""Window events recorded at load time (sessions/window.py) and the new ways agents drop context (issue 16).

Real files where they exist: the recorded Claude Code, Codex and OpenCode sessions (tests/data/recorded) and the real
Gemini CLI sample. No real file has Claude Code micro-compaction, API context editing, Gemini masking or compression,
or a Codex remote compaction (the CLIs that write them are not on this machine, and the scripted server gets local
compaction only): those tests add the documented records (docs/xray.md, "Where the shapes come from") to a copy of a
real session, and say so.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

import rlm_jupyter as rj
from rlm_jupyter.sessions.schema import WINDOW_EVENT
from rlm_jupyter.testing.samples import sample_tree
from rlm_jupyter.window import xray

DATA = Path(__file__).parent / "data"
CLAUDE = (
    DATA
    / "recorded/claude-code/current/projects/-tmp-claude-record-repo"
    / "ce2150e9-7c2e-46ec-b1a1-b6f775738f6d.jsonl"
)
CODEX = (
    DATA
    / "recorded/codex/sessions/2026/12/01"
    / "rollout-2026-12-01T15-03-29-01a23221-dad8-7d61-8b74-1e2d37966c84.jsonl"
)
GEMINI = sample_tree() / "gemini/session-2026-01-16T11-01-file-ops-37b7abef.json"
PLACEHOLDER = "[Old tool result content cleared]"


def _load(path):
    return rj.load(path, cache=False)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(path: Path, recs: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def _claude_tool_lines(recs):
    """(index, tool_use id) of the assistant records that call a tool, in order."""
    out = []
    for k, r in enumerate(recs):
        content = (r.get("message") or {}).get("content") if r.get("type") == "assistant" else None
        for b in content if isinstance(content, list) else ():
            if b.get("type") == "tool_use":
                out.append((k, b["id"]))
    return out


def _result_before_last_compaction(recs) -> int:
    """A tool result that stays in the window for a few steps (the recorded session compacts often)."""
    return sorted(
        k
        for k, r in enumerate(recs)
        if r.get("type") == "user"
        and isinstance((r.get("message") or {}).get("content"), list)
        and r["message"]["content"][0].get("type") == "tool_result"
    )[0]


# ---- the table carries the events; the X-ray reads nothing else ---------------------------------------------------


def test_window_columns_are_in_the_table_and_typed():
    ctx = _load(CODEX)
    assert {"out_by", "cleared_by", "window_event"} <= set(ctx.df.columns)
    assert ctx.df.schema["window_event"] == pl.Struct(
        {k: {"str": pl.String, "int": pl.Int64}[v] for k, v in WINDOW_EVENT.items()}
    )
    ev = ctx.df.filter(pl.col("window_event").is_not_null())
    assert ev["window_event"].struct.field("kind").to_list() == ["compaction", "compaction"]
    # every removed row points at an event row of its own session
    out = ctx.df.filter(pl.col("out_by").is_not_null())
    assert out.height > 0 and set(out["out_by"]) <= set(ev["seq"])


@pytest.mark.parametrize("name", ["claude", "codex", "opencode-prune"])
def test_xray_reads_only_the_table(tmp_path, name):
    """The agent's files are gone once loaded: the X-ray is the same (nothing re-parsed)."""
    if name == "claude":
        src = tmp_path / "s.jsonl"
        shutil.copy(CLAUDE, src)
    elif name == "codex":
        src = tmp_path / "rollout.jsonl"
        shutil.copy(CODEX, src)
    else:
        import lzma

        src = tmp_path / "opencode.db"
        src.write_bytes(lzma.decompress((DATA / "recorded/opencode/prune/opencode.db.xz").read_bytes()))
    ctx = _load(src)
    before = xray(ctx).events
    src.unlink()
    after = xray(ctx).events
    assert before.height > 0
    assert after.equals(before)


# ---- Claude Code: micro-compaction and API context editing --------------------------------------------------------


def test_claude_microcompact_boundary_clears_the_named_results(tmp_path):
    """`microcompact_boundary{trigger, preTokens, tokensSaved, compactedToolIds}` (the shape reported from Claude Code's
    source; no real transcript with one is public) inserted into a real recorded session after its 4th tool result."""
    recs = _lines(CLAUDE)
    tools = _claude_tool_lines(recs)
    named = [tools[0][1], tools[1][1]]
    after = next(k for k, r in enumerate(recs) if k > tools[3][0] and r.get("type") == "user")
    base = recs[after]
    mc = {
        "type": "system",
        "subtype": "microcompact_boundary",
        "sessionId": base["sessionId"],
        "uuid": "mc-0001",
        "parentUuid": base["uuid"],
        "timestamp": base["timestamp"],
        "isSidechain": False,
        "isMeta": False,
        "content": "Microcompacted tool results",
        "level": "info",
        "version": base.get("version"),
        "microcompactMetadata": {
            "trigger": "auto",
            "preTokens": 13400,
            "tokensSaved": 900,
            "compactedToolIds": [*named, "toolu_not_in_this_file"],
        },
    }
    path = _write(tmp_path / "s.jsonl", recs[: after + 1] + [mc] + recs[after + 1 :])
    xr = xray(_load(path))
    ev = xr.events.filter(pl.col("kind") == "microcompact").row(0, named=True)
    assert (ev["how"], ev["pre_tokens"], ev["tokens_saved"], ev["trigger"]) == ("recorded", 13400, 900, "auto")
    assert ev["removed_tool_outputs"] == 2 and ev["removed_messages"] == 0
    assert "1 of them not in this file" in ev["note"]
    # before the boundary the outputs were in the window; from the next step on only the calls
    first, last = xr.window(ev["turn"] - 1), xr.window(ev["turn"])
    assert first.frame.filter(pl.col("id").is_in(named))["state"].to_list() == ["in", "in"]
    rows = last.frame.filter(pl.col("id").is_in(named))
    assert rows["state"].to_list() == ["pruned", "pruned"]
    assert rows["removed_by"].to_list() == [f"microcompact #{ev['event']}"] * 2
    assert last.tokens < first.tokens + 200  # the cleared outputs no longer count


def test_claude_placeholder_without_record_is_inferred(tmp_path):
    recs = _lines(CLAUDE)
    k = _result_before_last_compaction(recs)
    recs[k]["message"]["content"][0]["content"] = PLACEHOLDER
    tid = recs[k]["message"]["content"][0]["tool_use_id"]
    xr = xray(_load(_write(tmp_path / "s.jsonl", recs)))
    ev = xr.events.filter(pl.col("kind") == "microcompact").row(0, named=True)
    assert ev["how"] == "inferred" and ev["removed_tool_outputs"] == 1
    assert "not in the file" in ev["note"] and "not recorded" in ev["note"]
    # the step that answered the result saw it; from the next one on, only the call
    answered = xr.window(ev["turn"] - 1).frame.filter(pl.col("id") == tid)
    assert answered["state"].to_list() == ["in"]
    assert xr.window(ev["turn"]).frame.filter(pl.col("id") == tid)["state"].to_list() == ["pruned"]


def test_claude_api_context_editing_clears_the_oldest_results(tmp_path):
    """`context_management.applied_edits` of an API response (the Messages API's context editing report)."""
    recs = _lines(CLAUDE)
    tools = _claude_tool_lines(recs)
    step = next(k for k, r in enumerate(recs) if k > tools[2][0] and r.get("type") == "assistant")
    recs[step]["message"]["context_management"] = {
        "applied_edits": [{"type": "clear_tool_uses_20250919", "cleared_tool_uses": 2, "cleared_input_tokens": 640}]
    }
    xr = xray(_load(_write(tmp_path / "s.jsonl", recs)))
    ev = xr.events.filter(pl.col("kind") == "context_edit").row(0, named=True)
    assert ev["tokens_saved"] == 640 and ev["how"] == "inferred" and ev["removed_tool_outputs"] == 2
    assert "clear_tool_uses_20250919" in ev["note"] and "oldest" in ev["note"]
    win = xr.window(ev["turn"])
    cleared = win.frame.filter(pl.col("state") == "pruned")["id"].to_list()
    assert cleared == [tools[0][1], tools[1][1]]  # the oldest two, as the API clears them


# ---- Codex: local (readable) and remote (opaque) compaction -------------------------------------------------------


def test_codex_local_summary_is_readable_remote_is_opaque(tmp_path):
    recs = _lines(CODEX)
    ctx = _load(CODEX)
    local = xray(ctx).events
    assert local["summary_kind"].to_list() == ["readable", "readable"]
    # a remote compaction keeps no readable message: only an encrypted `compaction` item (openai/codex remote
    # /responses/compact; its encrypted_content is opaque by design)
    k = next(k for k, r in enumerate(recs) if r["type"] == "compacted")
    recs[k]["payload"]["message"] = ""
    recs[k]["payload"]["replacement_history"].append({"type": "compaction", "encrypted_content": "gAAAAABo" + "x" * 80})
    xr = xray(_load(_write(tmp_path / "rollout.jsonl", recs)))
    first = xr.events.row(0, named=True)
    assert first["summary_kind"] == "opaque" and first["summary_id"] is None
    assert "encrypted" in first["note"]
    assert xr.events["summary_kind"].to_list()[1] == "readable"
    assert first["removed_messages"] == local["removed_messages"][0]


# ---- Gemini CLI: tool-output masking and inferred compression -----------------------------------------------------


def _gemini_project(tmp_path: Path) -> tuple[Path, dict]:
    doc = json.loads(GEMINI.read_text())
    chats = tmp_path / ".gemini/tmp" / doc["projectHash"] / "chats"
    chats.mkdir(parents=True)
    return chats, doc


def _first_call(doc) -> tuple[int, dict]:
    k = next(k for k, m in enumerate(doc["messages"]) if m.get("toolCalls"))
    call = next(c for c in doc["messages"][k]["toolCalls"] if c["name"] == "read_file")
    return k, call


def _snippet(path: str, text: str) -> str:
    return (
        f"<tool_output_masked>\n[Tool output ({len(text.encode()) / 1048576:.2f}MB, {text.count(chr(10)) + 1} "
        f"lines) masked to preserve context window. Full output saved to: {path}]\n</tool_output_masked>"
    )


def _set_output(call: dict, text: str) -> None:
    call["result"][0]["functionResponse"]["response"]["output"] = text


def test_gemini_masking_upsert_keeps_the_original_and_when(tmp_path):
    """JSONL recording (metadata line, message upserts): masking rewrites an old message with the snippet
    (gemini-cli toolOutputMaskingService + chatRecordingService.updateMessagesFromHistory)."""
    chats, doc = _gemini_project(tmp_path)
    k, call = _first_call(doc)
    original = call["result"][0]["functionResponse"]["response"]["output"]
    meta = {key: doc[key] for key in ("sessionId", "projectHash", "startTime", "lastUpdated")}
    lines: list[dict] = [meta]
    masked_before = k + 3  # the rewrite comes just before this message is first written
    for x, m in enumerate(doc["messages"]):
        if x == masked_before:
            rewrite = json.loads(json.dumps(doc["messages"][k]))
            _set_output(
                next(c for c in rewrite["toolCalls"] if c["id"] == call["id"]),
                _snippet(f"{chats.parent}/tool-outputs/session-{doc['sessionId']}/read_file_x.txt", original),
            )
            lines.append(rewrite)
        lines.append(m)
    xr = xray(_load(_write(chats / "session-2026-01-16T11-01-37b7abef.jsonl", lines)))
    row = xr.rows.filter(pl.col("tool_call_id") == call["id"]).row(0, named=True)
    assert row["tool_output"] == original  # the output the model saw before masking
    ev = xr.events.filter(pl.col("kind") == "masking").row(0, named=True)
    assert ev["how"] == "recorded" and ev["removed_tool_outputs"] == 1
    assert "earlier write" in ev["note"]
    step = xr.rows.filter(pl.col("id") == doc["messages"][masked_before]["id"])["local"][0]
    assert xr.turns.filter(pl.col("local") == step)["turn"][0] == ev["turn"]
    assert xr.window(ev["turn"] - 1).frame.filter(pl.col("tool_call_id") == call["id"])["state"][0] == "in"
    masked = xr.window(ev["turn"]).frame.filter(pl.col("tool_call_id") == call["id"])
    assert masked["state"][0] == "pruned" and masked["removed_by"][0] == f"masking #{ev['event']}"


def test_gemini_masking_reads_the_original_from_tool_outputs(tmp_path):
    """A JSON recording holds only the snippet: the original is the file under the project's tool-outputs folder."""
    chats, doc = _gemini_project(tmp_path)
    k, call = _first_call(doc)
    original = call["result"][0]["functionResponse"]["response"]["output"] + "\n(full output on disk)"
    folder = chats.parent / "tool-outputs" / f"session-{doc['sessionId']}"
    folder.mkdir(parents=True)
    name = f"read_file_{call['id'].lower()}_a1b2c3.txt"
    (folder / name).write_text(original)
    # the snippet names the path on the machine that recorded it; the copy is found by its name
    _set_output(
        call,
        _snippet(
            f"/home/someone/.gemini/tmp/{doc['projectHash']}/tool-outputs/session-{doc['sessionId']}/{name}", original
        ),
    )
    path = chats / GEMINI.name
    path.write_text(json.dumps(doc))
    xr = xray(_load(path))
    row = xr.rows.filter(pl.col("tool_call_id") == call["id"]).row(0, named=True)
    assert row["tool_output"] == original and row["tool_output_bytes"] == len(original.encode())
    ev = xr.events.filter(pl.col("kind") == "masking").row(0, named=True)
    assert ev["how"] == "inferred" and "tool-outputs" in ev["note"]  # when it was masked is not in a JSON file
    assert xr.window(None).frame.filter(pl.col("tool_call_id") == call["id"])["state"][0] == "pruned"


def test_gemini_masking_never_reads_outside_tool_outputs(tmp_path):
    chats, doc = _gemini_project(tmp_path)
    _k, call = _first_call(doc)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the loader")
    _set_output(call, _snippet(str(secret), "x"))
    (chats.parent / "tool-outputs").mkdir()
    path = chats / GEMINI.name
    path.write_text(json.dumps(doc))
    xr = xray(_load(path))
    out = xr.rows.filter(pl.col("tool_call_id") == call["id"])["tool_output"][0]
    assert "not for the loader" not in out and "<tool_output_masked>" in out
    ev = xr.events.filter(pl.col("kind") == "masking").row(0, named=True)
    assert "not found" in ev["note"]


def test_gemini_compression_is_inferred_from_the_token_drop(tmp_path):
    """Gemini CLI writes no record of a chat compression: a prompt that falls with no rewind is one ("inferred")."""
    chats, doc = _gemini_project(tmp_path)
    steps = [m for m in doc["messages"] if m["type"] == "gemini" and m.get("tokens")]
    dropped = steps[-2]
    before = steps[-3]["tokens"]["input"] + steps[-3]["tokens"].get("tool", 0)
    dropped["tokens"]["input"] = 3000
    dropped["tokens"]["cached"] = 0
    path = chats / GEMINI.name
    path.write_text(json.dumps(doc))
    xr = xray(_load(path))
    ev = xr.events.filter(pl.col("kind") == "compression").row(0, named=True)
    assert ev["how"] == "inferred" and ev["pre_tokens"] == before
    assert ev["post_tokens"] == 3000 + dropped["tokens"].get("tool", 0)
    assert ev["removed_messages"] > 0 and "30 %" in ev["note"]
    turn = xr.turns.filter(pl.col("id") == dropped["id"])
    assert "inferred" in turn["flags"][0] and f"compression #{ev['event']}" in turn["events"][0]
    # unchanged sample: no compression is made up
    assert "compression" not in xray(_load(GEMINI)).events["kind"].to_list()


def test_corpus_counts_new_kinds(tmp_path):
    recs = _lines(CLAUDE)
    k = _result_before_last_compaction(recs)
    recs[k]["message"]["content"][0]["content"] = PLACEHOLDER
    ctx = _load(_write(tmp_path / "s.jsonl", recs))
    row = rj.xray_corpus(ctx).df.row(0, named=True)
    events = xray(ctx).events
    assert row["prunes"] == 1 and row["compactions"] == 4  # a micro-compaction counts with the prunes
    assert row["removed_tool_outputs"] == events["removed_tool_outputs"].sum()


def test_a_frame_without_window_events_is_resolved_from_its_rows():
    """A frame made without the loaders (or saved by an older version) has boundaries and in_context but no window
    columns: the X-ray resolves them from the rows, and says so."""
    from rlm_jupyter.context import Context

    ctx = _load(CODEX)
    bare = Context.from_frame(ctx.df.drop("out_by", "cleared_by", "window_event"), ctx.sessions, cache=False)
    xr, full = xray(bare), xray(ctx)
    assert xr.events["kind"].to_list() == full.events["kind"].to_list() == ["compaction", "compaction"]
    assert any("carries no window events" in n for n in xr.notes)
    assert not any("carries no window events" in n for n in full.notes)
    # what only the reader knew (replacement_history) is not there: the last compaction keeps what in_context says
    assert xr.events["removed_messages"][-1] == full.events["removed_messages"][-1]


def test_masking_records_with_bad_values_are_read(tmp_path):
    """Untrusted records: a snippet naming an impossible path, upserts whose toolCalls are not calls."""
    chats, doc = _gemini_project(tmp_path)
    _k, call = _first_call(doc)
    _set_output(call, _snippet("/tmp/\x00bad" + "x" * 5000, "x"))
    meta = {key: doc[key] for key in ("sessionId", "projectHash", "startTime", "lastUpdated")}
    first = doc["messages"][3]
    lines = [
        meta,
        *doc["messages"][:4],
        {**first, "toolCalls": ["not a call", {"id": 7}, None]},
        {**first, "toolCalls": "<tool_output_masked>"},
        *doc["messages"][4:],
    ]
    path = _write(chats / "session-x.jsonl", lines)
    ctx = rj.load(path, cache=False)
    assert len(ctx) > 0 and xray(ctx).turns.height > 0
    # the legacy JSON with the impossible path
    (chats / "legacy.json").write_text(json.dumps(doc))
    xr = xray(rj.load(chats / "legacy.json", cache=False))
    assert "not found" in xr.events.filter(pl.col("kind") == "masking")["note"][0]
