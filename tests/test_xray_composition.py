"""What filled the window (xr.composition / composition_plot) on real recorded sessions and samples."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import polars as pl
import pytest

import rlm_jupyter as rj
from rlm_jupyter.testing.samples import sample_tree
from rlm_jupyter.window.composition import BANDS, band_messages

DATA = Path(__file__).parent / "data"
REC = DATA / "recorded"
CLAUDE = REC / "claude-code" / "current" / "projects"
CODEX = REC / "codex" / "sessions"
OPENCODE = REC / "opencode" / "current" / "opencode.db"
CODEX_SAMPLE = sample_tree() / "codex" / "rollout-2026-05-11T11-26-55-019e1625-789d-76c0-80ab-3724b5ddb799.jsonl"
ATTRIBUTED = [b for b in BANDS if b != "unattributed"]


def _meta_tokens(path: Path) -> int:
    """The Codex system prompt, read here from the rollout's first line (not through the X-ray)."""
    with path.open() as f:
        first = json.loads(f.readline())
    return (len(first["payload"]["base_instructions"]["text"].encode()) + 3) // 4


@pytest.mark.parametrize(
    "source", [CLAUDE, CODEX, OPENCODE, CODEX_SAMPLE], ids=["claude", "codex", "opencode", "codex-sample"]
)
def test_bands_add_up_to_the_rebuilt_window_and_the_recorded_size(source):
    xr = rj.xray(rj.load(source))
    c = xr.composition()
    assert c.height == xr.turns.height and c["turn"].to_list() == xr.turns["turn"].to_list()
    meta = 0
    if xr.format == "codex":
        path = Path(xr.ctx.sessions.filter(pl.col("session_id") == xr.session_id)["path"][0])
        meta = _meta_tokens(path)
        assert meta > 1000
    # the message bands are exactly the rebuilt window (same rows, same sizes), the metadata on top
    j = c.join(xr.turns.select("turn", "window_tokens"), on="turn")
    assert (j["estimated"] - meta == j["window_tokens"]).all()
    assert (c.select(pl.sum_horizontal(ATTRIBUTED)).to_series() == c["estimated"]).all()
    # reconciled with the recorded usage: unattributed = recorded - attributed, never negative
    rec = c.filter(pl.col("context_tokens").is_not_null())
    assert rec.height > 0
    assert (rec["unattributed"] == (rec["context_tokens"] - rec["estimated"]).clip(lower_bound=0)).all()
    assert (c.filter(pl.col("context_tokens").is_null())["unattributed"].is_null()).all()
    # every kind of content the session has shows up somewhere
    assert c["user"].max() > 0 and c["assistant"].max() > 0 and c["tool_results"].max() > 0


def test_a_compaction_moves_tokens_from_messages_to_the_summary_band():
    xr = rj.xray(rj.load(CLAUDE))
    c = xr.composition()
    # the compaction right after the big file read (turn 12 reads ~5k tokens; compaction #2 removes it)
    ev = xr.events.filter(pl.col("kind") == "compaction").row(1, named=True)
    before = c.filter(pl.col("turn") == ev["turn"] - 1).row(0, named=True)
    after = c.filter(pl.col("turn") == ev["turn"]).row(0, named=True)
    assert before["tool_results"] > 1000 and after["tool_results"] < before["tool_results"] / 5
    assert after["summaries"] > 0
    # the summary band lists the summary message itself
    msgs = band_messages(xr, ev["turn"], "summaries")
    assert ev["summary_id"] in msgs["id"].to_list()


def test_memory_file_content_is_its_own_band():
    xr = rj.xray(rj.load(CODEX_SAMPLE))
    c = xr.composition()
    agents = xr.rows.filter(pl.col("text").str.starts_with("# AGENTS.md instructions for"))
    assert agents.height == 1
    assert c["memory"][0] == agents["tokens"][0] > 100
    assert band_messages(xr, 1, "memory")["id"].to_list() == agents["id"].to_list()
    assert xr.composition_plot(interactive=False) is not None


def test_system_prompt_is_what_codex_sent():
    """The recorded request of turn 1 carries the base instructions the rollout stores: that band is real."""
    xr = rj.xray(rj.load(CODEX))
    with gzip.open(REC / "codex" / "requests.jsonl.gz", "rt") as f:
        body = json.loads(f.readline())["body"]
    path = Path(xr.ctx.sessions["path"][0])
    with path.open() as f:
        text = json.loads(f.readline())["payload"]["base_instructions"]["text"]
    sent = [c["text"] for item in body["input"] if item.get("role") == "developer" for c in item["content"]]
    # Codex sent its base instructions as the first developer message (this CLI version edits a few closing lines)
    assert len(os.path.commonprefix([text, sent[0]])) > 0.95 * len(text)
    assert xr.composition()["system_prompt"][0] >= _meta_tokens(path)


def test_chart_lists_the_messages_of_each_band_and_renders_statically():
    xr = rj.xray(rj.load(CLAUDE))
    p = xr.composition_plot(interactive=False)
    spec = p.to_dict()
    layer = spec["layer"][0]
    assert layer["name"] == "composition_bands"
    titles = [t.get("title", t["field"]) for t in layer["encoding"]["tooltip"]]
    assert layer["mark"]["type"] == "bar" and layer["encoding"]["y"]["stack"] == "zero"
    assert "message 1" in titles and "tokens" in titles
    data = (layer.get("data") or spec.get("data"))["values"]
    tool_rows = [d for d in data if d["band"] == "tool results" and d["turn"] == 11]
    assert tool_rows and tool_rows[0]["msg1"]
    # the listed message is in that turn's window
    listed_id = tool_rows[0]["msg1"].split(" ")[1]
    assert listed_id in xr.window(11).ids
    svg = p.svg()
    if svg is not None:
        assert "What filled the window" in svg
    bundle, _ = p._repr_mimebundle_()
    assert bundle["text/plain"].startswith("<CompositionPlot")
