"""Positional/lookup API, regex and keyword search, on a context built from real sample text."""

from __future__ import annotations

import json
import math
import re
import warnings

import polars as pl
import pytest
from test_context_samples import OPENAI, SWE, raw_messages, sample_context

from rlm_jupyter.context import Context
from rlm_jupyter.context.results import Message, Messages, Snippets

pytestmark = pytest.mark.usefixtures("history_cache")  # indexes and marks in a temporary folder


@pytest.fixture(scope="module")
def ctx() -> Context:
    return sample_context()


def test_len_and_tokens_estimate(ctx):
    assert len(ctx) == ctx.df.height > 0  # row counts against the raw files: test_context_samples
    # tokens = ceil(UTF-8 bytes / 4) per message over text, thinking, tool input, tool output: recompute here.
    expected = 0
    for row in ctx.df.iter_rows(named=True):
        b = sum(len((row[f] or "").encode()) for f in ("text", "thinking", "tool_input", "tool_output"))
        expected += math.ceil(b / 4)
    assert ctx.tokens == expected


def test_slice_positions(ctx):
    n = len(ctx)
    last = ctx.slice(-20)
    assert isinstance(last, Messages) and last.positions == list(range(n - 20, n))
    assert ctx[-20:].ids == last.ids == ctx.df["id"].to_list()[-20:]
    mid = ctx.slice(10, 14)
    assert mid.ids == ctx.df["id"].to_list()[10:14]
    assert ctx.slice(-1000).positions == list(range(n))  # the last 1000 of 64 are all of them
    assert ctx.slice(5, 5).positions == []


def test_item_and_get_by_id_agree_with_the_file(ctx):
    # The first message of the first openai sample (files sorted by name) is its system prompt.
    first_file = sorted(OPENAI.glob("*.json"))[0]
    system = json.loads(first_file.read_text())[0]
    m = ctx[0]
    assert isinstance(m, Message) and m.role == "system" and m.content == system["content"]
    assert ctx.get_by_id(m.id) == m and ctx[m.id] == m
    # A tool call id from the marshmallow trajectory resolves to its tool row with the observation attached.
    hist = json.loads((SWE / "marshmallow-1867__function_calling_replace.traj").read_text())["history"]
    obs = next(h for h in hist if h["role"] == "tool")
    call_id = obs["tool_call_ids"][0] if isinstance(obs["tool_call_ids"], list) else eval(obs["tool_call_ids"])[0]
    tool = ctx.get_by_id(call_id)
    assert tool.role == "tool" and tool.content == obs["content"] and tool.tool_name == "create"
    many = ctx.get_by_id([call_id, m.id])
    assert many.ids == [call_id, m.id]


def test_filter_expression_and_predicate_agree(ctx):
    by_expr = ctx.filter(pl.col("role") == "tool")
    by_fn = ctx.filter(lambda m: m.role == "tool")
    assert by_expr.ids == by_fn.ids and len(by_expr) == int((ctx.df["role"] == "tool").sum()) > 0
    edits = ctx.filter(pl.col("tool_name") == "edit")
    assert len(edits) > 0 and all(m.tool_name == "edit" for m in edits)
    assert ctx.filter(lambda m: "TimeDelta" in m.content).ids == [
        i
        for i, r, t, o in ctx.df.select("id", "role", "text", "tool_output").iter_rows()
        if "TimeDelta" in ((o if r == "tool" and o is not None else t) or "")
    ]


def test_chunks_cover_history_without_splitting(ctx):
    tokens = ctx.table["tokens"].to_list()
    chunks = ctx.chunk(size=1_000)
    assert [p for c in chunks for p in c.positions] == list(range(len(ctx)))
    for c in chunks:
        assert c.tokens <= 1_000 or len(c) == 1  # only a lone oversize message may exceed the size
    assert any(len(c) == 1 and c.tokens > 1_000 for c in chunks) == any(t > 1_000 for t in tokens)
    assert len(ctx.chunk(size=10**9)) == 1


def test_regex_search_matches_a_plain_re_loop(ctx):
    pattern = r"TimeDelta|milliseconds"
    hits = ctx.regex_search(pattern, limit=50)
    assert isinstance(hits, Snippets)
    expected = [
        i
        for i, *fields in ctx.df.select("id", "text", "thinking", "tool_input", "tool_output").iter_rows()
        if any(f and re.search(pattern, f) for f in fields)
    ]
    assert hits.ids == expected and len(expected) > 3
    for s in hits:
        for field, a, b in s.spans:
            assert re.fullmatch(pattern, getattr(s.message, field)[a:b])
    assert len(ctx.regex_search(pattern, limit=2)) == 2 and ctx.regex_search(pattern, limit=2).total == len(expected)


def test_regex_case_flags_and_lookaround_fallback(ctx):
    upper = ctx.regex_search("TIMEDELTA")
    assert len(upper) == 0
    loose = [
        i
        for i, *fields in ctx.df.select("id", "text", "thinking", "tool_input", "tool_output").iter_rows()
        if any(f and re.search("timedelta", f, re.I) for f in fields)
    ]
    assert ctx.regex_search("TIMEDELTA", case=False).ids == loose
    assert len(loose) > len(ctx.regex_search("TimeDelta"))  # `timedelta` (the stdlib class) is matched too
    assert ctx.regex_search("timedelta", flags=re.IGNORECASE).ids == ctx.regex_search("TimeDelta", case=False).ids
    # polars (Rust regex) rejects look-behind: the Python fallback must still find and span it.
    look = ctx.regex_search(r"(?<=import )TimeDelta")
    assert len(look) >= 1 and all(s.match == "TimeDelta" for s in look)


def test_keyword_search_ranks_the_issue_text(ctx):
    # Words of the marshmallow issue report ("quite strange behaviour of `TimeDelta` field serialization") that
    # only that message has together: it must rank first.
    hits = ctx.search("strange behaviour serialization", limit=3, mode="bm25")
    issue = next(m for m in ctx.filter(lambda m: m.role == "user") if "TimeDelta serialization precision" in m.content)
    assert hits.ids[0] == issue.id
    # Every hit holds at least one stemmed query term; the highlight spans cover the words.
    assert all(s.spans for s in hits)
    assert {s.match.lower() for s in hits} <= {"strange", "behaviour", "serialization", "serialize", "serialized"}
    assert hits.scores == sorted(hits.scores, reverse=True)


def test_without_embedding_packages_hybrid_and_semantic_run_bm25_and_say_so_once(monkeypatch):
    import rlm_jupyter.context.embed as embed
    import rlm_jupyter.context.ranking as ranking

    monkeypatch.setattr(ranking, "_warned_semantic_off", False)
    monkeypatch.setattr(embed, "unavailable_reason", lambda name=None: "model2vec not installed")
    c = sample_context()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        a = c.search("precision", limit=5)
        b = c.search("precision", limit=5, mode="semantic")
    assert a.ids == b.ids == c.search("precision", limit=5, mode="bm25").ids
    said = [str(x.message) for x in w if "meaning search is off" in str(x.message)]
    assert len(said) == 1 and "model2vec not installed" in said[0] and "rlm-jupyter[embed]" in said[0]
    assert "(bm25)" in a.label


def test_reprs_are_readable_and_html_is_escaped():
    from rlm_jupyter.sessions import Session

    s = Session(session_id="s", format="test", path="-")
    # Real sample text plus markup that must not reach the notebook as HTML.
    text = raw_messages()[1][1][:200] + " <script>alert(1)</script> & JWT"
    s.add(role="user", origin="human", text=text)
    c = Context([s])
    hits = c.regex_search("JWT")
    html = hits._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html and "<mark>JWT</mark>" in html
    assert "JWT" in repr(hits) and "1 snippets" in repr(hits)
    assert "<script>" not in c.slice(0)._repr_html_()
    assert "Messages [0:1]: 1 messages" in repr(c.slice(0))
    assert c.slice(0).df.height == 1 and "score" in hits.df.columns or hits.scores is None
