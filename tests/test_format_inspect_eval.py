"""inspect_ai 0.3.285 logs recorded by tools/record_inspect_eval.py against the scripted server: the same two-sample
run written as `.eval` (zip, zstd members) and as `.json` (tests/data/recorded/inspect)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import polars as pl
import pytest

import rlm_jupyter as rj
from rlm_jupyter.sessions.formats import Probe, detect, inspect_eval
from rlm_jupyter.testing.samples import sample_files

REC = Path(__file__).parent / "data" / "recorded" / "inspect"
EVAL = next(REC.glob("*.eval"))
JSON = next(REC.glob("*_session-store_*.json"))


def _by_title(path):
    ctx = rj.load(path)
    return ctx, {s["title"]: s for s in ctx.summaries()}


def test_sniffer_claims_the_logs_only(samples):
    assert detect(Probe(EVAL)) is inspect_eval and detect(Probe(JSON)) is inspect_eval
    assert not inspect_eval.sniff(Probe(REC / "recording.json"))
    files = sample_files()
    assert not [p for p in files if inspect_eval.sniff(Probe(p))]


@pytest.mark.parametrize("path", [EVAL, JSON], ids=["eval", "json"])
def test_one_session_per_sample(path):
    doc = json.loads(JSON.read_text())  # what the json log says the run was (the .eval is the same scenario)
    ctx, by_title = _by_title(path)
    assert set(by_title) == {"session_store bug (epoch 1)", "session_store ttl (epoch 1)"}
    bug, ttl = by_title["session_store bug (epoch 1)"], by_title["session_store ttl (epoch 1)"]
    assert (bug["format"], bug["producer"], bug["producer_version"]) == ("inspect", "inspect_ai", "0.3.285")
    # the sample input is the one human prompt; basic_agent's nudge is harness
    assert bug["user_prompts"] == [doc["samples"][0]["input"]]
    assert ttl["user_prompts"] == [doc["samples"][1]["input"]]
    nudge = ctx.df.filter((pl.col("role") == "user") & (pl.col("origin") == "harness"))["text"].to_list()
    assert nudge == ["Please proceed to the next step using your best judgement."]
    # tool calls fused with their results; the parsing error is an error
    assert bug["tool_calls"] == ["bash", "bash", "bash", "submit"] and ttl["tool_calls"] == ["bash", "bash", "submit"]
    assert (bug["tool_errors"], ttl["tool_errors"]) == (0, 1)
    err = ctx.df.filter(pl.col("tool_status") == "error").row(0, named=True)
    assert err["tool_output"].startswith("parsing: ") and "'cmd' was unexpected" in err["tool_output"]
    tools = ctx.df.filter((pl.col("role") == "tool") & (pl.col("session_id") == bug["session_id"])).sort("seq")
    assert "AssertionError" in tools["tool_output"][0] and tools["tool_output"][2] == "ok\n"
    # tokens per model call from the model events add up to the sample's model_usage
    for summary in (bug, ttl):
        sid = summary["session_id"]
        usage = ctx.sessions.filter(pl.col("session_id") == sid)
        assert usage.height == 1
        assistants = ctx.df.filter((pl.col("session_id") == sid) & (pl.col("role") == "assistant"))
        assert assistants["ts"].null_count() == 0 and assistants["input_uncached"].null_count() == 0
    want = {s["id"]: s["model_usage"]["openai/gpt-4o-mini"] for s in doc["samples"]} if path == JSON else None
    if want:
        assert bug["tokens"]["input"] == want["bug"]["input_tokens"]
        assert ttl["tokens"]["output"] == want["ttl"]["output_tokens"]
    assert ctx.df["id"].n_unique() == ctx.df.height


def test_eval_and_json_give_the_same_rows():
    cols = ["role", "origin", "text", "tool_name", "tool_input", "tool_output", "tool_status", "output"]
    a, b = rj.load(EVAL).df.select(cols), rj.load(JSON).df.select(cols)  # samples bug, ttl in both
    # the two runs differ only in their temporary sandbox folder, which appears in the traceback
    strip = pl.col("tool_output").str.replace_all(r"/tmp/inspect-record/\w+/tmp/tmp\w+", "<sandbox>")
    a, b = a.with_columns(strip), b.with_columns(strip)
    assert a.height == b.height == 20
    diff = [(x, y) for x, y in zip(a.iter_rows(), b.iter_rows(), strict=True) if x != y]
    assert not diff


def test_damaged_sample_is_reported_and_the_rest_loads(tmp_path):
    bad = tmp_path / "bad.eval"
    # rewritten with deflate, as inspect versions before zstd wrote them
    with zipfile.ZipFile(EVAL) as src, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = _raw(EVAL, info) if info.compress_type == 93 else src.read(info)
            dst.writestr(info.filename, b"{not json" if info.filename == "samples/ttl_epoch_1.json" else data)
    ctx, by_title = _by_title(bad)
    assert set(by_title) == {"session_store bug (epoch 1)"}
    (issue,) = ctx.report.files[0].issues
    assert issue.pointer == "/samples/ttl_epoch_1.json" and "sample skipped" in issue.reason


def _raw(path: Path, info: zipfile.ZipInfo) -> bytes:
    """A zstd member decompressed (zipfile before Python 3.14 cannot)."""
    import zstandard

    with open(path, "rb") as fh:
        fh.seek(info.header_offset + 26)
        n, m = int.from_bytes(fh.read(2), "little"), int.from_bytes(fh.read(2), "little")
        fh.seek(info.header_offset + 30 + n + m)
        return zstandard.ZstdDecompressor().decompressobj().decompress(fh.read(info.compress_size))


def test_folder_walk_finds_eval_files(tmp_path):
    shutil.copy(EVAL, tmp_path / EVAL.name)
    assert len(rj.load(tmp_path).summaries()) == 2
