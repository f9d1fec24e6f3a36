"""The trace format: written append-only, read back with its tree, validated by the schema the renderer uses;
official `rlms` logs open as traces too."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from rlm_jupyter.trace import Trace, TraceWriter
from rlm_jupyter.trace.writer import Redactor

SCHEMA = json.loads((Path(__file__).parents[1] / "rlm_jupyter" / "trace" / "schema.json").read_text())


def _validate(trace: Trace) -> None:
    jsonschema.validate(trace.header, SCHEMA)
    for e in trace.events:
        jsonschema.validate(e, SCHEMA)


def _sample_run(w: TraceWriter) -> dict:
    run = w.emit("run", None, question="Which auth approach was decided?", model="offline", mode="rlm")
    step = w.emit("step", run["id"], index=0, model="offline", response="```repl\nprint(1)\n```", tokens_in=120,
                  tokens_out=30, cost_usd=0.001)
    code = w.emit("code", step["id"], index=0, code="print(1)")
    w.emit("query", code["id"], op="search", args={"query": "auth"}, result_ids=["m1", "m2"], scores=[2.5, 1.0],
           latency_ms=0.4)
    sub = w.emit("sub_call", code["id"], model="offline-sub", prompt="Summarize", response="JWT", tokens_in=50,
                 tokens_out=5, cost_usd=0.0001, status="ok")
    child = w.emit("run", sub["id"], question="Summarize", model="offline-sub")
    w.update(sub, child_run=child["id"])
    w.emit("step", child["id"], index=0, model="offline-sub", response="FINAL(JWT)", tokens_in=40, tokens_out=4)
    w.emit("output", code["id"], stdout="1\n", stderr="", status="ok")
    w.emit("final", run["id"], answer="JWT sessions were decided.", via="FINAL")
    w.emit("run_end", run["id"], status="done")
    return run


def test_written_trace_reads_back_with_its_tree(tmp_path):
    path = tmp_path / "run.rlmtrace.jsonl"
    with TraceWriter(path) as w:
        run = _sample_run(w)
    trace = Trace.load(path)
    _validate(trace)
    assert trace.answer == "JWT sessions were decided."
    assert [e["type"] for e in trace.children(run["id"])] == ["step", "final", "run_end"]
    sub = trace.of_type("sub_call")[0]
    assert sub["child_run"] and trace.get(sub["child_run"])["type"] == "run"  # the update replaced the line
    # usage rolls up the root step and the child run's step; the sub-call that opened the child is not counted twice
    u = trace.usage()
    assert u["tokens_in"] == 120 + 40 and u["tokens_out"] == 30 + 4
    assert u["per_model"]["offline-sub"]["calls"] == 1


def test_interrupted_trace_keeps_every_event_written(tmp_path):
    path = tmp_path / "cut.rlmtrace.jsonl"
    w = TraceWriter(path)
    _sample_run(w)
    w.close()
    data = path.read_bytes()
    path.write_bytes(data[: data.rfind(b"\n", 0, len(data) - 1) + 1] + b'{"id": "half')  # killed mid-line
    trace = Trace.load(path)
    assert len(trace.of_type("final")) == 1
    assert any("cut-off last line" in i for i in trace.header["issues"])


def test_secrets_never_reach_the_trace(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-1234567890abcdefghij")
    path = tmp_path / "s.rlmtrace.jsonl"
    with TraceWriter(path) as w:
        w.emit("sub_call", None, model="m", prompt="key is sk-test-1234567890abcdefghij",
               response="Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123", status="ok")
    text = path.read_text()
    assert "sk-test-1234567890abcdefghij" not in text and "abcdefghijklmnopqrstuvwxyz0123" not in text
    assert text.count("[REDACTED]") == 2
    assert Redactor(["hunter2hunter2"])("pw hunter2hunter2") == "pw [REDACTED]"


@pytest.mark.parametrize("name", ["s1_depth1_session_2026-11-25_06-11-46_0b259207.jsonl",
                                  "v011_finalvar_2026-11-25_06-11-53_9d0f6e18.jsonl",
                                  "s1_depth1_session.completion.json", "v011_finalvar.completion.json"])
def test_rlms_logs_open_as_traces(samples, name):
    path = samples / "rlm-logs" / name
    trace = Trace.load(path)
    _validate(trace)
    # expected values read from the log itself
    if path.suffix == ".jsonl":
        lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        its = [x for x in lines if x["type"] == "iteration"]
        calls = [c for it in its for b in it["code_blocks"] for c in b["result"]["rlm_calls"] or []]
        final = [it["final_answer"] for it in its if it["final_answer"]][-1]
        root_model = lines[0]["root_model"]
    else:
        doc = json.loads(path.read_text())
        its = doc["metadata"]["iterations"]
        calls = [c for it in its for b in it["code_blocks"] for c in b["result"]["rlm_calls"] or []]
        final = doc["response"]
        root_model = doc["root_model"]
    assert len(trace.steps()) == len(its)
    assert len(trace.of_type("code")) == sum(len(it["code_blocks"]) for it in its)
    assert [s["prompt"] for s in trace.of_type("sub_call")] == [c["prompt"] for c in calls]
    assert trace.answer == final
    assert trace.root["model"] == root_model
    assert trace.root["sub_model"] == calls[0]["root_model"]   # the model, not the backend name ("openai")
    assert trace.usage()["per_model"][calls[0]["root_model"]]["calls"] == len(calls)


def test_not_a_trace_says_what_was_expected(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"hello": 1}\n')
    with pytest.raises(ValueError, match="expected an rlm-jupyter trace"):
        Trace.load(p)
