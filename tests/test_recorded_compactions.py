"""Real Claude Code (2.1.332 and 2.1.197), Codex CLI and OpenCode (1.18.33, pruning on) sessions that compacted for
real (tests/data/recorded/, see NOTES.md there).

Every expectation is computed here from the agent's own files with plain json / sqlite3, independently of the
loaders: the compaction records (Claude `compact_boundary` + `isCompactSummary`, Codex `compacted` +
`replacement_history`, OpenCode `compaction` parts + `tail_start_id` and pruned outputs' `state.time.compacted`),
what each says was kept, the typed prompts and the failed tool calls. The loaded table's `in_context` and the
X-ray's losses must agree.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

import rlm_jupyter as rj
from rlm_jupyter.window import xray

RECORDED = Path(__file__).parent / "data" / "recorded"
CLAUDE = RECORDED / "claude-code"
CODEX = RECORDED / "codex"


def _records(path: Path) -> list[tuple[int, dict]]:
    """(1-based line number, record) of a JSONL file."""
    with path.open(encoding="utf-8") as f:
        return [(n, json.loads(line)) for n, line in enumerate(f, 1) if line.strip()]


def _line(source: str) -> int:
    return int(source.rsplit(":", 1)[1])


def _only_file(root: Path) -> Path:
    files = sorted(root.rglob("*.jsonl"))
    assert len(files) == 1, files
    return files[0]


def _recording(folder: Path) -> dict:
    return json.loads((folder / "recording.json").read_text())


# --------------------------------------------------------------------------- Claude Code


@pytest.fixture(scope="module", params=["current", "v2.1.197"])
def claude(request):
    folder = CLAUDE / request.param
    path = _only_file(folder / "projects")
    ctx = rj.load(folder / "projects")
    return path, _records(path), ctx


def test_claude_file_is_the_recorded_version(claude):
    path, recs, ctx = claude
    versions = {r.get("version") for _, r in recs if r.get("type") in ("user", "assistant")}
    assert versions == {_recording(path.parents[2])["claude_version"].split()[0]}
    assert ctx.sessions["producer_version"].to_list() == list(versions)
    # three recordings (2.1.332 and 2.1.197 compacting, 2.1.332 micro-compacting): keep the folder small
    assert sum(f.stat().st_size for f in CLAUDE.rglob("*") if f.is_file()) < 2_400_000


def test_claude_compaction_boundaries(claude):
    _, recs, ctx = claude
    boundaries = [r for _, r in recs if r.get("type") == "system" and r.get("subtype") == "compact_boundary"]
    triggers = [b["compactMetadata"]["trigger"] for b in boundaries]
    assert triggers.count("manual") == 1 and triggers.count("auto") >= 1  # the /compact turn and real auto ones
    df = ctx.df
    rows = df.filter(pl.col("boundary") == "compaction")
    assert rows["id"].to_list() == [b["uuid"] for b in boundaries]
    assert rows["raw_type"].unique().to_list() == ["system/compact_boundary"]
    for b, text in zip(boundaries, rows["text"], strict=True):
        assert f"{b['compactMetadata']['trigger']} trigger" in text
        assert f"{b['compactMetadata']['preTokens']:,}" in text
    # Each boundary names the summary Claude Code wrote after it (isCompactSummary) as the anchor of what it kept.
    summaries = [r for _, r in recs if r.get("isCompactSummary")]
    assert [s["uuid"] for s in summaries] == [
        b["compactMetadata"]["preservedMessages"]["anchorUuid"] for b in boundaries
    ]
    srows = df.filter(pl.col("id").is_in([s["uuid"] for s in summaries]))
    assert srows["origin"].unique().to_list() == ["summary"]
    assert srows["boundary"].unique().to_list() == ["summary"]
    assert ctx.sessions["compactions"].to_list() == [len(boundaries)]


def _claude_row_keys(rec: dict) -> list[str]:
    """The ids the loader gives the rows of one user/assistant record: message.id, tool_use ids, else the uuid."""
    msg = rec.get("message") or {}
    content = msg.get("content")
    if rec["type"] == "assistant":
        return [msg["id"]] + [b["id"] for b in content if b.get("type") == "tool_use"]
    if isinstance(content, list) and any(b.get("type") == "tool_result" for b in content):
        return []  # fused into the tool row of its call (keyed by the tool_use id above)
    return [rec["uuid"]]


def test_claude_in_context_follows_the_last_boundary(claude):
    _, recs, ctx = claude
    last_line, last = max((n, r) for n, r in recs if r.get("subtype") == "compact_boundary")
    kept = set(last["compactMetadata"]["preservedMessages"]["uuids"])
    assert kept  # Claude Code names the messages it kept verbatim after the summary
    expected: dict[str, bool] = {}
    for n, r in recs:
        if r.get("type") not in ("user", "assistant"):
            continue
        for key in _claude_row_keys(r):
            expected.setdefault(key, n > last_line or r["uuid"] in kept)
    df = ctx.df.filter(pl.col("id").is_in(list(expected)))
    assert df.height == len(expected)
    got = dict(zip(df["id"], df["in_context"], strict=True))
    assert got == expected
    # What the compactions dropped: the big log read, the failed test run and the Redis decision text.
    dropped = ctx.df.filter(~pl.col("in_context"))
    assert dropped.filter(pl.col("tool_input").str.contains("sessions.log")).height == 1
    assert dropped.filter(pl.col("text").str.contains("We rejected Redis sessions")).height >= 1


def test_claude_prompts_and_tool_errors(claude):
    path, recs, ctx = claude
    typed = [
        r["message"]["content"]
        for _, r in recs
        if r.get("type") == "user"
        and isinstance(r["message"]["content"], str)
        and not r.get("isMeta")
        and not r.get("isCompactSummary")
        and not r["message"]["content"].startswith("<")
    ]
    assert typed == [p for p in _recording(path.parents[2])["prompts"] if not p.startswith("/")]
    df = ctx.df
    assert df.filter(pl.col("origin") == "human")["text"].to_list() == typed
    failed = {
        b["tool_use_id"]
        for _, r in recs
        if r.get("type") == "user" and isinstance(r["message"]["content"], list)
        for b in r["message"]["content"]
        if b.get("type") == "tool_result" and b.get("is_error")
    }
    assert len(failed) == 2  # the failing test run (exit 1) and the Read of a missing file
    assert set(df.filter(pl.col("tool_status") == "error")["id"]) == failed
    assert ctx.sessions.select("user_prompts", "tool_errors").row(0) == (len(typed), len(failed))


def test_claude_bookkeeping_and_synthetic_records(claude):
    _, recs, ctx = claude
    assert not [i for i in ctx.report.issues if i.kind == "unknown"]
    kinds = {r.get("type") for _, r in recs}
    version = next(r["version"] for _, r in recs if r.get("type") == "user")
    if version.startswith("2.1.3"):  # 2.1.3xx writes request bookkeeping into the session file
        assert {"api-request", "api-request-blob", "cost-state"} <= kinds
        assert not ctx.df["raw_type"].is_in(["api-request", "api-request-blob", "cost-state", "tools-used"]).any()
    # Replies no model produced (2.1.197 answers the turn after /compact itself) are harness rows, not model rows.
    synthetic = [
        r["message"]["id"]
        for _, r in recs
        if r.get("type") == "assistant" and r["message"].get("model") == "<synthetic>"
    ]
    rows = ctx.df.filter(pl.col("id").is_in(synthetic))
    assert rows.height == len(synthetic) and set(rows["origin"]) <= {"harness"}
    model_steps = {
        r["message"]["id"]
        for _, r in recs
        if r.get("type") == "assistant"  # one API message may span
        and r["message"].get("model") != "<synthetic>"
    }  # several lines
    assert set(ctx.df.filter(pl.col("origin") == "model")["id"]) == model_steps


MICRO = CLAUDE / "2.1.332-microcompact"
PERSISTED = "<persisted-output>"


def _result_text(block: dict) -> str:
    c = block.get("content")
    return c if isinstance(c, str) else "\n".join(b.get("text", "") for b in c or [] if isinstance(b, dict))


def test_claude_microcompact_recording(tmp_path):
    """The real CLI's micro-compaction (tools/record_claude_microcompact.py): it writes no marker record; the
    api-request-blob records of the retried request send old tool results as `<persisted-output>` pointers while
    the user records keep them whole. The X-ray clears exactly those results, from the step that request asked for."""
    path = _only_file(MICRO / "projects")
    recs = _records(path)
    rec = _recording(MICRO)
    assert {r.get("version") for _, r in recs if r.get("type") == "assistant"} == {rec["claude_version"].split()[0]}
    assert rec["requests_served"].count("reject:422") == 1 and rec["turns_unused"] == 0
    assert not [r for _, r in recs if r.get("subtype") == "microcompact_boundary"]  # 2.1.332 writes none
    full = {  # tool_use id -> output as the user record holds it
        b["tool_use_id"]: _result_text(b)
        for _, r in recs
        if r.get("type") == "user" and isinstance(r["message"].get("content"), list)
        for b in r["message"]["content"]
        if b.get("type") == "tool_result"
    }
    first_sent: dict[str, int] = {}  # tool_use id -> line of the first blob that sends it as a pointer
    for n, r in recs:
        if r.get("type") != "api-request-blob":
            continue
        for b in r["message"]["content"]:
            if b.get("type") == "tool_result" and _result_text(b).startswith(PERSISTED):
                first_sent.setdefault(b["tool_use_id"], n)
    cleared = sorted(t for t in first_sent if not full[t].startswith(PERSISTED))
    assert len(cleared) >= 2
    # each pointer names a file Claude Code saved, holding the output the user record keeps (as sent to the model:
    # its last line may differ, e.g. a Read's trailing empty line number or an appended system reminder)
    saved = path.with_suffix("") / "tool-results"
    assert sorted(f.stem for f in saved.iterdir()) == cleared
    for t in cleared:
        assert (saved / f"{t}.txt").read_text().startswith(full[t].rsplit("\n", 1)[0])
    # the step of the retried request: the first assistant record after the last of those blobs
    after = max(first_sent[t] for t in cleared)
    step_line = next(n for n, r in recs if n > after and r.get("type") == "assistant")

    ctx = rj.load(MICRO / "projects")
    xr = xray(ctx)
    ev = xr.events.filter(pl.col("kind") == "microcompact")
    assert ev.height == 1 and xr.events.height == 1
    ev = ev.row(0, named=True)
    assert (ev["how"], ev["removed_tool_outputs"], ev["removed_messages"]) == ("recorded", len(cleared), 0)
    assert "api-request-blob" in ev["note"]
    assert _line(ctx.df.row(ev["position"], named=True)["source"]) == step_line
    before, at = xr.window(ev["turn"] - 1), xr.window(ev["turn"])
    assert before.frame.filter(pl.col("id").is_in(cleared))["state"].to_list() == ["in"] * len(cleared)
    rows = at.frame.filter(pl.col("id").is_in(cleared))
    assert rows["state"].to_list() == ["pruned"] * len(cleared)
    assert rows["removed_by"].to_list() == [f"microcompact #{ev['event']}"] * len(cleared)
    assert ev["removed_tokens"] > 0 and at.tokens < before.tokens - ev["removed_tokens"] // 2
    # results Claude Code kept (the 5 most recent clearable ones and later) stay in
    kept = [t for t in full if t not in cleared]
    assert at.frame.filter(pl.col("id").is_in(kept))["state"].unique().to_list() == ["in"]


# --------------------------------------------------------------------------- Codex CLI


@pytest.fixture(scope="module")
def codex():
    path = _only_file(CODEX / "sessions")
    ctx = rj.load(CODEX / "sessions")
    return path, _records(path), ctx


def _message_text(item: dict) -> str:
    return "".join(c.get("text") or "" for c in item.get("content") or [])


def _exit_code(output: str) -> int | None:
    m = re.search(r"Process exited with code (-?\d+)", output)
    return int(m.group(1)) if m else None


def test_codex_compactions_auto_then_manual(codex):
    _, recs, ctx = codex
    compacted = [(n, r) for n, r in recs if r["type"] == "compacted"]
    assert len(compacted) == 2
    # The first happened inside the turn that read sessions.log (auto), the second in a turn with no user message:
    # the app-server's thread/compact/start (manual).
    turns: list[list[dict]] = []
    for _, r in recs:
        p = r["payload"]
        if r["type"] == "event_msg" and p.get("type") == "task_started":
            turns.append([])
        elif turns:
            turns[-1].append(r)
    with_compaction = [t for t in turns if any(r["type"] == "compacted" for r in t)]
    prompts = [
        [
            _message_text(r["payload"])
            for r in t
            if r["type"] == "response_item"
            and r["payload"].get("type") == "message"
            and r["payload"].get("role") == "user"
        ]
        for t in with_compaction
    ]
    assert prompts == [["Check sessions.log: how many expired sessions were served before the fix?"], []]
    sent = [json.loads(line) for line in (CODEX / "app-server-compact.jsonl").read_text().splitlines()]
    assert any(m.get("sent", {}).get("method") == "thread/compact/start" for m in sent)

    rows = ctx.df.filter(pl.col("boundary") == "compaction")
    assert [_line(s) for s in rows["source"]] == [n for n, _ in compacted]
    assert rows["raw_type"].to_list() == ["compacted", "compacted"]
    assert ctx.sessions["compactions"].to_list() == [len(compacted)]
    for (_, r), text in zip(compacted, rows["text"], strict=True):
        assert text == r["payload"]["message"]


def test_codex_in_context_follows_replacement_history(codex):
    _, recs, ctx = codex
    last_line, last = max((n, r) for n, r in recs if r["type"] == "compacted")
    kept = [_message_text(i) for i in last["payload"]["replacement_history"] if i.get("type") == "message"]
    assert "What did we decide about Redis, and why?" in kept
    expected: dict[int, bool] = {}  # line -> in_context, for the response items that make rows
    for n, r in recs:
        if r["type"] == "response_item" and r["payload"].get("type") in (
            "message",
            "function_call",
            "custom_tool_call",
        ):
            p = r["payload"]
            keep = p.get("type") == "message" and p.get("role") in ("user", "developer") and _message_text(p) in kept
            expected[n] = n > last_line or keep
    df = ctx.df.filter(pl.col("raw_type") != "compacted")
    got = {_line(s): v for s, v in zip(df["source"], df["in_context"], strict=True)}
    assert got == expected
    dropped = ctx.df.filter(~pl.col("in_context") & (pl.col("role") == "tool"))
    assert dropped.filter(pl.col("tool_input").str.contains("sessions.log")).height == 1


def test_codex_prompts_and_tool_errors(codex):
    _, recs, ctx = codex
    typed = [
        _message_text(r["payload"])
        for _, r in recs
        if r["type"] == "response_item"
        and r["payload"].get("type") == "message"
        and r["payload"].get("role") == "user"
        and not _message_text(r["payload"]).startswith("<")
    ]
    assert typed == [p for p in _recording(CODEX)["prompts"] if p]
    df = ctx.df
    assert df.filter(pl.col("origin") == "human")["text"].to_list() == typed
    failed = {
        r["payload"]["call_id"]
        for _, r in recs
        if r["type"] == "response_item"
        and r["payload"].get("type") == "function_call_output"
        and _exit_code(r["payload"]["output"])
    }
    assert len(failed) == 2  # the failing test run and `cat config.py`
    assert set(df.filter(pl.col("tool_status") == "error")["id"]) == failed
    assert ctx.sessions.select("user_prompts", "tool_errors").row(0) == (len(typed), len(failed))
    patches = df.filter(pl.col("text").str.starts_with("apply_patch"))
    assert patches.height == 2 and patches["tool_status"].to_list() == ["ok", "ok"]
    assert not [i for i in ctx.report.issues if i.kind == "unknown"]


def _claude_prefixes(recs: list[tuple[int, dict]]) -> list[tuple[int, int]]:
    """(boundary line, last line) per compact_boundary: the file as it stood just before the next compaction (or at
    the end), so that each boundary is once the last one and the loader's in_context follows its preservedMessages."""
    lines = [n for n, r in recs if r.get("subtype") == "compact_boundary"]
    ends = [n - 1 for n in lines[1:]] + [recs[-1][0]]
    return list(zip(lines, ends, strict=True))


def test_claude_in_context_follows_preserved_messages_at_every_boundary(claude, tmp_path):
    """Each compaction of the real file, as the file stood before the next one. The earlier automatic compactions
    kept a tool_use/tool_result pair, so this also checks that a preserved tool call keeps its tool row."""
    path, recs, _ = claude
    raw = path.read_text(encoding="utf-8").splitlines(keepends=True)
    saw_tool = False
    for k, (bline, end) in enumerate(_claude_prefixes(recs), 1):
        boundary = next(r for n, r in recs if n == bline)
        kept = set(boundary["compactMetadata"]["preservedMessages"]["uuids"])
        expected: dict[str, bool] = {}  # row id -> in context: any record behind the row is kept or after the boundary
        for n, r in recs:
            if n > end or r.get("type") not in ("user", "assistant"):
                continue
            msg = r.get("message") or {}
            content = msg.get("content") if isinstance(msg.get("content"), list) else []
            keys = [b["tool_use_id"] for b in content if b.get("type") == "tool_result"] or _claude_row_keys(r)
            for key in keys:
                expected[key] = expected.get(key, False) or n > bline or r["uuid"] in kept
        saw_tool |= any(
            r.get("uuid") in kept and r["type"] == "user" and isinstance(r["message"]["content"], list) for _, r in recs
        )
        prefix = tmp_path / f"k{k}" / path.name
        prefix.parent.mkdir()
        prefix.write_text("".join(raw[:end]), encoding="utf-8")
        df = rj.load(prefix).df
        assert df.filter(pl.col("boundary") == "compaction").height == k
        got = dict(zip(df["id"], df["in_context"], strict=True))
        assert {key: got.get(key) for key in expected} == expected, f"compaction {k}"
        kept_before = {key for key, v in expected.items() if v} & set(
            df.slice(0, df["id"].to_list().index(boundary["uuid"]))["id"].to_list()
        )
        assert kept_before, f"compaction {k} kept nothing before itself"
    assert saw_tool  # at least one compaction preserved a tool_result (its tool row)


# --------------------------------------------------------------------------- X-ray losses = the files' compactions


def test_claude_xray_losses_are_every_record_the_boundaries_dropped(claude):
    """Every message a compact_boundary dropped (computed from the records above: all before the last boundary not
    in its preservedMessages, plus earlier rows, which never return) is reported lost by exactly one X-ray event,
    and nothing else is."""
    path, recs, ctx = claude
    xr = xray(ctx)
    lo = xr.losses(sub_model=None)
    last_line, last = max((n, r) for n, r in recs if r.get("subtype") == "compact_boundary")
    kept = set(last["compactMetadata"]["preservedMessages"]["uuids"])
    dropped: set[str] = set()
    for n, r in recs:
        if r.get("type") in ("user", "assistant") and n < last_line and r["uuid"] not in kept:
            dropped |= set(_claude_row_keys(r))
    preserved = {k for n, r in recs if r.get("uuid") in kept for k in _claude_row_keys(r)}
    ids = lo.removed["id"].to_list()
    assert len(ids) == len(set(ids))  # each message is lost once
    assert set(ids) == dropped - preserved
    assert lo.summary.height == ctx.sessions["compactions"][0]


def test_codex_xray_losses_are_every_item_replacement_history_dropped(codex):
    path, recs, ctx = codex
    lo = xray(ctx).losses(sub_model=None)
    last_line, last = max((n, r) for n, r in recs if r["type"] == "compacted")
    kept = [_message_text(i) for i in last["payload"]["replacement_history"] if i.get("type") == "message"]
    dropped = {
        n
        for n, r in recs
        if n < last_line
        and r["type"] == "response_item"
        and r["payload"].get("type") in ("message", "function_call", "custom_tool_call")
        and not (r["payload"].get("type") == "message" and _message_text(r["payload"]) in kept)
    }
    first_summary = min(n for n, r in recs if r["type"] == "compacted")  # replaced by the second summary
    source = dict(zip(ctx.df["id"], ctx.df["source"], strict=True))
    ids = lo.removed["id"].to_list()
    assert len(ids) == len(set(ids))  # each row is lost once (a step row and its first call share a line)
    assert {_line(source[i]) for i in ids} == dropped | {first_summary}


# --------------------------------------------------------------------------- OpenCode with pruning on

OPENCODE_PRUNE = RECORDED / "opencode" / "prune"


@pytest.fixture(scope="module")
def opencode_prune(tmp_path_factory):
    import lzma
    import sqlite3

    db = tmp_path_factory.mktemp("opencode-prune") / "opencode.db"
    db.write_bytes(lzma.decompress((OPENCODE_PRUNE / "opencode.db.xz").read_bytes()))
    con = sqlite3.connect(f"file:{db}?immutable=1", uri=True)
    msgs = con.execute("SELECT id FROM message ORDER BY time_created, id").fetchall()
    parts = [(m, json.loads(d)) for m, d in con.execute("SELECT message_id, data FROM part ORDER BY id")]
    con.close()
    return db, [m for (m,) in msgs], parts, rj.load(db)


def test_opencode_prune_in_context_follows_the_store(opencode_prune):
    """The loader's in_context: messages before the compaction's kept tail are out, and so is every tool output
    OpenCode stamped `state.time.compacted`; the rest is in."""
    _, order, parts, ctx = opencode_prune
    ((cmsg, comp),) = [(m, p) for m, p in parts if p["type"] == "compaction"]
    cut = order.index(comp["tail_start_id"])
    assert cut < order.index(cmsg)  # a real kept tail
    expected = {m: i >= cut for i, m in enumerate(order)}
    for m, p in parts:
        if p["type"] == "tool":
            expected[p["callID"]] = order.index(m) >= cut and not p["state"].get("time", {}).get("compacted")
    df = ctx.df
    got = dict(zip(df["id"], df["in_context"], strict=True))
    assert {k: got[k] for k in expected} == expected
    assert sum(not v for k, v in expected.items() if k.startswith("call_")) == 15  # 16 calls, the tail keeps one
    assert ctx.sessions["compactions"].to_list() == [1]
    rec = json.loads((OPENCODE_PRUNE / "recording.json").read_text())
    typed = df.filter(pl.col("origin") == "human")["text"].to_list()
    assert typed == rec["prompts"]
    assert df.filter(pl.col("tool_status") == "error").height == 2  # the failing test (exit 1) and config.py
