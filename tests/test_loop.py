"""The RLM loop with the real worker (a sandboxed process) and real model calls through litellm, scripted with
"script:FILE" models: FINAL / FINAL_VAR / answer-dict finishes, the paper's FINAL failure modes, failed sub-calls,
budgets, recursion, Ctrl-C, output truncation and the trace it writes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import jsonschema
import pytest

import rlm_jupyter as rj
from rlm_jupyter.engine import forkserver
from rlm_jupyter.engine import worker as worker_module
from rlm_jupyter.engine.budget import Budget
from rlm_jupyter.engine.loop import rlm
from rlm_jupyter.engine.models import Models
from rlm_jupyter.engine.parse import parse_reply
from rlm_jupyter.engine.worker import Limits
from rlm_jupyter.testing.scripted import repl, script_model
from rlm_jupyter.trace import Trace

SCHEMA = json.loads((Path(__file__).parents[1] / "rlm_jupyter" / "trace" / "schema.json").read_text())
CLAUDE = "claude-code/codemie-session-9eda1058.jsonl"


def check_tree(trace: Trace) -> None:
    """Every event validates against the schema, and every parent is an earlier event (one parent chain)."""
    seen = set()
    for e in trace.events:
        jsonschema.validate(e, SCHEMA)
        assert e["parent"] is None or e["parent"] in seen, e
        seen.add(e["id"])


# ---- parsing ---------------------------------------------------------------------------------------------------


def test_parse_blocks_in_order_and_final_only_at_line_start():
    r = parse_reply(
        "Plan: I will call FINAL(x) at the end.\n```repl\na = 1\n```\ntext\n```python\nprint(a)\n```\n```bash\nls\n```"
    )
    assert r.code == ["a = 1", "print(a)"] and r.final is None  # FINAL inside a plan sentence is not taken
    r = parse_reply("```repl\nFINAL('in code')\n```\nFINAL(The answer (with parens) is 42)\n")
    assert r.final.kind == "FINAL" and r.final.value == "The answer (with parens) is 42"
    assert parse_reply("FINAL_VAR(result)").final.value == "result"
    r = parse_reply("FINAL(...)")
    assert r.final is None and "placeholder" in r.refused


# ---- runs --------------------------------------------------------------------------------------------------------


def test_final_var_before_the_variable_exists_tells_the_model_and_goes_on(tmp_path, ctx):
    model = script_model(
        tmp_path,
        [
            repl("n = len(context)\nprint(n)") + "\nFINAL_VAR(missing)",
            repl("missing = f'{n} messages'"),
            "FINAL_VAR(missing)",
        ],
    )
    path = tmp_path / "run.rlmtrace.jsonl"
    run = rlm("How many messages?", ctx, model=model, sub_model=model, models=Models(), trace_path=path)
    assert run.status == "done" and run.answer == f"{len(ctx)} messages"
    assert run.trace.of_type("final")[-1]["via"] == "FINAL_VAR"
    # the trace was written append-only while the run went, and reads back the same
    back = Trace.load(path)
    assert back.answer == run.answer and len(back.of_type("step")) == 3
    check_tree(back)


def test_answer_dict_sub_calls_and_a_failed_sub_call(tmp_path, ctx):
    model = script_model(
        tmp_path,
        [
            repl(
                "a = sub_llm('Question: which file?\\nText: Write: available-tools.md was rejected.')\n"
                "b = sub_llm_batch(['one', 'two'])\n"  # the sub script has one answer left: the second call fails
                "answer['content'] = a + ' | ' + ' | '.join(b)\nanswer['ready'] = True"
            )
        ],
        sub=["first", "second"],
    )
    run = rlm("Which file?", ctx, model=model, sub_model=model, models=Models())
    assert run.status == "done" and run.trace.of_type("final")[-1]["via"] == "answer"
    subs = run.trace.of_type("sub_call")
    # the two batch calls run concurrently: which one gets the last scripted answer is a race
    assert subs[0]["status"] == "ok" and sorted(s["status"] for s in subs[1:]) == ["error", "ok"]
    failed = next(s for s in subs if s["status"] == "error")
    assert "script exhausted" in failed["error"]
    parts = run.answer.split(" | ")  # the code got the error as text, in the batch's prompt order
    assert parts[0] == "first" and sorted(p[:6] for p in parts[1:]) == ["Error:", "second"]
    assert all(run.trace.get(s["parent"])["type"] == "code" for s in subs)
    check_tree(run.trace)


def test_output_is_cut_for_the_prompt_but_kept_whole_in_the_trace(tmp_path, ctx):
    model = script_model(tmp_path, [repl("print('x' * 50_000)"), "FINAL(done)"])
    seen = []
    run = rlm(
        "q", ctx, model=model, sub_model=model, models=Models(), limits=Limits(output_chars=1_000), on_event=seen.append
    )
    out = run.trace.of_type("output")[0]
    assert len(out["stdout"]) == 50_001 and out["truncated"] is True
    # the second step's prompt holds the cut output (~1,000 chars), not 50,000
    step2 = run.trace.of_type("step")[1]
    assert step2["prompt_chars"] < 20_000
    assert {e["type"] for e in seen} >= {"run", "step", "code", "output", "final", "run_end"}


def test_token_budget_stops_with_the_best_partial_answer(tmp_path, ctx):
    model = script_model(
        tmp_path, [repl("answer['content'] = 'partial: Write was rejected'\nprint('x' * 4000)"), repl("print('never')")]
    )
    run = rlm("q", ctx, model=model, sub_model=model, models=Models(), budget=Budget(tokens=100))
    assert run.status == "budget" and run.stopped_by == "tokens"
    assert run.answer == "partial: Write was rejected"
    stop = run.trace.of_type("budget_stop")[0]
    assert stop["budget"] == "tokens" and stop["used"] >= 100
    assert len(run.trace.of_type("step")) == 1
    check_tree(run.trace)


def test_iteration_limit_asks_for_the_answer_once(tmp_path, ctx):
    model = script_model(tmp_path, [repl("print(1)"), repl("print(2)"), "FINAL(forced answer)"])
    run = rlm("q", ctx, model=model, sub_model=model, models=Models(), max_iterations=2)
    assert run.status == "max_iterations" and run.answer == "forced answer"
    assert run.trace.of_type("final")[-1]["via"] == "forced"


def test_recursive_rlm_opens_a_child_run_under_its_sub_call(tmp_path, ctx):
    model = script_model(
        tmp_path,
        [
            repl("r = rlm('Which file write was rejected?')\nprint(r)"),
            "FINAL(available-tools.md)",  # the child run's only step
            "FINAL_VAR(r)",
        ],
    )
    run = rlm("q", ctx, model=model, sub_model=model, models=Models(), max_depth=2)
    assert run.status == "done" and run.answer == "available-tools.md"
    sub = run.trace.of_type("sub_call")[0]
    child = run.trace.get(sub["child_run"])
    assert child["type"] == "run" and child["parent"] == sub["id"] and child["depth"] == 1
    kids = [e["type"] for e in run.trace.children(child["id"])]
    # a forked worker starts during the first model call and is taken once that call answered; else before it
    forked = "start_s" in run.trace.children(child["id"])[kids.index("worker_start")]
    assert kids == (["step", "worker_start"] if forked else ["worker_start", "step"]) + ["final", "run_end"]
    check_tree(run.trace)


def test_below_max_depth_rlm_falls_back_to_sub_llm(tmp_path, ctx):
    model = script_model(tmp_path, [repl("print(rlm('inner'))"), "FINAL(ok)"], sub=["plain sub answer"])
    run = rlm("q", ctx, model=model, sub_model=model, models=Models(), max_depth=1)
    sub = run.trace.of_type("sub_call")[0]
    assert sub["fallback"] == "max_depth" and sub["response"] == "plain sub answer" and not sub.get("child_run")
    assert "plain sub answer" in run.trace.of_type("output")[0]["stdout"]


def test_interrupt_keeps_the_trace_and_closes_cleanly(tmp_path, ctx):
    model = script_model(tmp_path, [repl("answer['content'] = 'so far'\nprint(1)"), repl("print(2)"), "FINAL(x)"])
    path = tmp_path / "int.rlmtrace.jsonl"

    def stop(event):
        if event["type"] == "output":
            raise KeyboardInterrupt

    run = rlm("q", ctx, model=model, sub_model=model, models=Models(), trace_path=path, on_event=stop)
    assert run.status == "interrupted" and run.answer == "so far"
    back = Trace.load(path)
    assert back.of_type("run_end")[-1]["status"] == "interrupted"


# ---- the worker starts while the first model call is in flight ------------------------------------------------


class _SlowFirstCall:
    """Models() whose first call takes `delay` seconds longer (a slow root model)."""

    def __init__(self, delay: float):
        self.inner, self.delay, self.calls = Models(), delay, 0

    def complete(self, model, messages, **kw):
        self.calls += 1
        if self.calls == 1:
            time.sleep(self.delay)
        return self.inner.complete(model, messages, **kw)

    def batch(self, model, prompts, **kw):
        return self.inner.batch(model, prompts, **kw)


@pytest.fixture
def forked(monkeypatch):
    """The workers the runs build (recorded), with a ready fork server; skipped where workers start alone."""
    fs = forkserver.prestart()
    if fs is None or not fs.wait_ready():
        pytest.skip("no fork server here: workers start alone, before the first model call")
    made = []

    class Recorded(worker_module.Worker):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self)

        def _start_forked(self):
            super()._start_forked()
            self.pid_seen = self._proc.pid

    monkeypatch.setattr(worker_module, "Worker", Recorded)
    return made


def _gone(pid: int | None, within: float = 5.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if pid is None or not os.path.exists(f"/proc/{pid}"):
            return True
        time.sleep(0.02)
    return False


def test_the_worker_starts_during_the_first_model_call(tmp_path, ctx, forked):
    model = script_model(tmp_path, [repl("print(len(context))"), "FINAL(ok)"])
    run = rlm("q", ctx, model=model, sub_model=model, models=_SlowFirstCall(0.5))
    assert run.status == "done" and run.answer == "ok"
    kids = run.trace.children(run.trace.root["id"])
    assert [e["type"] for e in kids][:2] == ["step", "worker_start"]
    step, ws = kids[0], kids[1]
    # the start ran beside the 0.5 s call: the run waited at most what was left of it, not the whole start
    assert ws["start_s"] > 0 and ws["wait_s"] <= max(0.0, ws["start_s"] - 0.4) + 0.05, ws
    assert ws["t"] >= step["t"] + 0.4 and ws["dur"] == ws["wait_s"]
    assert run.trace.root["sandbox"] == ws["isolation"] and run.trace.of_type("output")[0]["status"] == "ok"
    check_tree(run.trace)


def test_a_run_that_needs_no_code_still_closes_its_worker(tmp_path, ctx, forked):
    model = script_model(tmp_path, ["FINAL(right away)"])
    run = rlm("q", ctx, model=model, sub_model=model, models=Models())
    assert run.status == "done" and run.answer == "right away"
    (w,) = forked
    assert w._proc is None and _gone(w.pid_seen), "the worker started during the call is closed with the run"


def test_interrupted_during_the_first_call_closes_the_starting_worker(tmp_path, ctx, forked):
    model = script_model(tmp_path, [repl("print(1)"), "FINAL(x)"])

    def stop(event):
        if event["type"] == "step":  # before the first model call answers, the worker start under way
            raise KeyboardInterrupt

    run = rlm("q", ctx, model=model, sub_model=model, models=Models(), on_event=stop)
    assert run.status == "interrupted"
    (w,) = forked
    assert _gone_soon(w) and _gone(getattr(w, "pid_seen", None))


def _gone_soon(w, within: float = 5.0) -> bool:
    """The worker's process is closed (by the run, or by the start's thread once the start ended)."""
    end = time.monotonic() + within
    while w._proc is not None and time.monotonic() < end:
        time.sleep(0.02)
    return w._proc is None


def test_a_failed_background_start_fails_the_run_as_a_sandbox_error(tmp_path, ctx, forked, monkeypatch):
    def broken(self):
        raise worker_module.WorkerError("the REPL worker did not start (bwrap, forked): no")

    monkeypatch.setattr(worker_module.Worker, "_start_forked", broken)
    model = script_model(tmp_path, [repl("print(1)"), "FINAL(x)"])
    run = rlm("q", ctx, model=model, sub_model=model, models=Models())
    assert run.status == "error" and run.error_kind == "sandbox"
    assert "WorkerError: the REPL worker did not start" in run.trace.of_type("error")[0]["message"]
    assert not run.trace.of_type("worker_start") and not run.trace.of_type("code")


def test_hybrid_mode_packs_preserved_retrieved_and_recent(samples):
    ctx = rj.load(samples / CLAUDE)
    first = ctx[0].id
    ctx.preserve(first)
    run = rlm("Which file write was rejected?", ctx, mode="hybrid", hybrid_tokens=3_000)
    step = run.trace.of_type("step")[0]
    packed = step["packed"]
    assert first in packed["preserved"]
    assert "toolu_bdrk_01SKk2dM5q1c8gecaoatnwJn" in packed["retrieved"]  # the rejected Write (checked by hand)
    assert step["packed_tokens"] <= 3_000 + 200
    assert run.status == "done" and "available-tools.md" in run.answer
    assert run.trace.of_type("query")[0]["op"] == "search"
