"""Replaying real sessions under other context policies (xr.simulate): each policy's reachability is checked
against a from-scratch recomputation on the session's rows, and the compaction policy against the summaries the
offline sub-model actually wrote."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

import rlm_jupyter as rj
from rlm_jupyter.context.errors import ArgumentError
from rlm_jupyter.testing.samples import sample_tree
from rlm_jupyter.window.simulate import ACM, RLM, Compact, Window, parse_policy

REC = Path(__file__).parent / "data" / "recorded"
CLAUDE = REC / "claude-code" / "current" / "projects"
CODEX = REC / "codex" / "sessions"
CODEX_SAMPLE = next((sample_tree() / "codex").glob("rollout-*.jsonl"))


@pytest.fixture(scope="module")
def claude():
    return rj.xray(rj.load(CLAUDE))


@pytest.fixture(scope="module")
def codex_sample():
    return rj.xray(rj.load(CODEX_SAMPLE))


def test_policy_strings_and_objects():
    assert parse_policy("window:8000") == Window(8000) and parse_policy("window:8k") == Window(8000)
    assert parse_policy("compact:80%") == Compact(0.8) and parse_policy("compact") == Compact(0.8)
    assert parse_policy("ACM") == ACM() and parse_policy("rlm") == RLM()
    assert parse_policy(Compact(0.5, limit=9000)).name == "compact:50%"
    for bad in ("window", "compact:80", "lru", 3):
        with pytest.raises(ArgumentError, match="policy"):
            parse_policy(bad)


def test_sliding_window_matches_a_from_scratch_recount(codex_sample):
    xr = codex_sample
    sim = xr.simulate(["window:6000"])
    rows = xr.rows.filter(~pl.col("marker"))
    tok = dict(zip(rows["local"].to_list(), rows["tokens"].to_list(), strict=True))
    locs = xr.turns["local"].to_list()
    checked = 0
    for f in sim.facts.iter_rows(named=True):
        last = None
        for t, end in enumerate(locs, 1):
            if f["local"] >= end:
                continue
            size = sum(tok.get(j, 0) for j in range(f["local"], end))
            if size <= 6000:
                last = t
        assert f["last_window:6000"] == last, f
        checked += 1
    assert checked == sim.facts.height > 5
    per_turn = sim.table.filter(pl.col("policy") == "window:6000")
    assert per_turn.height == xr.turns.height
    assert (per_turn["reachable"] <= per_turn["born"]).all()
    assert (per_turn["tokens"] <= 6000).all()


def test_compaction_keeps_exactly_what_the_summary_cites(claude):
    sim = claude.simulate([Compact(0.8)])
    calls = sim.sub_calls
    assert len(calls) >= 1 and all(c["error"] is None and c["summary"] for c in calls)
    first = calls[0]["turn"]
    cited = set(re.findall(r"\[([^\]\s]+)\]", calls[0]["summary"]))
    assert cited
    before = sim.facts.filter(pl.col("born_turn") < first)
    assert before.height > 3
    for f in before.iter_rows(named=True):
        kept = f["id"] in cited or f["excerpt"][:60] in calls[0]["summary"]
        last = f["last_compact:80%"]
        if kept:
            assert last is not None and last >= first, f
        else:
            assert last == first - 1, f
    # kept and lost both happen: the summary is a real selection
    lasts = before["last_compact:80%"].to_list()
    assert any(x >= first for x in lasts) and any(x == first - 1 for x in lasts)
    assert "summaries by offline" in " ".join(sim.notes)


def test_chained_compactions_carry_cited_ids_forward():
    xr = rj.xray(rj.load(CODEX_SAMPLE))
    sim = xr.simulate([Compact(0.5, limit=40_000)])
    assert len(sim.sub_calls) >= 3
    # a fact kept through a later compaction was cited by every summary since its message was summarized
    for f in sim.facts.iter_rows(named=True):
        last = f["last_compact:50%"]
        if last is None:
            continue
        for c in sim.sub_calls:
            if f["born_turn"] < c["turn"] <= last:
                assert f["id"] in c["summary"] or f["excerpt"][:60] in c["summary"], (f, c["turn"])


def test_acm_pins_inception_and_prunes_old_tool_outputs(codex_sample):
    xr = codex_sample
    rows = xr.rows
    first_human = rows.filter((pl.col("role") == "user") & (pl.col("origin") == "human"))["id"][0]
    failed = rows.filter(
        (pl.col("role") == "tool") & (pl.col("tokens") < 800) & (pl.col("local") < xr.turns["local"][-6])
    )
    facts = [first_human, failed["id"][0]]
    sim = xr.simulate(["window:9000", ACM(tokens=9000, keep_turns=2, recent_active_s=0)], facts=facts)
    f = {r["id"]: r for r in sim.facts.iter_rows(named=True)}
    n = xr.turns.height
    # the first prompt: gone from the sliding window, kept by ACM to the end
    assert f[first_human]["last_acm"] == n and f[first_human]["last_window:9000"] < n
    # a tool output: ACM prunes it two turns after it (the call stays, the output is not reachable), while the
    # sliding window of the same budget still has it then
    out = f[failed["id"][0]]
    assert out["last_acm"] is not None and out["last_acm"] <= out["born_turn"] + 2
    assert out["last_window:9000"] is not None and out["last_window:9000"] >= out["last_acm"]
    acm = sim.table.filter(pl.col("policy") == "acm")
    assert (acm["tokens"] <= 9000).all()


def test_rlm_reaches_given_patterns_and_ids(claude):
    sim = claude.simulate(["window:2000", "rlm"], facts=[r"AssertionError", "msg_scripted_0003"])
    assert sim.facts["category"].to_list() == ["pattern", "given"]
    f = sim.facts.row(0, named=True)
    assert f["last_rlm"] == claude.turns.height
    assert sim.table.filter((pl.col("policy") == "rlm") & (pl.col("turn") == claude.turns.height))["reachable"][0] == 2
    with pytest.raises(ArgumentError, match="matches no message"):
        claude.simulate(["rlm"], facts=["zzqx-no-such-words"])
    with pytest.raises(ArgumentError, match="valid regex"):
        claude.simulate(["rlm"], facts=["(unclosed"])


def test_default_four_policies_table_chart_and_repr(claude):
    sim = claude.simulate()
    assert list(sim.summary["policy"]) == ["window:8000", "compact:80%", "acm", "rlm"]
    assert sim.table.height == 4 * claude.turns.height
    assert set(sim.facts["category"]) <= {"decision", "rejected", "constraint", "failure"}
    assert sim.facts.height >= 10
    text = repr(sim)
    assert "window:8000" in text and "reachable at the end" in text
    assert "<table>" in sim._repr_html_()
    spec = sim.chart().to_dict()
    assert spec["name"] == "simulate_lines" or any(
        layer.get("name") == "simulate_lines" for layer in spec.get("layer", [])
    )
    assert set(sim.seconds) >= {"facts", "window:8000", "compact:80%", "acm", "rlm"}
