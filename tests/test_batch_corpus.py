"""rj.xray_corpus on real recorded compactions (Claude Code, Codex, OpenCode) and the bundled samples: every row
equals what the one-session X-ray says of that session, the ranking and its chart, and batch taking its rows."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import rlm_jupyter as rj
from rlm_jupyter.sessions.schema import CLEARING
from rlm_jupyter.window import xray

REC = Path(__file__).parent / "data" / "recorded"


@pytest.fixture(scope="module")
def ctx():
    return rj.load(
        REC / "claude-code", REC / "codex" / "sessions", REC / "opencode" / "current" / "opencode.db", rj.samples()
    )


@pytest.fixture(scope="module")
def corpus(ctx):
    return rj.xray_corpus(ctx)


def test_one_row_per_session_equal_to_its_own_xray(ctx, corpus):
    df = corpus.df
    assert df.height == ctx.sessions.height and df["session_id"].n_unique() == df.height
    assert df["xray_error"].null_count() == df.height
    for row in df.iter_rows(named=True):
        xr = xray(ctx, row["session_id"])
        assert row["turns"] == xr.turns.height, row["session_id"]
        recorded = xr.turns["context_tokens"].drop_nulls()
        peak = int(recorded.max()) if recorded.len() else int(xr.turns["window_tokens"].max())
        assert row["peak_context"] == peak, row["session_id"]
        ev = xr.events
        assert row["compactions"] == ev.filter(pl.col("kind") == "compaction").height
        # "prunes" counts every event that clears tool outputs (OpenCode prune, Claude Code micro-compaction, …)
        assert row["prunes"] == ev.filter(pl.col("kind").is_in(sorted(CLEARING))).height
        assert row["tokens_removed"] == int(ev["removed_tokens"].sum() or 0)
        if ev.height:
            found = xr.losses(sub_model=None).findings
            assert row["decisions"] == found.filter(pl.col("category") == "decision").height
            assert row["errors"] == found.filter(pl.col("category") == "failure").height


def test_ranked_by_what_was_lost(corpus):
    df = corpus.df
    lost = df["tokens_removed"].to_list()
    assert lost == sorted(lost, reverse=True)
    # the heaviest compacting session lost decisions and messages (a micro-compaction, which may rank above it, only
    # clears tool outputs)
    top = df.filter(pl.col("compactions") > 0).row(0, named=True)
    assert top["decisions"] > 0 and top["removed_messages"] > 0
    # at least three formats lost something (Claude Code, Codex, OpenCode recordings)
    assert df.filter(pl.col("tokens_removed") > 0)["format"].n_unique() >= 3
    assert "sessions" in repr(corpus) and "<table>" in corpus._repr_html_()


def test_ranking_chart_and_session_xray(corpus):
    pytest.importorskip("altair")
    p = corpus.plot(interactive=False)
    spec = p.to_dict()
    assert spec["mark"]["type"] == "bar"
    values = spec["data"]["values"]
    assert values[0]["session_id"] == corpus.df["session_id"][0]
    assert any(par.get("name") == "session_pick" for par in spec.get("params", []))
    xr = corpus.xray(0)
    assert xr.session_id == corpus.df["session_id"][0] and xr.events.height > 0


def test_batch_takes_the_corpus_rows(tmp_path, ctx, corpus):
    lost = (
        corpus.df.filter(pl.col("decisions") > 0)
        .head(2)
        .with_columns(question=pl.lit("What did the agent decide before its first compaction?"))
    )
    res = rj.batch(lost, context=ctx, model="offline", out=tmp_path / "b", display=False)
    df = res.df
    assert df["session_id"].to_list() == lost["session_id"].to_list()
    assert df["decisions"].to_list() == lost["decisions"].to_list()  # the corpus columns ride along
    assert set(df["status"].to_list()) <= {"done", "max_iterations"}
    for r in df.iter_rows(named=True):  # each run saw its own session only
        assert rj.Trace.load(r["trace"]).of_type("run")[0]["context"]["sessions"] == 1


def test_clicking_a_session_opens_its_xray(corpus):
    pytest.importorskip("anywidget")
    alt = pytest.importorskip("altair")
    p = corpus.plot(interactive=True)
    assert isinstance(p.widget, alt.JupyterChart)
    shown = []

    class Handle:  # stands in for IPython's DisplayHandle: records what the click shows
        def update(self, obj):
            shown.append(obj)

    p._handle = Handle()
    sid = corpus.df["session_id"][1]
    # what the JupyterChart front-end sends on a click on that session's bar (Vega signal + store)
    p.widget._vl_selections = {
        **p.widget._vl_selections,
        "session_pick": {"value": {"vlPoint": {"or": [{"session_id": sid}]}}, "store": []},
    }
    assert p.selected_session == sid
    assert shown and shown[-1].session_id == sid and shown[-1].events.height == corpus.df["compactions"][1]
    p.widget._vl_selections = {**p.widget._vl_selections, "session_pick": {"value": None, "store": []}}
    assert p.selected_session is None and "Click a session" in shown[-1]._repr_html_()
