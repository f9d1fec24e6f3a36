"""Ranked search over a history that repeats itself: real sample sessions copied many times (as a resumed or forked
session replays its history). Each distinct message content is indexed once, so copies cannot fill the top 10;
regex_search still finds every copy."""

from __future__ import annotations

import functools

import pytest
from test_context_samples import sample_sessions

from rlm_jupyter.context import Context
from rlm_jupyter.context import embed as embed_mod
from rlm_jupyter.context.search import distinct_bodies
from rlm_jupyter.sessions import Session

COPIES = 12

pytestmark = pytest.mark.usefixtures("history_cache")  # indexes and marks in a temporary folder


@functools.cache
def repeated() -> Context:
    """The sample sessions COPIES times, with fresh ids (same content)."""
    fields = ("role", "origin", "text", "thinking", "tool_name", "tool_input", "tool_output", "tool_status")
    rows = Context(sample_sessions()).df.to_dicts()
    sessions = []
    for k in range(COPIES):
        copy = Session(session_id=f"copy{k}", format="copy", path="-")
        for n, r in enumerate(rows):
            copy.add(id=f"copy{k}-{n}", **{f: r[f] for f in fields})
        sessions.append(copy)
    return Context(sessions)


def _bodies(ctx, positions) -> list[str]:
    rows = ctx.df.select("text", "thinking", "tool_input", "tool_output")[list(positions)].iter_rows()
    return ["\n".join(p for p in parts if p) for parts in rows]


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_copies_do_not_fill_the_top_10(mode):
    if mode == "hybrid" and embed_mod.unavailable_reason():
        pytest.skip(embed_mod.unavailable_reason())
    ctx = repeated()
    one = Context(sample_sessions())
    query = "marshmallow TimeDelta serialization rounding"
    hits = ctx.search(query, limit=10, mode=mode)
    assert len(hits) == 10
    assert len(set(_bodies(ctx, hits.positions))) == 10  # ten different messages, not one message ten times
    # the same messages as in one copy of the history, each as its first copy
    assert _bodies(ctx, hits.positions) == _bodies(one, one.search(query, limit=10, mode=mode).positions)
    assert all(p < len(one) for p in hits.positions)
    # every copy is still there for regex_search
    assert ctx.regex_search("TimeDelta", limit=10**6).total == COPIES * one.regex_search("TimeDelta", limit=10**6).total


def test_each_distinct_content_is_indexed_once():
    ctx = repeated()
    distinct = list(distinct_bodies(ctx.df))
    n_one = len(Context(sample_sessions()))
    assert len(ctx) == COPIES * n_one
    assert 0 < len(distinct) <= n_one and all(p < n_one for p, _ in distinct)
    assert ctx.keyword_index().documents == len(distinct)
    if not embed_mod.unavailable_reason():
        assert set(ctx.semantic_index().owners.tolist()) == {p for p, b in distinct if b.strip()}
