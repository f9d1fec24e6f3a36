"""Tracing, context-management metadata (preserve / prune / priority / active time / window), bad input."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest
from test_context_samples import OPENAI, openai_session, sample_context

from rlm_jupyter.context import Context
from rlm_jupyter.context.errors import (
    ArgumentError,
    EmptyContextError,
    InvalidPatternError,
    PositionError,
    PredicateError,
    UnknownIdError,
)
from rlm_jupyter.sessions import Session

pytestmark = pytest.mark.usefixtures("history_cache")  # indexes and marks in a temporary folder


def test_every_query_emits_one_event():
    ctx = sample_context()
    seen = []
    ctx.attach_tracer(seen.append)
    with ctx.trace() as events:
        ctx.slice(-3)
        ctx[-2:]  # runs slice inside: one event, not two
        ctx.get_by_id(ctx.df["id"][0])
        ctx.filter(pl.col("role") == "tool")
        ctx.regex_search("TimeDelta", limit=2)
        ctx.search("precision", limit=4, mode="bm25")
        ctx.chunk(size=5_000)
        with pytest.raises(InvalidPatternError):
            ctx.regex_search("(")
    ops = [e["op"] for e in events]
    assert ops == ["slice", "slice", "get_by_id", "filter", "regex_search", "search", "chunk", "regex_search"]
    by_op = {e["op"]: e for e in events}
    assert by_op["slice"]["result_ids"] == ctx.df["id"].to_list()[-2:]
    assert by_op["search"]["args"] == {"query": "precision", "limit": 4, "mode": "bm25"}
    assert len(by_op["search"]["scores"]) == len(by_op["search"]["result_ids"]) > 0
    assert events[-1]["error"].startswith("InvalidPatternError") and events[-1]["result_ids"] == []
    for e in events:
        assert set(e) >= {"op", "args", "result_ids", "scores", "latency_ms", "ts"} and e["latency_ms"] >= 0
        json.dumps(e)  # events are plain data
    assert seen == list(events)
    ctx.detach_tracer(seen.append)
    ctx.slice(-1)
    assert len(seen) == len(events)  # detached, and the `with` block detached itself
    assert ctx._tracers == []


def test_a_failing_tracer_does_not_break_queries():
    ctx = sample_context()
    ctx.attach_tracer(lambda e: 1 / 0)
    with pytest.warns(RuntimeWarning, match="ZeroDivisionError"):
        assert len(ctx.slice(-3)) == 3


def _timed_session() -> Session:
    """Real message text from a sample, with hand-set times: gaps 10 s, 30 s, 600 s (idle), 20 s, none, 5 s."""
    src = openai_session(sorted(OPENAI.glob("*.json"))[0])
    s = Session(session_id="timed", format="test", path="-")
    times = [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:10Z",
        "2026-01-01T00:00:40Z",
        "2026-01-01T00:10:40Z",
        "2026-01-01T00:11:00Z",
        None,
        "2026-01-01T00:11:05Z",
    ]
    for i, t in enumerate(times):
        s.add(role=src.get(i % len(src), "role"), origin="model", text=src.get(i % len(src), "text"), ts=t)
    return s


def test_active_time_is_a_chess_clock():
    ctx = Context([_timed_session()])
    # 10 + 30, then the 600 s gap is idle (> 60), then 20, then a message without time adds 0, then 5 s after
    # the last timed message.
    assert ctx.table["active_s"].to_list() == [0, 10, 40, 40, 60, 60, 65]
    ctx.metadata.gap_threshold = 1_000
    assert ctx.table["active_s"].to_list()[-1] == 665
    with pytest.raises(ArgumentError, match="gap_threshold"):
        ctx.metadata.gap_threshold = 0
    assert ctx.metadata.gap_threshold == 1_000


def test_window_preserve_prune_priority_and_round_trip(tmp_path):
    ctx = Context([_timed_session()])
    ids = ctx.df["id"].to_list()
    # The last 0.5 active minutes (30 s) of a clock ending at 65 s: active_s >= 35, positions 2..6.
    assert ctx.window(keep_active_minutes=0.5).ids == ids[2:]
    ctx.preserve(ids[0])
    ctx.prune([ids[3], ids[4]])
    ctx.priority(pl.col("role") == "system", 9)
    assert ctx.window(keep_active_minutes=0.5).ids == [ids[0], ids[2], ids[5], ids[6]]
    assert ctx.window(None).ids == [i for i in ids if i not in (ids[3], ids[4])]
    assert ctx.table.filter(pl.col("priority") == 9)["role"].unique().to_list() == ["system"]
    assert ctx.filter(pl.col("pruned")).ids == [ids[3], ids[4]]
    ctx.preserve(ids[3])  # preserving a pruned message un-prunes it
    assert ctx.filter(pl.col("pruned")).ids == [ids[4]]

    path = ctx.metadata.save(tmp_path / "meta.json")
    saved = json.loads(path.read_text())
    assert saved["preserved"] == sorted([ids[0], ids[3]]) and saved["pruned"] == [ids[4]]
    fresh = Context([_timed_session()])
    fresh.metadata.load(path)
    assert fresh.table.select("preserved", "pruned", "priority").equals(
        ctx.table.select("preserved", "pruned", "priority")
    )
    other = sample_context()
    with pytest.raises(UnknownIdError, match="strict=False"):
        other.metadata.load(path)
    assert other.metadata.load(path, strict=False).preserved == set()


def test_bad_input_gets_one_clear_error_and_leaves_the_context_working():
    ctx = sample_context()
    n = len(ctx)
    cases = [
        (lambda: ctx.regex_search("(unclosed"), InvalidPatternError, "pattern"),
        (lambda: ctx.regex_search(""), ArgumentError, "pattern"),
        (lambda: ctx.regex_search("x", limit=0), ArgumentError, "limit"),
        (lambda: ctx.get_by_id("no-such-id"), UnknownIdError, "no message has id 'no-such-id'"),
        (lambda: ctx.get_by_id(["no-such-id", "x"]), UnknownIdError, "1 more unknown"),
        (lambda: ctx[n], PositionError, f"pass 0…{n - 1}"),
        (lambda: ctx.slice(n + 5), PositionError, "start="),
        (lambda: ctx.slice(10, 3), PositionError, "start <= stop"),
        (lambda: ctx[::2], ArgumentError, "steps"),
        (lambda: ctx.slice("a"), ArgumentError, "start"),
        (lambda: ctx.filter(lambda m: m.tool_name.startswith("b")), PredicateError, "guard"),
        (lambda: ctx.filter(lambda m: m.no_such_field), PredicateError, "no attribute 'no_such_field'"),
        (lambda: ctx.filter(pl.col("no_such_column") == 1), PredicateError, "columns"),
        (lambda: ctx.filter("bash"), ArgumentError, "regex_search"),
        (lambda: ctx.search("   "), ArgumentError, "query"),
        (lambda: ctx.search("x", mode="vector"), ArgumentError, "mode"),
        (lambda: ctx.chunk(size=0), ArgumentError, "size"),
        (lambda: ctx.priority(ctx.df["id"][0], 11), ArgumentError, "1 to 10"),
        (lambda: ctx.prune(["no-such-id"]), UnknownIdError, "prune"),
        (lambda: ctx.window(-1), ArgumentError, "keep_active_minutes"),
    ]
    for call, kind, words in cases:
        with pytest.raises(kind, match=re.escape(words)):
            call()
    # Nothing above changed the context: queries still answer and no mark was left behind.
    assert len(ctx.slice(-5)) == 5 and len(ctx.regex_search("TimeDelta")) > 0
    assert ctx.metadata.version == 0 and not ctx.table["pruned"].any()


def test_empty_context_says_so():
    ctx = Context([])
    assert len(ctx) == 0 and ctx.tokens == 0 and ctx.df.height == 0
    for call in (
        lambda: ctx.slice(-20),
        lambda: ctx[0],
        lambda: ctx.regex_search("x"),
        lambda: ctx.search("x"),
        lambda: ctx.chunk(),
        lambda: ctx.filter(lambda m: True),
        lambda: ctx.get_by_id("x"),
    ):
        with pytest.raises(EmptyContextError, match="no messages"):
            call()
