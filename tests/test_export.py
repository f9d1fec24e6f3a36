"""rj.export: a real recorded run (the real loop, the real worker, litellm against the scripted server, with
sub_llm / sub_llm_batch calls, context queries and a recursive run) sent over OTLP to a real Phoenix server started
here on 127.0.0.1, read back through Phoenix's client; the same run and real sample sessions as ATIF, validated by
the `atif` package's models; the CLI and the magic's export."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rlm_jupyter as rj
from rlm_jupyter.engine.loop import rlm
from rlm_jupyter.testing import ScriptedServer, ServerModels
from rlm_jupyter.testing.scripted import repl
from rlm_jupyter.trace import Trace

pytest.importorskip("opentelemetry.sdk", reason="the export extra is not installed: pip install -e '.[export]'")
atif = pytest.importorskip("atif", reason="the atif models are not installed: pip install -e '.[test]'")

MODEL = "openai/scripted-model"
PRICE = (1e-6, 4e-6)  # usd per input / output token
SECRET = "zq-export-secret-4f81c2d9a7"
CLAUDE = "claude-code/codemie-session-9eda1058.jsonl"


def usage(p: int, c: int, cached: int | None = None) -> dict:
    u: dict = {"prompt_tokens": p, "completion_tokens": c}
    if cached:
        u["prompt_tokens_details"] = {"cached_tokens": cached}
    return u


# Requests arrive in this order: root step 0, its sub_llm, root step 1, its two batch calls, the child run's two
# steps, root step 2.
SCRIPT = [
    {
        "text": repl(
            "hits = context.regex_search('available-tools')\nprint(len(hits))\n"
            "a = sub_llm('Which file? ' + str(len(hits)))\nprint(a)"
        ),
        "usage": usage(1000, 40, cached=600),
    },
    {"text": "available-tools.md", "usage": usage(200, 5)},
    {
        "text": repl(
            "b = sub_llm_batch(['one', 'two'])\nr = rlm('Which file write was rejected?')\nprint(b, r)\n1 / 0"
        ),
        "usage": usage(1300, 30),
    },
    {"text": "batch answer", "usage": usage(50, 3)},
    {"text": "batch answer", "usage": usage(50, 3)},
    {"text": repl("print(context.search('rejected write', limit=3, mode='bm25'))"), "usage": usage(900, 20)},
    {"text": "FINAL(available-tools.md)", "usage": usage(950, 8)},
    {"text": "FINAL_VAR(r)", "usage": usage(1500, 6)},
]


@pytest.fixture(scope="module")
def recorded(ctx, tmp_path_factory):
    """A run recorded with the real loop; the question carries a value that becomes a secret only afterwards (so
    the trace writer kept it and the export's own redaction is what removes it)."""
    path = tmp_path_factory.mktemp("run") / "run.rlmtrace.jsonl"
    with ScriptedServer(SCRIPT) as srv:
        run = rlm(
            f"Which file write was rejected? (ticket {SECRET})",
            ctx,
            model=MODEL,
            max_depth=2,
            models=ServerModels(srv.base_url, cost_per_token={MODEL: PRICE}),
            trace_path=path,
        )
    assert run.status == "done" and run.answer == "available-tools.md", run
    return run


@pytest.fixture
def secret_env(monkeypatch):
    monkeypatch.setenv("RLMJ_EXPORT_TEST_TOKEN", SECRET)


# ---- the span mapping (no server) ------------------------------------------------------------------------------


def _tree(spans):
    by = {s.span_id: s for s in spans}
    return by, {s.span_id: (by[s.parent_id] if s.parent_id else None) for s in spans}


def test_spans_follow_the_call_tree_with_tokens_cost_and_documents(recorded, ctx, secret_env):
    from rlm_jupyter.interop.otlp import build_spans

    spans = build_spans(recorded.trace, context=ctx)
    by, parent = _tree(spans)
    kinds = [s.kind for s in spans]
    assert kinds.count("AGENT") == 2 and kinds.count("CHAIN") == 5 and kinds.count("TOOL") == 3
    assert kinds.count("RETRIEVER") == 2 and kinds.count("LLM") == 5 + 3  # 5 root-model calls, 3 sub_llm calls
    root = spans[0]
    assert root.kind == "AGENT" and root.parent_id is None
    assert root.attributes["output.value"] == "available-tools.md"
    assert root.attributes["session.id"] == recorded.trace.root["id"]
    meta = json.loads(root.attributes["metadata"])
    assert meta["model"] == MODEL and meta["max_depth"] == 2 and meta["status"] == "done"
    # every root step: a CHAIN under the run, holding the root model's LLM span and the TOOL span of its code
    for chain in (s for s in spans if s.kind == "CHAIN" and parent[s.span_id] is root):
        kids = [s for s in spans if s.parent_id == chain.span_id]
        assert kids[0].kind == "LLM" and all(k.kind == "TOOL" for k in kids[1:])
    chains = [s for s in spans if s.kind == "CHAIN" and parent[s.span_id] is root]
    assert chains[0].attributes["input.value"].startswith("Which file write was rejected?")
    assert chains[1].attributes["input.value"] == "1\navailable-tools.md\n"  # what step 1's code printed
    # span names count steps as the view does (#1, #2, …); metadata.index keeps the trace's 0-based field
    assert [c.name for c in chains] == [f"step {k}" for k in range(1, len(chains) + 1)]
    assert [json.loads(c.attributes["metadata"])["index"] for c in chains] == list(range(len(chains)))
    # sub_llm calls are LLM spans under the TOOL span whose code made them; the recursive run a nested AGENT there
    child = next(s for s in spans if s.kind == "AGENT" and s is not root)
    assert parent[child.span_id].kind == "TOOL" and parent[parent[child.span_id].span_id].kind == "CHAIN"
    subs = [s for s in spans if s.kind == "LLM" and parent[s.span_id].kind == "TOOL"]
    assert len(subs) == 3 and {s.attributes["input.value"] for s in subs} >= {"one", "two"}
    # tokens, cache and cost of the first root call, as the scripted server reported them
    first = next(s for s in spans if s.kind == "LLM")
    a = first.attributes
    assert (a["llm.token_count.prompt"], a["llm.token_count.completion"], a["llm.token_count.total"]) == (
        1000,
        40,
        1040,
    )
    assert a["llm.token_count.prompt_details.cache_read"] == 600
    assert a["llm.cost.total"] == pytest.approx(1000 * PRICE[0] + 40 * PRICE[1])
    assert a["gen_ai.usage.input_tokens"] == 1000 and a["llm.model_name"] == MODEL and a["llm.provider"] == "openai"
    llm_total = sum(s.attributes.get("llm.cost.total", 0) for s in spans if s.kind == "LLM")
    assert llm_total == pytest.approx(recorded.usage["cost_usd"])  # no call counted twice, none missed
    # context queries: RETRIEVER spans with the messages they returned, with content from the context
    ret = next(s for s in spans if s.kind == "RETRIEVER" and s.name == "context.regex_search")
    assert ret.attributes["retrieval.documents.0.document.id"] == "toolu_bdrk_01SKk2dM5q1c8gecaoatnwJn"
    assert "available-tools" in ret.attributes["retrieval.documents.0.document.content"]
    bm25 = next(s for s in spans if s.kind == "RETRIEVER" and s.name == "context.search")
    assert isinstance(bm25.attributes["retrieval.documents.0.document.score"], float)
    # the failed block (1 / 0): the TOOL span is an error with an exception event
    failed = [s for s in spans if s.kind == "TOOL" and s.error]
    assert len(failed) == 1 and "ZeroDivisionError" in failed[0].error
    assert failed[0].events[0][0] == "exception"
    assert failed[0].events[0][2]["exception.type"] == "ZeroDivisionError"
    # times are the trace's; secrets are redacted everywhere
    step0 = recorded.trace.of_type("step")[0]
    assert first.start_ns == round(step0["t"] * 1e9) and first.end_ns > first.start_ns
    assert root.start_ns == round(recorded.trace.root["t"] * 1e9)
    assert SECRET not in repr([(s.name, s.attributes, s.events) for s in spans])
    assert "[REDACTED]" in root.attributes["input.value"]


def test_ids_are_deterministic_so_exporting_twice_does_not_duplicate(recorded):
    from rlm_jupyter.interop.otlp import build_spans

    again = build_spans(Trace.load(recorded.trace_path))
    first = build_spans(recorded.trace)
    assert [(s.trace_id, s.span_id, s.parent_id) for s in first] == [
        (s.trace_id, s.span_id, s.parent_id) for s in again
    ]
    assert len({s.span_id for s in first}) == len(first) and len({s.trace_id for s in first}) == 1


def test_a_child_run_whose_call_was_never_amended_still_nests(recorded, tmp_path):
    """A run killed while its recursive call was open: the sub_call line without `child_run` is all there is."""
    lines = recorded.trace_path.read_text().splitlines()
    rlm_call = [i for i, ln in enumerate(lines) if '"type":"sub_call"' in ln and '"kind":"rlm"' in ln]
    assert len(rlm_call) == 2 and "child_run" not in lines[rlm_call[0]]
    cut = tmp_path / "cut.rlmtrace.jsonl"
    cut.write_text("\n".join(ln for i, ln in enumerate(lines) if i != rlm_call[1]) + "\n")
    from rlm_jupyter.interop.otlp import build_spans

    spans = build_spans(Trace.load(cut))
    by = {s.span_id: s for s in spans}
    child = [s for s in spans if s.kind == "AGENT" and s.parent_id]
    assert len(child) == 1 and by[child[0].parent_id].kind == "TOOL"
    doc = rj.export(cut, to="atif")
    assert len(atif.Trajectory.model_validate(doc).subagent_trajectories) == 1


@pytest.mark.parametrize(
    "name", ["s1_depth1_session_2026-11-25_06-11-46_0b259207.jsonl", "v011_finalvar.completion.json"]
)
def test_official_rlms_logs_export_too(samples, name):
    from rlm_jupyter.interop.otlp import build_spans

    path = samples / "rlm-logs" / name
    trace = Trace.load(path)
    spans = build_spans(trace)
    assert spans[0].kind == "AGENT" and len([s for s in spans if s.kind == "CHAIN"]) == len(trace.steps())
    t = atif.Trajectory.model_validate(rj.export(path, to="atif"))
    assert len([s for s in t.steps if s.source == "agent"]) == len(trace.steps())


def test_unreachable_collector_is_one_clear_error(recorded):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"OTLP export to .* failed .*check that the collector runs"):
        rj.export(recorded, to="otlp", endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout_s=2)
    assert time.monotonic() - t0 < 30
    with pytest.raises(ValueError, match="needs endpoint="):
        rj.export(recorded, to="otlp")
    with pytest.raises(ValueError, match="unknown target 'csv'"):
        rj.export(recorded, to="csv")


# ---- a real Phoenix --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory):
    pytest.importorskip(
        "phoenix.server.main",
        reason="arize-phoenix is not installed: pip install -e '.[phoenix]' to run the Phoenix round trip",
    )
    work = tmp_path_factory.mktemp("phoenix")
    port, grpc = _free_port(), _free_port()
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(work),
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
    }
    with open(work / "server.log", "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "phoenix.server.main", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        import urllib.request

        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Phoenix did not start: {(work / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _spans(base: str, project: str, want: int) -> list[dict]:
    from phoenix.client import Client

    client = Client(base_url=base)
    deadline = time.monotonic() + 60
    spans: list = []
    while time.monotonic() < deadline:  # Phoenix inserts spans in batches, shortly after the request
        try:
            spans = client.spans.get_spans(project_identifier=project, limit=1000)
        except Exception:  # the project exists only once its first span is in
            spans = []
        if len(spans) >= want:
            time.sleep(1.5)  # a duplicate would land in the same insert cycle or the next one
            return client.spans.get_spans(project_identifier=project, limit=1000)
        time.sleep(0.5)
    return spans


def test_phoenix_reads_back_kinds_parents_tokens_and_cost(recorded, ctx, phoenix, secret_env):
    from rlm_jupyter.interop.otlp import build_spans

    expected = build_spans(recorded.trace, context=ctx)
    endpoint = f"{phoenix}/v1/traces"
    r1 = rj.export(recorded, to="otlp", endpoint=endpoint, context=ctx, project="rlmj-test")
    r2 = rj.export(recorded.trace_path, to="otlp", endpoint=endpoint, context=ctx, project="rlmj-test")
    assert r1["spans"] == r2["spans"] == len(expected) and r1["trace_ids"] == r2["trace_ids"]
    got = _spans(phoenix, "rlmj-test", len(expected))
    assert len(got) == len(expected)  # sent twice, stored once
    by_id = {s["context"]["span_id"]: s for s in got}
    for e in expected:
        s = by_id[f"{e.span_id:016x}"]
        assert s["span_kind"] == e.kind and s["context"]["trace_id"] == f"{e.trace_id:032x}"
        assert s.get("parent_id") == (f"{e.parent_id:016x}" if e.parent_id else None)
    root = next(s for s in got if not s.get("parent_id"))
    assert root["span_kind"] == "AGENT" and root["attributes"]["output.value"] == "available-tools.md"
    llms = [s for s in got if s["span_kind"] == "LLM"]
    prompt = sum(s["attributes"]["llm.token_count.prompt"] for s in llms)
    completion = sum(s["attributes"]["llm.token_count.completion"] for s in llms)
    assert (prompt, completion) == (recorded.usage["tokens_in"], recorded.usage["tokens_out"]) == (5950, 115)
    cost = sum(s["attributes"]["llm.cost.total"] for s in llms)
    assert cost == pytest.approx(recorded.usage["cost_usd"]) and cost > 0
    assert any(s["attributes"].get("llm.token_count.prompt_details.cache_read") == 600 for s in llms)
    child = next(s for s in got if s["span_kind"] == "AGENT" and s.get("parent_id"))
    assert by_id[child["parent_id"]]["span_kind"] == "TOOL"
    tool_err = next(s for s in got if s["span_kind"] == "TOOL" and s["status_code"] == "ERROR")
    assert any(ev["name"] == "exception" for ev in tool_err.get("events") or [])
    assert SECRET not in json.dumps(got)
    # the CLI sends the same spans (same ids): still one copy
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlm_jupyter.cli",
            "export",
            str(recorded.trace_path),
            "--otlp",
            endpoint,
            "--project",
            "rlmj-test",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0 and f"sent {len(expected)} spans" in cli.stdout, cli.stderr
    assert len(_spans(phoenix, "rlmj-test", len(expected))) == len(expected)


# ---- ATIF --------------------------------------------------------------------------------------------------------


def test_run_as_atif_validates_with_steps_tool_calls_and_subagent(recorded, tmp_path, secret_env):
    out = tmp_path / "run.trajectory.json"
    doc = rj.export(recorded, to="atif", path=out)
    assert json.loads(out.read_text()) == doc
    t = atif.Trajectory.model_validate(doc)
    assert t.schema_version == "ATIF-v1.7" and t.agent.name == "rlm-jupyter" and t.agent.model_name == MODEL
    assert [s.source for s in t.steps] == ["user", "agent", "agent", "agent"]
    assert t.steps[0].message.startswith("Which file write was rejected?") and SECRET not in out.read_text()
    s1 = t.steps[1]
    assert [c.function_name for c in s1.tool_calls] == ["repl", "sub_llm"]
    assert s1.metrics.prompt_tokens == 1000 and s1.metrics.cached_tokens == 600
    assert s1.observation.results[0].content == "1\navailable-tools.md\n"
    assert s1.observation.results[0].extra["queries"][0]["op"] == "regex_search"
    s2 = t.steps[2]
    assert [c.function_name for c in s2.tool_calls] == ["repl", "sub_llm_batch", "sub_llm_batch", "rlm"]
    assert s2.observation.results[0].extra["is_error"] is True
    ref = s2.observation.results[-1].subagent_trajectory_ref[0]
    (sub,) = t.subagent_trajectories
    assert ref.trajectory_id == sub.trajectory_id and [s.source for s in sub.steps] == ["user", "agent", "agent"]
    assert t.final_metrics.total_prompt_tokens == 5950 and t.final_metrics.total_cost_usd == pytest.approx(
        recorded.usage["cost_usd"]
    )
    assert t.extra["answer"] == "available-tools.md" and t.extra["status"] == "done"


def _has_atif_loader() -> bool:
    from rlm_jupyter.sessions import formats

    return any(getattr(m, "NAME", None) == "atif" or str(m).endswith("atif") for m in getattr(formats, "MODULES", ()))


needs_loader = pytest.mark.skipif(
    not _has_atif_loader(), reason="the ATIF loader (issue 13's import half) is not in this tree yet"
)


@needs_loader
def test_run_to_atif_to_our_reader_keeps_the_steps(recorded, tmp_path):
    out = tmp_path / "run.trajectory.json"
    rj.export(recorded, to="atif", path=out)
    back = rj.load(out)
    main = back.df.filter(back.df["session_id"] == back.sessions["session_id"][0])
    assistant = main.filter(main["role"] == "assistant")
    assert assistant["text"].to_list() == [s["response"] for s in recorded.trace.steps()]
    assert main.filter(main["role"] == "tool")["tool_name"].to_list()[:2] == ["repl", "sub_llm"]
    assert back.sessions.height == 2  # the recursive run is a linked sub-agent session


def test_sessions_as_atif_keep_tool_calls_and_window_events(samples, tmp_path, monkeypatch):
    ctx = rj.load(samples / CLAUDE)
    assert rj.export(samples / CLAUDE, to="atif") == rj.export(ctx, to="atif")  # files or a Context: the same
    monkeypatch.setenv("RLMJ_EXPORT_TEST_SECRET", "comprehensive understanding")  # a phrase of a tool output
    docs = rj.export(ctx, to="atif", path=tmp_path / "out")
    text = (tmp_path / "out" / f"{docs[0]['trajectory_id']}.json").read_text()
    assert "comprehensive understanding" not in text and "[REDACTED]" in text
    assert len(docs) == 1 and sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"{docs[0]['trajectory_id']}.json"
    ]
    t = atif.Trajectory.model_validate(docs[0])
    df = ctx.df.filter(ctx.df["session_id"] == t.session_id)
    calls = [c for s in t.steps for c in (s.tool_calls or [])]
    assert [c.tool_call_id for c in calls] == df.filter(df["role"] == "tool")["tool_call_id"].to_list()
    assert len(t.steps) == df.filter(df["role"] != "tool").height
    # every sample session's rows survive, and compactions are system steps with context_management
    compacting = [p for p in sorted((samples).rglob("*")) if p.is_file() and p.suffix in (".jsonl", ".json")]
    found = 0
    for p in compacting:
        try:
            c = rj.load(p)
        except ValueError:
            continue
        if not (c.df["boundary"] == "compaction").any():
            continue
        for d in rj.export(c, to="atif"):
            atif.Trajectory.model_validate(d)
            events = (d.get("extra") or {}).get("window_events") or []
            compactions = [e for e in events if e["type"] == "compaction"]
            for e in compactions:
                step = d["steps"][e["step_id"] - 1]
                assert step["source"] == "system" and step["extra"]["context_management"]["type"] == "compaction"
            found += len(compactions)
    assert found > 0, "no sample with a compaction"


@needs_loader
def test_session_to_atif_to_session_keeps_messages_tool_calls_and_order(samples, tmp_path):
    ctx = rj.load(samples / CLAUDE)
    rj.export(ctx, to="atif", path=tmp_path / "s.json")
    back = rj.load(tmp_path / "s.json")
    a = ctx.df.filter(ctx.df["session_id"] == ctx.sessions["session_id"][0])
    b = back.df.filter(back.df["session_id"] == back.sessions["session_id"][0])

    def messages(df):
        return [(r["role"], r["text"]) for r in df.filter(df["role"] != "tool").iter_rows(named=True)]

    def calls(df):
        text = dict(zip(df["id"], df["text"], strict=True))
        return [
            (r["tool_call_id"], r["tool_name"], r["tool_output"], r["tool_status"], text.get(r["parent_id"]))
            for r in df.filter(df["role"] == "tool").iter_rows(named=True)
        ]

    # ATIF nests a tool call in its agent step: messages keep their order, tool calls theirs and their parent
    assert messages(b) == messages(a) and len(messages(a)) > 10
    assert calls(b) == calls(a) and len(calls(a)) == 3


def test_cli_writes_atif_and_says_what_is_wrong(recorded, tmp_path):
    from rlm_jupyter.cli import main

    out = tmp_path / "cli.json"
    assert main(["export", str(recorded.trace_path), "--atif", str(out)]) == 0
    atif.Trajectory.model_validate(json.loads(out.read_text()))
    assert main(["export", str(recorded.trace_path)]) == 2
    assert main(["export", str(tmp_path / "missing.jsonl"), "--atif", str(out)]) == 2
    assert (
        main(
            ["export", str(recorded.trace_path), "--otlp", "http://127.0.0.1:9/v1/traces", "--header", "no-colon-here"]
        )
        == 2
    )


def test_export_is_a_function_after_its_package_is_imported_and_loads_no_opentelemetry():
    import importlib

    importlib.import_module("rlm_jupyter.interop")
    assert callable(rj.export) and rj.export.__module__ == "rlm_jupyter.interop"
    code = "import sys, rlm_jupyter as rj; rj.export; print(sorted(m for m in sys.modules if 'opentelemetry' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr  # OTel loads on the first OTLP export


# ---- %%rlm --export-otlp ------------------------------------------------------------------------------------------


@pytest.fixture
def ip(monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    from rlm_jupyter.jupyter.magics import RlmMagics

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "rlm_jupyter.jupyter")
    monkeypatch.setattr(RlmMagics, "view_factory", staticmethod(lambda **kw: None))  # no widget outside a kernel
    return shell


def _cell(ip, source: str):
    from IPython.utils.capture import capture_output

    with capture_output() as cap:
        res = ip.run_cell(source)
    return res, cap.stdout


def test_rlm_magic_exports_the_finished_run_to_phoenix(ip, samples, phoenix):
    _cell(ip, f"%rlm_load {samples / CLAUDE}")
    res, out = _cell(ip, f"%%rlm --out exported --export-otlp {phoenix}/v1/traces\nWhich write was rejected?")
    assert res.success, out
    run = ip.user_ns["exported"]
    from rlm_jupyter.interop.otlp import build_spans

    expected = build_spans(run.trace)
    assert f"sent {len(expected)} spans to {phoenix}/v1/traces" in out
    got = _spans(phoenix, "default", len(expected))  # no project given: Phoenix's default project
    mine = [s for s in got if s["context"]["trace_id"] == f"{expected[0].trace_id:032x}"]
    assert len(mine) == len(expected) and {s["span_kind"] for s in mine} >= {"AGENT", "CHAIN", "LLM", "TOOL"}


def test_rlm_magic_export_failure_is_one_line_and_keeps_the_run(ip, samples):
    _cell(ip, f"%rlm_load {samples / CLAUDE}")
    res, out = _cell(ip, "%%rlm --out kept --export-otlp http://127.0.0.1:9/v1/traces\nWhich write was rejected?")
    assert res.success and ip.user_ns["kept"].status == "done"
    lines = [ln for ln in out.splitlines() if ln.startswith("%%rlm --export-otlp:")]
    assert len(lines) == 1 and "check that the collector runs" in lines[0]
