"""The trace format: written append-only, read back with its tree, validated by the schema the renderer uses;
official `rlms` logs open as traces too."""

from __future__ import annotations

import json
import re
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
    step = w.emit(
        "step",
        run["id"],
        index=0,
        model="offline",
        response="```repl\nprint(1)\n```",
        tokens_in=120,
        tokens_out=30,
        cost_usd=0.001,
    )
    code = w.emit("code", step["id"], index=0, code="print(1)")
    w.emit(
        "query",
        code["id"],
        op="search",
        args={"query": "auth"},
        result_ids=["m1", "m2"],
        scores=[2.5, 1.0],
        latency_ms=0.4,
    )
    sub = w.emit(
        "sub_call",
        code["id"],
        model="offline-sub",
        prompt="Summarize",
        response="JWT",
        tokens_in=50,
        tokens_out=5,
        cost_usd=0.0001,
        status="ok",
    )
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
        w.emit(
            "sub_call",
            None,
            model="m",
            prompt="key is sk-test-1234567890abcdefghij",
            response="Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123",
            status="ok",
        )
    text = path.read_text()
    assert "sk-test-1234567890abcdefghij" not in text and "abcdefghijklmnopqrstuvwxyz0123" not in text
    assert text.count("[REDACTED]") == 2
    assert Redactor(["hunter2hunter2"])("pw hunter2hunter2") == "pw [REDACTED]"


@pytest.mark.parametrize(
    "name",
    [
        "s1_depth1_session_2026-11-25_06-11-46_0b259207.jsonl",
        "v011_finalvar_2026-11-25_06-11-53_9d0f6e18.jsonl",
        "s1_depth1_session.completion.json",
        "v011_finalvar.completion.json",
    ],
)
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
    assert trace.root["sub_model"] == calls[0]["root_model"]  # the model, not the backend name ("openai")
    assert trace.usage()["per_model"][calls[0]["root_model"]]["calls"] == len(calls)


def test_not_a_trace_says_what_was_expected(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"hello": 1}\n')
    with pytest.raises(ValueError, match="expected an rlm-jupyter trace"):
        Trace.load(p)


# ---- every run writes its trace; saving afterwards; snippets in the file --------------------------------------


@pytest.fixture(scope="module")
def claude_ctx(samples):
    import rlm_jupyter as rj

    return rj.load(samples / "claude-code" / "codemie-session-9eda1058.jsonl")


def test_every_run_writes_its_trace_to_the_runs_folder_unless_told_not_to(claude_ctx, tmp_path, monkeypatch):
    from rlm_jupyter import rlm
    from rlm_jupyter.trace import runs

    monkeypatch.setenv("RLM_JUPYTER_RUNS", str(tmp_path / "runs"))
    run = rlm("Which write was rejected?", claude_ctx)
    assert run.trace_path.parent == tmp_path / "runs" and run.trace_path.name.endswith(".rlmtrace.jsonl")
    assert "which-write-was-rejected" in run.trace_path.name
    assert (tmp_path / "runs").stat().st_mode & 0o777 == 0o700  # a worker running as another user cannot list it
    on_disk = Trace.load(run.trace_path)
    assert [e["id"] for e in on_disk.events] == [e["id"] for e in run.trace.events]
    _validate(on_disk)
    # off: trace=False, or RLM_JUPYTER_RUNS=off; a folder: trace="dir"
    assert rlm("q", claude_ctx, trace=False).trace_path is None
    mine = rlm("q", claude_ctx, trace=tmp_path / "mine")
    assert mine.trace_path.parent == tmp_path / "mine" and mine.trace_path.exists()
    monkeypatch.setenv("RLM_JUPYTER_RUNS", "off")
    assert runs.runs_dir() is None and rlm("q", claude_ctx).trace_path is None
    assert len(list((tmp_path / "runs").iterdir())) == 1
    # the default without the variable: rlm-runs/ in a kernel's (writable) folder, else the cache folder
    monkeypatch.delenv("RLM_JUPYTER_RUNS")
    monkeypatch.setenv("RLM_JUPYTER_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert runs.runs_dir() == tmp_path / "cache" / "runs"
    monkeypatch.setattr(runs, "_in_kernel", lambda: True)
    assert runs.runs_dir() == tmp_path / "rlm-runs"
    assert runs.shown(tmp_path / "rlm-runs" / "x.rlmtrace.jsonl") == "rlm-runs/x.rlmtrace.jsonl"


def test_a_runs_folder_that_cannot_be_written_warns_and_the_run_goes_on(claude_ctx, tmp_path, monkeypatch):
    from rlm_jupyter import rlm

    blocked = tmp_path / "file"
    blocked.write_text("a file, not a folder")
    monkeypatch.setenv("RLM_JUPYTER_RUNS", str(blocked / "runs"))
    with pytest.warns(RuntimeWarning, match="cannot write the run's trace .*RLM_JUPYTER_RUNS"):
        run = rlm("Which write was rejected?", claude_ctx)
    assert run.status == "done" and run.trace_path is None and run.answer


def test_trace_save_and_run_save_write_a_file_that_reads_back(claude_ctx, tmp_path):
    from rlm_jupyter import rlm

    run = rlm("Which write was rejected?", claude_ctx, trace=False)
    assert run.trace_path is None
    path = run.save(tmp_path / "saved.rlmtrace.jsonl")
    assert run.trace_path == path and path.exists()
    back = Trace.load(path)
    assert back.events == run.trace.events and back.answer == run.answer
    assert back.header["format"] == "rlm-jupyter-trace" and not back.header.get("issues")
    _validate(back)
    # into a folder: named after the run; Trace.save alone; no temporary file left behind
    folder = tmp_path / "folder"
    folder.mkdir()
    p2 = back.save(folder)
    assert p2 == folder / f"{run.trace.root['id']}.rlmtrace.jsonl"
    assert Trace.load(p2).events == run.trace.events and sorted(x.name for x in folder.iterdir()) == [p2.name]


def test_query_events_store_the_snippets_the_model_saw(claude_ctx, tmp_path):
    from rlm_jupyter import rlm
    from rlm_jupyter.context.snippets import TRACE_TEXT_LIMIT

    run = rlm("Which write was rejected?", claude_ctx, trace_path=tmp_path / "t.rlmtrace.jsonl")
    queries = [q for q in Trace.load(run.trace_path).of_type("query") if q["result_ids"]]
    assert queries and all(q.get("snippets") for q in queries)
    for q in queries:
        assert [s["id"] for s in q["snippets"]] == q["result_ids"][: len(q["snippets"])]
        for s in q["snippets"]:
            assert set(s) == {"id", "text", "session_id"} and 0 < len(s["text"]) <= TRACE_TEXT_LIMIT
            assert s["session_id"] == claude_ctx.get_by_id(s["id"]).session_id
    # a regex_search's snippet is cut around a match of its pattern: the text the model's query found
    regex = next(q for q in queries if q["op"] == "regex_search")
    pattern = re.compile(regex["args"]["pattern"], 0 if regex["args"].get("case", True) else re.I)
    assert any(pattern.search(s["text"]) for s in regex["snippets"])
    # an old trace without snippets still opens
    old = tmp_path / "old.rlmtrace.jsonl"
    lines = run.trace_path.read_text().splitlines()
    old.write_text(
        "\n".join(json.dumps({k: v for k, v in json.loads(ln).items() if k != "snippets"}) for ln in lines) + "\n"
    )
    assert not any("snippets" in e for e in Trace.load(old).events) and Trace.load(old).answer == run.answer
