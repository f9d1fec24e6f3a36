"""Context X-ray on real recorded compactions (OpenCode 1.18 / 1.1 / 1.18 with a real prune, Claude Code, Codex CLI)
and the samples.

The windows are checked against what each agent actually sent its model (`requests.jsonl.gz`, recorded by the
scripted server), and the losses against what the agent's own files say each compaction removed, computed here
from the raw files (SQLite rows, JSONL records), not through the loaders.
"""

from __future__ import annotations

import gzip
import json
import lzma
import sqlite3
from pathlib import Path

import polars as pl
import pytest

import rlm_jupyter as rj
from rlm_jupyter.context.errors import ArgumentError, PositionError, UnknownIdError
from rlm_jupyter.window import xray

REC = Path(__file__).parent / "data" / "recorded"
OC_CURRENT = REC / "opencode" / "current"
OC_V11 = REC / "opencode" / "v1.1"
CLAUDE = REC / "claude-code"
CODEX = REC / "codex"
OC_PRUNE = REC / "opencode" / "prune"
OPENCODE_CLEARED = "[Old tool result content cleared]"  # what OpenCode sends for a pruned tool output


def requests(folder: Path) -> list[dict]:
    xz = folder / "requests.jsonl.xz"
    with (
        lzma.open(xz, "rt", encoding="utf-8")
        if xz.exists()
        else gzip.open(folder / "requests.jsonl.gz", "rt", encoding="utf-8")
    ) as f:
        return [json.loads(line) for line in f]


def esc(text: str) -> str:
    """How `text` appears inside JSON (without the quotes)."""
    return json.dumps(text)[1:-1]


def blob_of(body: dict, summaries: list[str] = (), skip: tuple[str, ...] = ()) -> str:
    """The conversation part of a request body (not the system prompt or the tool definitions), as JSON text.
    Text that carries a compaction summary is left out: a summary may quote earlier prompts, and it is checked as
    a row of its own, not searched inside."""
    heads = [s.strip()[:80] for s in summaries if s and len(s.strip()) >= 40]

    def strip(v):
        if isinstance(v, str):
            for marker in skip:  # appended reminders: keep what comes before them
                v = v.split(marker, 1)[0]
            return "" if any(h in v for h in heads) else v
        if isinstance(v, list):
            return [strip(x) for x in v]
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items()}
        return v

    items = body.get("messages") if "messages" in body else body.get("input")
    items = [strip(m) for m in items if not (isinstance(m, dict) and m.get("role") == "system")]
    return json.dumps(items, ensure_ascii=False)


def check_window_matches_request(xr, turn: int, body: dict, summaries: list[str] = (), skip=()) -> int:
    """Every distinct human prompt and distinctive tool output of the session is in the request iff it is in our
    window of that turn (a pruned output is not: its call stays, its output was cleared). Returns how many items
    were compared."""
    blob = blob_of(body, summaries, skip)
    w = xr.window(turn)
    inside = set(w.messages.filter(pl.col("state") == "in")["id"].to_list())
    pruned = w.messages.filter(pl.col("state") == "pruned")
    assert blob.count(esc(OPENCODE_CLEARED)) == pruned.height, f"turn {turn}: pruned outputs"
    rows = xr.rows.filter(~pl.col("marker"))
    expected: dict[str, bool] = {}
    for r in rows.iter_rows(named=True):
        if r["origin"] == "human" and r["text"] and len(r["text"].strip()) >= 12:
            key = esc(r["text"].strip())
        elif r["role"] == "tool" and r["tool_output"] and len(r["tool_output"].strip()) >= 40:
            key = esc(r["tool_output"].strip()[:60])
        else:
            continue
        expected[key] = expected.get(key, False) or r["id"] in inside
    assert expected, "nothing to compare"
    wrong = {k[:50]: v for k, v in expected.items() if (k in blob) != v}
    assert not wrong, f"turn {turn}: in our window (True) vs sent to the model: {wrong}"
    return len(expected)


# ---- OpenCode: windows vs the requests OpenCode sent -------------------------------------------------------------


@pytest.mark.parametrize("folder, store", [(OC_CURRENT, "opencode.db"), (OC_V11, "storage")])
def test_opencode_windows_are_what_the_model_was_sent(folder, store):
    ctx = rj.load(folder / store)
    xr = xray(ctx)  # the main session: the one with the compaction
    assert xr.format == "opencode" and xr.events.height == 1
    reqs = [r for r in requests(folder) if r["answered_with"] != "rule:0"]  # title requests are not session steps
    main = [r for r in reqs if not _first_user(r["body"]).lstrip().startswith("REVIEW-CHILD")]  # not the child's
    assert len(main) == xr.turns.height  # one request per model step, the compaction call included
    summary = xr.rows.filter(pl.col("origin") == "summary")["text"].to_list()
    compared = 0
    for turn, r in enumerate(main, 1):
        compared += check_window_matches_request(xr, turn, r["body"], summary)
    assert compared > 100
    # after the compaction the model saw: the compaction prompt, the summary, the continue message (+ later turns)
    ev = xr.events.row(0, named=True)
    after = xr.window(ev["turn"])
    assert after.messages["role"].to_list() == ["user", "assistant", "user"]
    assert after.messages["text"][0] == "What did we do so far?"
    assert after.messages["origin"][1] == "summary"
    request = main[ev["turn"] - 1]["body"]["messages"]
    assert [m["role"] for m in request if m["role"] != "system"] == ["user", "assistant", "user"]
    # the compaction call itself still saw everything before it
    call = xr.turns.filter(pl.col("turn") == ev["turn"] - 1).row(0, named=True)
    assert "compaction_call" in call["flags"] and call["window_messages"] == ev["position"] - xr.offset + 1


def _first_user(body: dict) -> str:
    m = next(m for m in body["messages"] if m["role"] == "user")
    c = m["content"]
    return c if isinstance(c, str) else " ".join(b.get("text", "") for b in c if isinstance(b, dict))


def _opencode_compacted_ids(db: Path, session: str) -> set[str]:
    """From opencode.db itself: the messages before the compaction message (no tail kept), and their tool calls."""
    con = sqlite3.connect(f"file:{db.resolve()}?immutable=1", uri=True)
    try:
        msgs = con.execute(
            "SELECT id, time_created FROM message WHERE session_id = ? ORDER BY time_created, id", (session,)
        ).fetchall()
        parts = con.execute("SELECT message_id, data FROM part WHERE session_id = ? ORDER BY id", (session,)).fetchall()
    finally:
        con.close()
    comp = [mid for mid, data in parts if json.loads(data).get("type") == "compaction"]
    assert len(comp) == 1
    tail = json.loads(next(d for m, d in parts if m == comp[0] and json.loads(d).get("type") == "compaction"))
    assert tail.get("tail_start_id") is None  # this recording keeps no tail
    order = [m for m, _ in msgs]
    before = set(order[: order.index(comp[0])])
    calls = {json.loads(d)["callID"] for m, d in parts if m in before and json.loads(d).get("type") == "tool"}
    return before | calls


def test_opencode_losses_are_the_messages_the_store_says_were_compacted():
    ctx = rj.load(OC_CURRENT / "opencode.db")
    xr = xray(ctx)
    lo = xr.losses(sub_model=None)
    expected = _opencode_compacted_ids(OC_CURRENT / "opencode.db", xr.session_id)
    assert set(lo.removed["id"].to_list()) == expected
    s = lo.summary.row(0, named=True)
    assert s["removed_messages"] == len(expected) and s["removed_tool_outputs"] == 10
    assert s["removed_tokens"] == xr.rows.filter(pl.col("id").is_in(list(expected)))["tokens"].sum()
    # what the recording made the model do before the compaction, found among the losses and cited by id
    f = lo.findings
    decision = f.filter(pl.col("category") == "decision")
    assert any("decided to keep the in-process dict" in e for e in decision["excerpt"].to_list())
    assert any("Redis" in e for e in f.filter(pl.col("category") == "rejected")["excerpt"].to_list())
    tool_fail = f.filter(pl.col("found_by") == "tool_status")
    failed = xr.rows.filter(pl.col("tool_status") == "error")["id"].to_list()
    assert set(tool_fail["id"].to_list()) == set(failed) and len(failed) == 2  # the failing test and the missing file
    assert set(f["id"].to_list()) <= expected


def test_losses_with_query_and_the_offline_sub_model_cite_removed_messages_only():
    xr = xray(rj.load(OC_V11 / "storage"))
    lo = xr.losses(query="Redis sessions rejected")
    removed = set(lo.removed["id"].to_list())
    q = lo.findings.filter(pl.col("found_by") == "bm25")
    sub = lo.findings.filter(pl.col("found_by") == "sub_model:offline")
    assert q.height >= 1 and sub.height >= 1
    assert set(q["id"].to_list()) <= removed and set(sub["id"].to_list()) <= removed
    assert any("Redis" in e for e in sub["excerpt"].to_list())
    assert lo.sub_calls.height == 1 and lo.sub_calls["tokens_in"][0] > 0 and lo.sub_calls["error"][0] is None
    assert "compaction" in repr(lo) and "<details" in lo._repr_html_()


# ---- OpenCode with pruning on: a real prune (state.time.compacted), then a real auto-compaction with a kept tail --


@pytest.fixture(scope="module")
def oc_prune(tmp_path_factory):
    """The recorded opencode.db (stored as .xz) unpacked to a temporary folder, and its X-ray."""
    db = tmp_path_factory.mktemp("oc-prune") / "opencode.db"
    with lzma.open(OC_PRUNE / "opencode.db.xz") as src, db.open("wb") as dst:
        dst.write(src.read())
    return db, xray(rj.load(db))


def _opencode_store_losses(db: Path) -> dict:
    """From opencode.db itself (sqlite3 + json, not the loader): the compaction message, what it dropped (messages
    before it, except the tail from tail_start_id, and the tool calls in them), and the tool parts OpenCode marked
    `state.time.compacted`, split by whether that happened before the compaction message was created."""
    con = sqlite3.connect(f"file:{db.resolve()}?immutable=1", uri=True)
    try:
        msgs = con.execute("SELECT id, time_created FROM message ORDER BY time_created, id").fetchall()
        parts = [(m, json.loads(d)) for m, d in con.execute("SELECT message_id, data FROM part ORDER BY id")]
    finally:
        con.close()
    order = [m for m, _ in msgs]
    created = dict(msgs)
    comp = [(m, p) for m, p in parts if p["type"] == "compaction"]
    assert len(comp) == 1
    cmsg, cpart = comp[0]
    tail = cpart.get("tail_start_id")
    head = order[: order.index(tail) if tail else order.index(cmsg)]
    tools = [(m, p) for m, p in parts if p["type"] == "tool"]
    dropped = set(head) | {p["callID"] for m, p in tools if m in head}
    stamped = {
        p["callID"]: p["state"]["time"]["compacted"]
        for _, p in tools
        if (p["state"].get("time") or {}).get("compacted")
    }
    return {
        "compaction": cmsg,
        "tail": tail,
        "auto": cpart["auto"],
        "dropped": dropped,
        "pruned_in_window": {c for c, t in stamped.items() if t < created[cmsg]},
        "pruned_after": {c for c, t in stamped.items() if t >= created[cmsg]},
        "tail_calls": {p["callID"] for m, p in tools if tail and order.index(m) >= order.index(tail)},
    }


def test_opencode_prune_recording_is_what_notes_say():
    rec = json.loads((OC_PRUNE / "recording.json").read_text(encoding="utf-8"))
    assert rec["opencode_version"] == "1.18.33" and rec["scenario"] == "prune"
    assert rec["compaction"] == {"auto": True, "prune": True} and rec["overflow_tokens"] is None
    assert rec["turns_unused"] == []  # every scripted answer was asked for: the run went as scripted
    assert sum(f.stat().st_size for f in OC_PRUNE.rglob("*") if f.is_file()) < 400_000


def test_opencode_prune_losses_are_exactly_what_the_store_says(oc_prune):
    db, xr = oc_prune
    store = _opencode_store_losses(db)
    assert store["auto"] is True and store["tail"] is not None  # OpenCode kept the last log read verbatim
    assert len(store["pruned_in_window"]) >= 3 and store["pruned_after"]  # a prune, then one after the compaction
    assert xr.events["kind"].to_list() == ["prune", "compaction"]
    lo = xr.losses(sub_model=None)
    prune = set(lo.removed.filter(pl.col("kind") == "prune")["id"].to_list())
    compaction = set(lo.removed.filter(pl.col("kind") == "compaction")["id"].to_list())
    # the prune event: exactly the outputs OpenCode stamped while they were still in the window
    assert prune == store["pruned_in_window"]
    assert lo.summary.row(0, named=True)["removed_messages"] == 0
    # the compaction: exactly the messages before the kept tail, and their tool calls
    assert compaction == store["dropped"]
    # every output OpenCode marked compacted is among the losses (those stamped after the compaction left with it)
    assert store["pruned_after"] <= compaction and not (store["pruned_after"] & prune)
    assert not (compaction & store["tail_calls"]) and xr.event(2).kept
    # what the X-ray says each event removed is what it shows leaving the windows
    ev = xr.events.rows(named=True)
    before, after = xr.window(ev[0]["turn"] - 1), xr.window(ev[0]["turn"])
    assert set(before.messages.filter(pl.col("state") == "in")["id"]) >= prune
    assert set(after.messages.filter(pl.col("state") == "pruned")["id"]) == prune
    assert ev[0]["post_tokens"] < ev[0]["pre_tokens"] - 20_000  # OpenCode prunes only when it frees > 20k tokens
    assert not (set(xr.window(ev[1]["turn"]).ids) & compaction)
    # the decision, the rejected approach and the failures are among what the compaction dropped, cited by id
    f = lo.findings.filter(pl.col("event") == 2)
    decisions = f.filter(pl.col("category") == "decision")["excerpt"]
    assert any("decided to keep the in-process dict" in e for e in decisions)
    assert any("Redis" in e for e in f.filter(pl.col("category") == "rejected")["excerpt"])
    failed = set(xr.rows.filter(pl.col("tool_status") == "error")["id"])
    assert len(failed) == 2 and set(f.filter(pl.col("found_by") == "tool_status")["id"]) == failed
    assert set(lo.findings["id"]) <= prune | compaction
    # and the window at the end is what the loader marks in context (pruned calls stay, their outputs do not)
    end = xr.window(None).messages
    loader = xr.rows.filter(pl.col("in_context") & ~pl.col("marker"))["id"]
    assert set(end.filter(pl.col("state") == "in")["id"]) == set(loader)


def test_opencode_prune_windows_are_what_the_model_was_sent(oc_prune):
    _, xr = oc_prune
    reqs = [r for r in requests(OC_PRUNE) if r["answered_with"] != "rule:0"]  # title requests are not steps
    assert len(reqs) == xr.turns.height
    summary = xr.rows.filter(pl.col("origin") == "summary")["text"].to_list()
    compared = sum(check_window_matches_request(xr, t, r["body"], summary) for t, r in enumerate(reqs, 1))
    assert compared > 200
    # the recorded prompt sizes move with our window: down at the prune, down at the compaction (compared with the
    # last ordinary step before it: the summary call is sent a serialised, shortened history)
    t = xr.turns.filter(~pl.col("flags").list.contains("compaction_call"))
    ev = xr.events.rows(named=True)
    for e in ev:
        pre = t.filter(pl.col("turn") < e["turn"]).row(-1, named=True)
        post = t.filter(pl.col("turn") == e["turn"]).row(0, named=True)
        assert post["window_tokens"] < pre["window_tokens"] and post["context_tokens"] < pre["context_tokens"]
        assert pre["context_tokens"] - post["context_tokens"] > 20_000
    # the summary call was sent the head only: the kept tail is held back from it, then sent again
    call = xr.turns.filter(pl.col("turn") == ev[1]["turn"] - 1).row(0, named=True)
    assert "compaction_call" in call["flags"]
    w = xr.window(call["turn"])
    held = set(w.dropped.filter(pl.col("state") == "held")["local"])
    assert held == set(xr.event(2).kept) and held <= set(xr.window(ev[1]["turn"]).messages["local"])
    # after the compaction: the kept tail (the sessions-10.log read and the answer after it), the compaction prompt,
    # the summary and the continue message (OpenCode sends the tail after the summary; the window lists table order)
    after = xr.window(ev[1]["turn"]).messages
    assert after["role"].to_list() == ["assistant", "tool", "assistant", "user", "assistant", "user"]
    assert "sessions-10.log" in after["tool_input"][1] and after["text"][3] == "What did we do so far?"
    assert after["origin"][4] == "summary" and after["text"][5].startswith("Continue if you have next steps")


# ---- Claude Code: windows vs the requests, losses vs compact_boundary --------------------------------------------

# one folder per recorded Claude Code version: projects/…/<session>.jsonl + requests.jsonl.gz
CLAUDE_MICRO = CLAUDE / "2.1.332-microcompact"  # a micro-compaction, no compact_boundary: its own test below
CLAUDE_DIRS = sorted(p.parent for p in CLAUDE.rglob("requests.jsonl.gz") if p.parent != CLAUDE_MICRO)


def _claude_session(folder: Path | None = None) -> Path:
    files = sorted(((folder or CLAUDE_DIRS[0]) / "projects").rglob("*.jsonl"))
    if not files:
        pytest.fail(f"{folder or CLAUDE} has no session file under projects/")
    return files[0]


def _boundaries(path: Path) -> int:
    return sum('"subtype":"compact_boundary"' in line for line in path.read_text(encoding="utf-8").splitlines())


def test_claude_recordings_exist():
    assert CLAUDE_DIRS, "tests/data/recorded/claude-code holds no recording (requests.jsonl.gz + projects/)"


@pytest.mark.parametrize("folder", CLAUDE_DIRS, ids=[d.name for d in CLAUDE_DIRS])
def test_claude_windows_are_what_the_model_was_sent(folder):
    path = _claude_session(folder)
    xr = xray(rj.load(path))
    assert xr.format == "claude" and xr.events.height == _boundaries(path) >= 1
    turns = [r for r in requests(folder) if r["answered_with"].startswith("turn:")]
    assert len(turns) == xr.turns.height  # Claude Code does not record its summary calls as steps
    summary = xr.rows.filter(pl.col("origin") == "summary")["text"].to_list()
    # After a compaction Claude Code re-attaches the files read before it ("Called the Read tool …" reminders from
    # `attachment` records the loader keeps no row for): those are not tool results, so they are left out here,
    # and the X-ray says so on the event.
    reread = ("Called the Read tool", "Result of calling the Read tool")
    for turn, r in enumerate(turns, 1):
        check_window_matches_request(xr, turn, r["body"], summary, reread)
    assert any("re-attached" in (n or "") for n in xr.events["note"].to_list())
    # the recorded window sizes: preTokens of each boundary is the last prompt before it
    for ev in xr.events.iter_rows(named=True):
        assert ev["pre_tokens"] is not None and ev["trigger"] in ("auto", "manual")


def test_claude_microcompact_windows_are_what_the_model_was_sent():
    """The real micro-compaction (2.1.332): every step's window is what Claude Code sent, the results it cleared
    (sent as `<persisted-output>` pointers from the retried request on) pruned from the step of that request."""
    path = _claude_session(CLAUDE_MICRO)
    xr = xray(rj.load(path))
    assert xr.events["kind"].to_list() == ["microcompact"]
    reqs = requests(CLAUDE_MICRO)
    turns = [r for r in reqs if r["answered_with"].startswith("turn:")]
    assert len(turns) == xr.turns.height  # the rejected request (422) is not a step: its retry is
    compared = 0
    for turn, r in enumerate(turns, 1):  # per tool result, by its tool_use id: whole, a pointer, or not yet sent
        sent = {
            b["tool_use_id"]: b["content"] if isinstance(b["content"], str) else json.dumps(b["content"])
            for m in r["body"]["messages"]
            if isinstance(m.get("content"), list)
            for b in m["content"]
            if b.get("type") == "tool_result"
        }
        w = xr.window(turn).messages.filter(pl.col("role") == "tool")
        states = dict(zip(w["id"], w["state"], strict=True))
        assert set(states) == set(sent), f"turn {turn}"
        for tid, content in sent.items():
            assert states[tid] == ("pruned" if content.startswith("<persisted-output>") else "in"), (turn, tid)
            compared += 1
    assert compared > 50
    rejected = next(i for i, r in enumerate(reqs) if r["answered_with"] == "reject:422")
    assert reqs[rejected]["body"]["context_hint"]["enabled"] is True
    retried = reqs[rejected + 1]
    assert xr.events["turn"][0] == turns.index(retried) + 1  # cleared from the step the retried request asked for


def _claude_expected(path: Path) -> list[tuple[set[str], set[str]]]:
    """Per compact_boundary, from the JSONL: (ids of the message records it dropped, ids it preserved). A record's
    id as the table names it: a user record its uuid (a tool result: its tool_use id), an assistant record its
    message id (its tool_use blocks: their ids)."""
    recs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    def ids_of(r: dict) -> set[str]:
        msg = r.get("message") or {}
        content = msg.get("content") if isinstance(msg.get("content"), list) else []
        blocks = {
            b.get("id") or b.get("tool_use_id")
            for b in content
            if isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result")
        }
        if r["type"] == "assistant":
            return {msg["id"], *blocks} - {None}
        return blocks - {None} if blocks else {r["uuid"]}

    out, window = [], set()
    for r in recs:
        if r.get("type") == "system" and r.get("subtype") == "compact_boundary":
            keep_uuids = set(r["compactMetadata"]["preservedMessages"]["uuids"])
            kept = set().union(
                *(ids_of(x) for x in recs if x.get("uuid") in keep_uuids and x.get("type") in ("user", "assistant"))
            )
            out.append((window - kept, kept))
            window = set(kept)
        elif r.get("type") in ("user", "assistant"):  # the summary too: the next compaction drops it
            window |= ids_of(r)
    return out


@pytest.mark.parametrize("folder", CLAUDE_DIRS, ids=[d.name for d in CLAUDE_DIRS])
def test_claude_losses_are_what_each_compact_boundary_dropped(folder):
    path = _claude_session(folder)
    xr = xray(rj.load(path))
    lo = xr.losses(sub_model=None)
    expected = _claude_expected(path)
    assert len(expected) == lo.summary.height >= 1
    kinds = dict(zip(xr.rows["id"].to_list(), xr.rows["role"].to_list(), strict=False))
    for k, (dropped, kept) in enumerate(expected, 1):
        ours = set(lo.removed.filter(pl.col("event") == k)["id"].to_list())
        assert {kinds.get(i) for i in ours} <= {"user", "assistant", "tool"}  # message records only, no markers
        assert ours == dropped, f"compaction {k}"
        assert not (ours & kept), f"compaction {k} reports preserved messages as lost"
        assert len(kept) >= 1 and xr.event(k).kept  # the preserved segment stayed in the window


# ---- Codex: windows vs the requests, losses vs replacement_history -----------------------------------------------


def _codex_rollout() -> Path:
    files = sorted((CODEX / "sessions").rglob("rollout-*.jsonl"))
    if not files:
        pytest.fail("tests/data/recorded/codex has no rollout")
    return files[0]


def test_codex_windows_are_what_the_model_was_sent():
    path = _codex_rollout()
    xr = xray(rj.load(path))
    compacted = sum('"type":"compacted"' in line for line in path.read_text(encoding="utf-8").splitlines())
    assert xr.format == "codex" and xr.events.height == compacted >= 1
    assert xr.limit is not None and xr.limit > 0  # Codex records model_context_window
    reqs = requests(CODEX)
    assert len(reqs) == xr.turns.height  # Codex records its compaction calls' usage as steps too
    summary = xr.rows.filter(pl.col("origin") == "summary")["text"].to_list()
    for turn, r in enumerate(reqs, 1):
        check_window_matches_request(xr, turn, r["body"], summary)


def test_codex_losses_are_what_replacement_history_did_not_keep():
    path = _codex_rollout()
    xr = xray(rj.load(path))
    lo = xr.losses(sub_model=None)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    k = 0
    calls: set[str] = set()
    user_texts: set[str] = set()
    for rec in lines:
        p = rec.get("payload") or {}
        if rec.get("type") == "response_item" and p.get("type") in ("function_call", "custom_tool_call"):
            calls.add(p["call_id"])
        if rec.get("type") == "compacted":
            k += 1
            kept_texts = {
                "".join(c.get("text", "") for c in m.get("content", []))
                for m in p.get("replacement_history", [])
                if m.get("type") == "message"
            }
            ours = lo.removed.filter(pl.col("event") == k)
            assert set(ours.filter(pl.col("role") == "tool")["id"].to_list()) == calls, f"compaction {k}"
            human = set(ours.filter(pl.col("origin") == "human")["id"].to_list())
            assert not human, "Codex keeps the user's prompts in replacement_history"
            assert user_texts <= kept_texts
            calls = set()
        if rec.get("type") == "response_item" and p.get("type") == "message" and p.get("role") == "user":
            user_texts.add("".join(c.get("text", "") for c in p.get("content", [])))
    assert k == lo.summary.height >= 1


def _codex_expected_losses(path: Path) -> list[set[int]]:
    """Per `compacted` record, from the rollout alone: the lines of the items in the window that its
    replacement_history did not keep. The window: every message / function_call / custom_tool_call item, and after
    a compaction its summary (the `compacted` record, sent as a user message) and the items it kept."""

    def text(p: dict) -> str:
        return "".join(c.get("text") or "" for c in p.get("content") or [])

    window: list[tuple[int, tuple | None]] = []  # (line, (role, text) for messages)
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        rec = json.loads(line)
        p = rec.get("payload") or {}
        if rec["type"] == "compacted":
            want: dict[tuple, int] = {}
            for item in p["replacement_history"]:
                if item.get("type") == "message":
                    want[(item.get("role"), text(item))] = want.get((item.get("role"), text(item)), 0) + 1
            kept = set()
            for ln, key in reversed(window):  # each kept item is the latest message with that role and text
                if key and want.get(key):
                    want[key] -= 1
                    kept.add(ln)
            out.append({ln for ln, _ in window if ln not in kept})
            window = [w for w in window if w[0] in kept] + [(n, ("user", p["message"]))]
        elif rec["type"] == "response_item" and p.get("type") in ("message", "function_call", "custom_tool_call"):
            window.append((n, (p.get("role"), text(p)) if p["type"] == "message" else None))
    return out


def test_codex_losses_are_exactly_the_items_replacement_history_dropped():
    path = _codex_rollout()
    xr = xray(rj.load(path))
    lo = xr.losses(sub_model=None)
    expected = _codex_expected_losses(path)
    assert len(expected) == lo.summary.height == 2
    line = {i: int(s.rsplit(":", 1)[1]) for i, s in zip(xr.rows["id"], xr.rows["source"], strict=True)}
    for k, want in enumerate(expected, 1):
        got = {line[i] for i in lo.removed.filter(pl.col("event") == k)["id"]}
        assert got == want, f"compaction {k}"
    # the second compaction also dropped the first one's summary (its replacement_history has only the new one)
    first = xr.rows.filter(pl.col("boundary") == "compaction")["id"][0]
    assert first in lo.removed.filter(pl.col("event") == 2)["id"].to_list()


# ---- consistency with the loaders, samples, pruning, errors ------------------------------------------------------


@pytest.mark.parametrize("path", [OC_CURRENT / "opencode.db", OC_V11 / "storage", None])
def test_window_at_the_end_is_what_the_loader_marks_in_context(path):
    xr = xray(rj.load(path or _codex_rollout()))
    end = set(xr.window(None).messages["id"].to_list())
    loader = set(xr.rows.filter(pl.col("in_context") & ~pl.col("marker"))["id"].to_list())
    assert end == loader


def test_per_turn_sizes_equal_a_recomputation_from_scratch():
    xr = xray(rj.load(_claude_session()))
    for row in xr.turns.iter_rows(named=True):
        w = xr.window(row["turn"])
        assert row["window_messages"] == len(w) == len(xr.window_rows(row["turn"]))
        assert row["window_tokens"] == w.tokens


def test_samples_claude_and_codex_compactions_and_flags(samples):
    xr = xray(rj.load(samples / "claude-code" / "SYNTHETIC-agent-sessions-record-catalog.jsonl"))
    assert xr.events["kind"].to_list() == ["compaction", "compaction"]
    assert xr.events["pre_tokens"][0] == 120000  # compactMetadata.preTokens
    assert "no_usage" in xr.turns["flags"][0]  # steps without usage say so
    assert any("limit is not recorded" in n for n in xr.notes)
    cx = xray(rj.load(samples / "codex" / "SYNTHETIC-agent-sessions-record-catalog.jsonl"))
    assert cx.events.height == 7 and cx.limit == 258400
    first = cx.events.row(0, named=True)
    assert first["how"] == "inferred" and "no replacement_history" in first["note"]
    assert "inferred" in cx.turns.filter(pl.col("turn") >= first["turn"])["flags"].list.join(",").str.join(",")[0]


def test_an_opencode_prune_clears_outputs_from_the_next_step_on(tmp_path):
    """A real export with one tool output marked pruned (`state.time.compacted`), as OpenCode's prune writes it."""
    src = json.loads((OC_CURRENT / "exports" / "ses_dcea4f559ffeChruezeabjknG5.json").read_text(encoding="utf-8"))
    msgs = src["messages"]
    tool_msg = next(m for m in msgs if any(p.get("type") == "tool" for p in m["parts"]))
    part = next(p for p in tool_msg["parts"] if p.get("type") == "tool")
    later = msgs[msgs.index(tool_msg) + 3]["info"]  # the prune ran before this message was created
    part["state"]["time"]["compacted"] = later["time"]["created"] - 1
    path = tmp_path / "pruned.json"
    path.write_text(json.dumps(src), encoding="utf-8")
    xr = xray(rj.load(path))
    prune = xr.events.filter(pl.col("kind") == "prune").row(0, named=True)
    assert prune["how"] == "recorded" and prune["removed_tool_outputs"] == 1 and prune["removed_messages"] == 0
    before, after = xr.window(prune["turn"] - 1), xr.window(prune["turn"])
    assert before.frame.filter(pl.col("id") == part["callID"])["state"][0] == "in"
    assert after.frame.filter(pl.col("id") == part["callID"])["state"][0] == "pruned"
    assert after.messages.filter(pl.col("id") == part["callID"]).height == 1  # the call stays, its output goes
    assert xr.turns.row(prune["turn"] - 1, named=True)["window_tokens"] == after.tokens


def test_errors_say_what_to_do(samples):
    ctx = rj.load(OC_CURRENT / "opencode.db")
    with pytest.raises(UnknownIdError, match="ctx.sessions"):
        xray(ctx, session="nope")
    xr = xray(ctx, session="ses_dcea4f")  # a unique prefix
    with pytest.raises(PositionError, match="turns 1..17"):
        xr.window(99)
    with pytest.raises(ArgumentError, match="turn must be an int"):
        xr.window("3")
    with pytest.raises(ArgumentError, match="limit"):
        xray(ctx, limit=-5)
    with pytest.raises(PositionError, match="events 1..1"):
        xr.losses(event=3)
    with pytest.raises(ArgumentError, match="question"):
        xr.ask("  ")
    assert "turn 17" in repr(xr.window(-1)) and "<table>" in xr.window(3)._repr_html_()
    assert "compaction" in repr(xr) and "X-ray" in xr._repr_html_()


def test_a_gemini_rewind_drops_the_rewound_messages_from_later_windows(samples, tmp_path):
    """The real Gemini CLI JSONL sample, continued as gemini-cli writes a /rewind: `{"$rewindTo": id}`, then a new
    prompt and answer."""
    src = (samples / "gemini" / "SYNTHETIC-agent-sessions-gemini-jsonl_v040.jsonl").read_text(encoding="utf-8")
    extra = [
        {"$rewindTo": "g-assistant-2"},
        {
            "id": "g-user-2",
            "timestamp": "2026-04-29T21:40:00.000Z",
            "type": "user",
            "content": [{"text": "Start over: only count the files."}],
        },
        {
            "id": "g-assistant-3",
            "timestamp": "2026-04-29T21:40:02.000Z",
            "type": "gemini",
            "content": "There are 3 files.",
            "model": "gemini-3-flash-preview",
            "tokens": {"input": 12100, "output": 9, "cached": 0, "thoughts": 0, "tool": 0, "total": 12109},
        },
    ]
    path = tmp_path / "session-rewind.jsonl"
    path.write_text(src.rstrip("\n") + "\n" + "\n".join(json.dumps(e) for e in extra) + "\n", encoding="utf-8")
    xr = xray(rj.load(path))
    ev = xr.events.row(0, named=True)
    assert ev["kind"] == "rewind" and ev["removed_messages"] == 1 and ev["how"] == "recorded"
    lost = xr.losses(sub_model=None).removed["id"].to_list()
    assert lost == ["g-assistant-2"]
    last = xr.window(-1)
    assert "g-assistant-2" not in last.ids and "g-user-2" in last.ids and "g-user-1" in last.ids
    assert xr.window(2).ids[0] == "g-user-1" and "g-assistant-2" not in xr.window(2).ids  # before it was written
    assert last.dropped["removed_by"].to_list() == ["rewind #1"]
