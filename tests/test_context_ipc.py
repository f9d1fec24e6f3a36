"""from_frame, the Arrow IPC hand-off to another process, on-disk persistence (BM25 index, marks), symbols."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from test_context_samples import SWE, raw_messages, sample_context, sample_sessions

import rlm_jupyter.context.cache as cache
from rlm_jupyter.context import Context
from rlm_jupyter.context.errors import ArgumentError, UnknownIdError
from rlm_jupyter.context.search import BM25_DIR

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("history_cache")  # indexes and marks in a temporary folder


def test_from_frame_gives_the_same_context():
    ctx = sample_context()
    again = Context.from_frame(ctx.df, ctx.sessions, ctx.report)
    assert len(again) == len(ctx) and again.df.equals(ctx.df) and again.tokens == ctx.tokens
    assert again.summaries() == ctx.summaries()
    assert again.regex_search("TimeDelta").ids == ctx.regex_search("TimeDelta").ids
    # A bare frame: only three columns; the rest are added as nulls, one bare session per session_id.
    bare = Context.from_frame(ctx.df.select("id", "session_id", "role", "text"))
    assert bare.df.columns == ctx.df.columns and bare.df["thinking"].null_count() == len(ctx)
    assert [s["session_id"] for s in bare.summaries()] == ctx.df["session_id"].unique(maintain_order=True).to_list()
    assert bare.slice(-3).ids == ctx.slice(-3).ids
    with pytest.raises(ArgumentError, match="session_id"):
        Context.from_frame(ctx.df.drop("session_id"))
    with pytest.raises(ArgumentError, match="polars DataFrame"):
        Context.from_frame(ctx.df.to_dicts())


_CHILD = textwrap.dedent("""
    import json, sys
    from rlm_jupyter.context import Context
    ctx = Context.from_ipc(sys.argv[1], cache=False)
    print(json.dumps({
        "n": len(ctx), "tokens": ctx.tokens,
        "regex": ctx.regex_search("TimeDelta|milliseconds").ids,
        "bm25": ctx.search("strange behaviour serialization", limit=5, mode="bm25").ids,
        "preserved": sorted(ctx.metadata.preserved), "priority": ctx.metadata.priority,
        "symbol": ctx.expand("§issue").ids,
        "sessions": ctx.sessions["session_id"].to_list(),
        "report": ctx.report.summary(),
    }))
""")


def test_ipc_round_trip_in_another_process(tmp_path):
    ctx = sample_context()
    first = ctx.df["id"][0]
    ctx.preserve(first)
    ctx.priority(pl.col("role") == "system", 8)
    issue = ctx.regex_search("TimeDelta serialization precision", limit=1)
    ctx.symbols.create(issue, id="issue")
    path = ctx.to_ipc(tmp_path / "history.arrow")
    assert path.exists() and (tmp_path / "history.arrow.json").exists()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    child = json.loads(done.stdout)
    assert child["n"] == len(ctx) and child["tokens"] == ctx.tokens
    assert child["regex"] == ctx.regex_search("TimeDelta|milliseconds").ids
    assert child["bm25"] == ctx.search("strange behaviour serialization", limit=5, mode="bm25").ids
    assert child["preserved"] == [first] and child["priority"] == ctx.metadata.priority
    assert child["symbol"] == issue.ids
    assert child["sessions"] == ctx.sessions["session_id"].to_list() and child["report"] == ctx.report.summary()


def test_from_ipc_rejects_a_path_without_its_json(tmp_path):
    ctx = sample_context()
    path = ctx.to_ipc(tmp_path / "h.arrow")
    (tmp_path / "h.arrow.json").unlink()
    with pytest.raises(ArgumentError, match="ctx.to_ipc"):
        Context.from_ipc(path)


def test_marks_persist_beside_the_index_and_reopen(tmp_path):
    ctx = sample_context()
    ids = ctx.df["id"].to_list()
    ctx.prune(ids[3])
    ctx.priority(ids[4], 9)
    saved = ctx.cache_dir / "metadata.json"
    assert json.loads(saved.read_text())["pruned"] == [ids[3]]
    reopened = sample_context()  # same content, same hash: the marks come back
    assert reopened.content_hash == ctx.content_hash
    assert reopened.filter(pl.col("pruned")).ids == [ids[3]] and reopened.metadata.priority == {ids[4]: 9}
    # Another history (one session fewer) has another hash and no marks.
    other = Context(sample_sessions()[1:])
    assert other.content_hash != ctx.content_hash and not other.metadata.pruned
    off = Context(sample_sessions(), cache=False)
    assert off.cache_dir is None and not off.metadata.pruned


def test_bm25_index_persists_for_large_histories(monkeypatch):
    monkeypatch.setattr(cache, "BM25_CACHE_MIN_MESSAGES", 10)
    ctx = sample_context()
    built = ctx.keyword_index()
    assert not built.from_cache and (ctx.cache_dir / BM25_DIR / "meta.json").exists()
    again = sample_context()
    assert again.keyword_index().from_cache
    q = "strange behaviour serialization"
    assert again.search(q, mode="bm25").ids == ctx.search(q, mode="bm25").ids
    assert again.search(q, mode="bm25").scores == ctx.search(q, mode="bm25").scores


def test_symbols_create_expand_search_and_persist(tmp_path):
    ctx = sample_context()
    hist = json.loads((SWE / "marshmallow-1867__function_calling_replace.traj").read_text())["history"]
    issue_text = next(m["content"] for m in hist if m["role"] == "user")
    issue = ctx.filter(lambda m: m.content == issue_text)
    assert len(issue) == 1
    sym = ctx.symbols.create(issue)
    assert len(sym.triad) == 3 and sym.id == "§" + "-".join(sym.triad)
    # Extractive: every triad term and the gist come from the message text.
    assert all(t in issue_text.lower() for t in sym.triad)
    assert sym.gist.rstrip("…")[:40] in " ".join(issue_text.split())
    assert sym.expansion_tokens == issue.tokens and sym.symbol_tokens < sym.expansion_tokens
    assert sym.ratio == sym.expansion_tokens / sym.symbol_tokens
    assert ctx.symbols.expand(sym.id).ids == issue.ids == ctx.expand(sym.id).ids
    hits = ctx.search(f"{sym.id} precision", limit=5, mode="bm25")
    assert hits.ids[0] == issue.ids[0] and len(hits) == 5 and hits.scores is None
    assert ctx.search(sym.id).ids == issue.ids
    named = ctx.symbols.create(issue.ids + ctx.regex_search("TimeDelta", limit=3).ids, id="timedelta")
    assert named.id == "§timedelta" and "§timedelta" in ctx.symbols and len(ctx.symbols) == 2
    summary = ctx.symbols.compression()
    assert summary["symbols"] == 2 and summary["expansion_tokens"] == sym.expansion_tokens + named.expansion_tokens
    with pytest.raises(UnknownIdError, match="§timedelta"):
        ctx.expand("§nope")
    with pytest.raises(ArgumentError, match="id must be"):
        ctx.symbols.create(issue, id="has space")
    # Symbols travel with the marks.
    path = ctx.metadata.save(tmp_path / "m.json")
    fresh = Context(sample_sessions(), cache=False)
    fresh.metadata.load(path)
    assert fresh.expand("timedelta").ids == named.ids


def test_suggest_proposes_the_most_retrieved_cluster():
    ctx = sample_context()
    for _ in range(3):
        ctx.regex_search("TimeDelta serialization precision")  # the issue text and its neighbours
    ctx.get_by_id(ctx.df["id"][0])  # retrieved once: below min_count
    hot = ctx.regex_search("TimeDelta serialization precision").ids
    proposals = ctx.symbols.suggest(n=3)
    assert proposals and set(proposals[0].ids) <= set(hot) and ctx.df["id"][0] not in proposals[0].ids
    assert len(ctx.symbols) == 0  # proposals are not kept until created
    # The same counts from trace events.
    with ctx.trace() as events:
        ctx.regex_search("TimeDelta serialization precision")
        ctx.regex_search("TimeDelta serialization precision")
    assert [p.ids for p in ctx.symbols.suggest(events=events)] == [p.ids for p in proposals]
    assert raw_messages()  # the sample files are there


def test_the_ipc_hand_over_keeps_each_issue_where_it_was(tmp_path):
    """A load issue's record pointer (`s.json#/messages/3`) and its own file (a sub-agent's issue under its main
    file) survive to_ipc / from_ipc, which is how the REPL worker gets its context."""
    import rlm_jupyter as rj
    from rlm_jupyter.sessions import Issue

    ctx = rj.load(rj.samples() / "claude-code", cache=False, progress=False)
    fr = ctx.report.files[0]
    sub = fr.path + ".agent.jsonl"
    fr.issues += [
        Issue(fr.path, None, "a message without a role", "invalid", "/messages/3"),
        Issue(sub, 7, "not JSON", "malformed"),
    ]
    back = Context.from_ipc(ctx.to_ipc(tmp_path / "c.arrow"))
    got = [i.where() for i in back.report.files[0].issues]
    assert f"{fr.path}#/messages/3" in got and f"{sub}:7" in got
    assert [i.where() for i in fr.issues] == got


def test_session_metadata_comes_back_the_same_through_the_hand_over_and_from_frame(tmp_path):
    """Both ways a context is rebuilt read sessions through session_meta.session_from_meta: the hand-over keeps
    every field (and `extra`), from_frame(df, ctx.sessions) every field the sessions frame has."""
    import rlm_jupyter as rj
    from rlm_jupyter.context.session_meta import SESSION_FIELDS, session_meta

    ctx = rj.load(rj.samples(), cache=False, progress=False)
    want = json.loads(json.dumps([session_meta(s) for s in ctx._sessions], default=str))
    assert len(want) > 1 and any(d["model"] and d["started"] for d in want)  # real metadata, not bare stubs
    back = Context.from_ipc(ctx.to_ipc(tmp_path / "c.arrow"), cache=False)
    assert [session_meta(s) for s in back._sessions] == want
    framed = Context.from_frame(ctx.df, ctx.sessions, cache=False)
    shared = [f for f in SESSION_FIELDS if f in ctx.sessions.columns and f not in ("started", "updated")]
    assert {"session_id", "format", "path", "model", "title"} <= set(shared)
    assert [{f: getattr(s, f) for f in shared} for s in framed._sessions] == [{f: d[f] for f in shared} for d in want]
    # the sessions frame fills missing times from the messages; from_frame keeps those
    assert framed.sessions.select("started", "updated").equals(ctx.sessions.select("started", "updated"))
