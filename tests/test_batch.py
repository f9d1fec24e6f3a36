"""rj.batch with the threads executor: real runs (the real REPL worker, litellm, the scripted model server),
resumable out folders, per-row failures, the overall budget, Ctrl-C, compare, and the CLI."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

import polars as pl
import pytest

import rlm_jupyter as rj
from rlm_jupyter.context.errors import ArgumentError
from rlm_jupyter.testing import ScriptedServer
from rlm_jupyter.testing.batch_model import answerer, ctrl_c_after

CLAUDE = "claude-code/codemie-session-9eda1058.jsonl"
MODEL = "openai/scripted-model"


@pytest.fixture()
def server(monkeypatch):
    with ScriptedServer(answerer) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-batch-SECRET-0123456789")
        yield srv


def questions(n: int) -> list[str]:
    return [f"q-{i}: what happened?" for i in range(n)]


def test_threads_batch_writes_rows_traces_and_parquet(tmp_path, ctx, server):
    res = rj.batch(questions(4), context=ctx, model=MODEL, concurrency=3, out=tmp_path / "b", display=False)
    df = res.df
    assert df.height == 4 and df["status"].to_list() == ["done"] * 4
    assert df["answer"].to_list() == [f"answer q-{i}" for i in range(4)]
    assert df["steps"].to_list() == [2] * 4 and df["sub_calls"].to_list() == [1] * 4
    assert (df["tokens"] > 0).all() and (df["wall_s"] > 0).all()
    for path in df["trace"]:
        back = rj.Trace.load(path)
        assert back.of_type("run_end")[-1]["status"] == "done"
    assert (tmp_path / "b" / "results.parquet").exists()
    assert pl.read_parquet(tmp_path / "b" / "results.parquet").height == 4
    assert res.trace(0).of_type("final")[0]["answer"] == "answer q-0"
    assert len(server.requests) == 12  # 3 model calls per run


def test_workers_close_beside_the_next_run_and_none_outlives_the_batch(tmp_path, ctx, server, monkeypatch):
    from rlm_jupyter.study import closer

    asked = []  # (worker, its pid, its folder) as each run asked for its worker's close
    closed_on: list[str] = []  # the threads that closed them
    ask, close = closer.WorkerCloser.close, closer.Worker.close

    def asking(self, worker):
        asked.append((worker, worker._proc.pid if worker._proc is not None else None, worker._base))
        ask(self, worker)

    def closing(worker):
        closed_on.append(threading.current_thread().name)
        close(worker)

    monkeypatch.setattr(closer.WorkerCloser, "close", asking)
    monkeypatch.setattr(closer.Worker, "close", closing)
    res = rj.batch(questions(6), context=ctx, model=MODEL, concurrency=3, out=tmp_path / "b", display=False)
    assert res.df["status"].to_list() == ["done"] * 6
    assert len(asked) == 6 and all(pid is not None for _, pid, _ in asked)
    # closed off the runs' threads (a run's row does not wait for its worker's exit) ...
    assert closed_on and all(name.startswith("rlmj-close") for name in closed_on), closed_on
    # ... and all of them before batch() returned: no process, no folder left
    for w, pid, base in asked:
        assert w._proc is None and not os.path.exists(f"/proc/{pid}") and not base.exists()


def test_workers_waiting_for_their_close_are_bounded(monkeypatch):
    # unbounded, 75 finished workers (started alone, slow to exit) once waited at the same time and the new ones
    # hit uid nobody's process limit; beyond the bound a run closes its own worker
    from rlm_jupyter.study import closer

    gate, closed_on = threading.Event(), []

    def close(worker):
        closed_on.append(threading.current_thread().name)
        if threading.current_thread().name.startswith("rlmj-close"):
            gate.wait(10)

    monkeypatch.setattr(closer.Worker, "close", close)
    c = closer.WorkerCloser(threads=2, backlog=4)
    for _ in range(10):
        c.close(object())
    assert c.most_pending == 6
    assert closed_on.count(threading.current_thread().name) == 4  # the 4 beyond the bound, closed by their run
    gate.set()
    c.drain()
    assert len(closed_on) == 10


def test_each_context_is_written_once_for_all_its_runs(tmp_path, samples, server, monkeypatch):
    from rlm_jupyter.engine import worker

    written = []
    save = worker.save_context

    def counting(ctx, path):
        written.append(ctx)
        return save(ctx, path)

    monkeypatch.setattr(worker, "save_context", counting)
    before = {p.name for p in Path(tempfile.gettempdir()).glob("rlm-ctx-*")}
    ctx = rj.load(samples / "claude-code")
    res = rj.batch(questions(4), context=ctx, model=MODEL, concurrency=2, out=tmp_path / "one", display=False)
    assert res.df["status"].to_list() == ["done"] * 4
    assert written == [ctx]  # 4 runs (4 workers), one file
    written.clear()
    kw = dict(context=ctx, model=MODEL, per="session", concurrency=3, display=False)
    res = rj.batch(questions(2), out=tmp_path / "per", **kw)
    assert res.df.height == 2 * ctx.sessions.height and set(res.df["status"]) == {"done"}
    assert len(written) == ctx.sessions.height  # one file per session's context, shared by its questions
    assert {p.name for p in Path(tempfile.gettempdir()).glob("rlm-ctx-*")} <= before  # and gone with the batch


def test_resume_skips_finished_rows(tmp_path, ctx, server):
    out = tmp_path / "b"
    rj.batch(questions(2), context=ctx, model=MODEL, out=out, display=False)
    before = len(server.requests)
    res = rj.batch(questions(3), context=ctx, model=MODEL, out=out, display=False)
    assert len(server.requests) - before == 3  # only the new question ran
    assert res.df["answer"].to_list() == ["answer q-0", "answer q-1", "answer q-2"]
    assert res.progress["skipped"] == 2


def test_a_failing_run_is_its_row_and_the_batch_goes_on(tmp_path, ctx, server):
    qs = ["q-0: fine", "q-1: fail-me please", "q-2: fine"]
    res = rj.batch(qs, context=ctx, model=MODEL, out=tmp_path / "b", display=False)
    by_q = {r["question"]: r for r in res.df.iter_rows(named=True)}
    assert by_q["q-0: fine"]["status"] == "done" and by_q["q-2: fine"]["status"] == "done"
    bad = by_q["q-1: fail-me please"]
    assert bad["status"] == "error" and "bad request" in bad["error"]


def test_run_budget_is_per_row(tmp_path, ctx, server):
    res = rj.batch(
        questions(2), context=ctx, model=MODEL, out=tmp_path / "b", run_budget=rj.Budget(tokens=50), display=False
    )
    assert res.df["status"].to_list() == ["budget", "budget"]
    assert res.df["stopped_by"].to_list() == ["tokens", "tokens"]


def test_overall_budget_stops_new_runs_and_says_so(tmp_path, ctx, server):
    # each run uses ~260 tokens: after the first (concurrency 1) the batch's 200 are spent
    res = rj.batch(
        questions(4),
        context=ctx,
        model=MODEL,
        concurrency=1,
        out=tmp_path / "b",
        budget=rj.Budget(tokens=200),
        display=False,
    )
    assert res.df.height == 1 and res.df["status"].to_list() == ["done"]
    assert "batch budget exhausted: tokens" in res.stopped
    assert "batch budget exhausted" in repr(res)


def test_ctrl_c_keeps_finished_rows_and_traces(tmp_path, ctx, server):
    out = tmp_path / "b"
    res = rj.batch(
        questions(8), context=ctx, model=MODEL, concurrency=2, out=out, on_row=ctrl_c_after(2), display=False
    )
    assert res.stopped and res.stopped.startswith("interrupted")
    df = res.df
    assert 2 <= df.height < 8
    assert df.filter(pl.col("status") == "done").height >= 2
    for path in df["trace"]:
        assert rj.Trace.load(path).of_type("run")  # every recorded row has its trace on disk
    # the next batch over the same folder makes only what is missing (and the interrupted runs again)
    res2 = rj.batch(questions(8), context=ctx, model=MODEL, concurrency=2, out=out, display=False)
    assert res2.df.height == 8 and res2.df["status"].to_list() == ["done"] * 8


def test_per_session_and_models_compare(tmp_path, samples, server):
    ctx = rj.load(samples / "claude-code")
    sids = ctx.sessions["session_id"].to_list()
    res = rj.batch(
        ["q-1: what was decided?"],
        context=ctx,
        per="session",
        model=[MODEL, "offline"],
        sub_model="offline-sub",
        out=tmp_path / "b",
        display=False,
    )
    df = res.df
    assert df.height == 2 * len(sids)
    assert sorted(set(df["session_id"].to_list())) == sorted(sids)
    wide = res.compare(by="model")
    assert wide.height == len(sids)
    assert set(wide.columns) >= {"question", "session_id", MODEL, "offline", f"{MODEL} status"}
    assert wide[MODEL].to_list() == ["answer q-1"] * len(sids)
    # a run over one session saw only that session
    for r in df.filter(pl.col("model") == MODEL).iter_rows(named=True):
        run_ev = rj.Trace.load(r["trace"]).of_type("run")[0]
        assert run_ev["context"]["sessions"] == 1
    summary = res.summary(by="model")
    assert summary["runs"].to_list() == [len(sids), len(sids)]


def test_questions_frame_carries_its_columns(tmp_path, ctx, server):
    qs = pl.DataFrame({"question": ["q-5: a", "q-6: b"], "probe": ["p1", "p2"]})
    res = rj.batch(qs, context=ctx, model=MODEL, out=tmp_path / "b", display=False)
    assert res.df["probe"].to_list() == ["p1", "p2"]
    with pytest.raises(ArgumentError, match="needs a `question` column"):
        rj.batch(pl.DataFrame({"q": ["x"]}), context=ctx, model=MODEL, out=tmp_path / "c", display=False)
    with pytest.raises(ArgumentError, match="executor must be"):
        rj.batch(["x"], context=ctx, executor="dask", out=tmp_path / "d")


def test_missing_key_fails_before_any_run(tmp_path, ctx, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    from rlm_jupyter.engine.models import ModelError

    with pytest.raises(ModelError, match="OPENAI_API_KEY"):
        rj.batch(["q-1"], context=ctx, model="gpt-4o-mini", out=tmp_path / "b", display=False)


def test_cli_batch(tmp_path, samples, server, capsys):
    from rlm_jupyter.cli import main

    qfile = tmp_path / "q.jsonl"
    qfile.write_text("\n".join(json.dumps({"question": q, "probe": i}) for i, q in enumerate(questions(2))))
    out = tmp_path / "cli"
    code = main(
        [
            "batch",
            str(qfile),
            "--context",
            str(samples / CLAUDE),
            "--model",
            MODEL,
            "--out",
            str(out),
            "--concurrency",
            "2",
        ]
    )
    assert code == 0
    df = pl.read_parquet(out / "results.parquet")
    assert df["answer"].to_list() == ["answer q-0", "answer q-1"] and df["probe"].to_list() == [0, 1]
    assert len(list((out / "traces").glob("*.rlmtrace.jsonl"))) == 2
    printed = capsys.readouterr()
    assert "2 done" in printed.out
    txt = tmp_path / "q.txt"
    txt.write_text("q-7: one\n\nq-8: two\n")
    assert (
        main(["batch", str(txt), "--context", str(samples / CLAUDE), "--model", MODEL, "--out", str(tmp_path / "t")])
        == 0
    )
    assert pl.read_parquet(tmp_path / "t" / "results.parquet")["answer"].to_list() == ["answer q-7", "answer q-8"]


def test_batch_view_lists_rows_and_opens_their_trace(tmp_path, ctx, server):
    pytest.importorskip("ipywidgets")
    pytest.importorskip("anywidget")
    from rlm_jupyter.jupyter.batch_view import BatchView

    seen = []
    res = rj.batch(
        questions(3),
        context=ctx,
        model=MODEL,
        out=tmp_path / "b",
        display=False,
        on_row=lambda row, p: seen.append(dict(p)),
    )
    assert [p["finished"] for p in seen] == [1, 2, 3]
    view = BatchView.from_result(res)
    assert view.bar.value == 3 and view.bar.max == 3
    assert len(view.list.options) == 3 and "3/3 runs (3 done" in view.status.value
    label, key = view.list.options[0]
    assert label.startswith("✓ q-") and "answer q-" in label
    view.list.value = key  # what clicking a row does
    tv = view.opened
    assert tv is not None and tv.status == "done"
    assert tv.title == view.rows[key]["question"]
    assert any(e["type"] == "final" for e in tv.events())
