"""Re-running a run from step k with edited code or an edited response, through REAL litellm against the scripted
OpenAI-compatible server: the replayed steps and their sub-calls must not reach any server."""

from __future__ import annotations

import json

import pytest

import rlm_jupyter as rj
from rlm_jupyter.engine.loop import rlm
from rlm_jupyter.engine.rerun import rerun
from rlm_jupyter.testing import ScriptedServer, ServerModels
from rlm_jupyter.testing.scripted import repl

CLAUDE = "claude-code/codemie-session-9eda1058.jsonl"
MODEL = "openai/scripted-model"


# Three root steps; steps 0 and 1 make three sub-calls (one plain, a batch of two).
ORIGINAL = [
    {
        "text": "Let me ask a sub-model.\n" + repl("a = sub_llm('Summarise: alpha')\nprint(a)"),
        "usage": {"prompt_tokens": 900, "completion_tokens": 30},
    },
    {"text": "alpha summary", "usage": {"prompt_tokens": 10, "completion_tokens": 3}},
    {
        "text": repl("b = sub_llm_batch(['zqx-first', 'zqx-second'])\nprint(b)"),
        "usage": {"prompt_tokens": 1000, "completion_tokens": 20},
    },
    {"text": "FIRST", "match": "zqx-first", "usage": {"prompt_tokens": 5, "completion_tokens": 1}},
    {"text": "SECOND", "match": "zqx-second", "usage": {"prompt_tokens": 5, "completion_tokens": 1}},
    {
        "text": "Done.\n" + repl("final = a + ' / ' + ' & '.join(b)") + "\nFINAL_VAR(final)",
        "usage": {"prompt_tokens": 1100, "completion_tokens": 25},
    },
]


@pytest.fixture(scope="module")
def original(ctx, tmp_path_factory):
    path = tmp_path_factory.mktemp("orig") / "orig.rlmtrace.jsonl"
    with ScriptedServer(ORIGINAL) as srv:
        run = rlm("Which file?", ctx, model=MODEL, models=ServerModels(srv.base_url), trace_path=path)
        assert len(srv.requests) == 6
    assert run.status == "done" and run.answer == "alpha summary / FIRST & SECOND"
    return run


def test_rerun_with_edited_code_replays_earlier_steps_without_any_model_call(ctx, original, tmp_path):
    path = tmp_path / "rerun.rlmtrace.jsonl"
    edited = "final = 'edited: ' + a + ' / ' + b[1]\nprint(final)"
    with ScriptedServer(
        [{"text": "FINAL_VAR(final)", "usage": {"prompt_tokens": 1500, "completion_tokens": 5}}],
        exhausted={"status": 500, "error": "nothing scripted"},
    ) as srv:
        new = rerun(original, step=3, code=edited, context=ctx, models=ServerModels(srv.base_url), trace_path=path)
        requests = list(srv.requests)
    # Only step 3 (the model continuing after the edited step) reached a server; it saw the edited code's output.
    assert len(requests) == 1
    assert "edited: alpha summary / SECOND" in json.dumps(requests[0]["body"])
    assert new.status == "done" and new.answer == "edited: alpha summary / SECOND"

    steps = new.trace.steps()
    assert [s["index"] for s in steps] == [0, 1, 2, 3]
    assert [s.get("finish_reason") for s in steps[:3]] == ["replayed", "replayed", "edited"]
    assert [s["response"] for s in steps[:2]] == [e["text"] for e in (ORIGINAL[0], ORIGINAL[2])]
    assert steps[2]["response"].endswith(f"```repl\n{edited}\n```") and "FINAL_VAR" not in steps[2]["response"]
    assert steps[2]["edited"] == "code" and steps[0]["replayed"] and not steps[3].get("replayed")
    subs = new.trace.of_type("sub_call")
    assert sorted(s["response"] for s in subs) == ["FIRST", "SECOND", "alpha summary"]
    assert all(s["replayed"] and s["tokens_in"] == 0 and s["cost_usd"] == 0 for s in subs)
    # The new spend is the one live call only (the server reported 1500 + 5 tokens).
    assert (new.usage["tokens_in"], new.usage["tokens_out"]) == (1500, 5)

    origin = new.trace.root["rerun_of"]
    assert origin["run"] == original.trace.root["id"] and origin["trace_path"] == str(original.trace_path)
    assert (origin["step"], origin["replayed_steps"], origin["edited"]) == (2, [0, 1], "code")
    assert (origin["replayed_sub_calls"], origin["live_calls_during_replay"]) == (3, 0)
    # The file written while the rerun went carries the same marks when read back.
    back = rj.Trace.load(path)
    assert back.root["rerun_of"]["replayed_steps"] == [0, 1]
    assert [s.get("replayed", False) for s in back.steps()] == [True, True, False, False]
    assert back.answer == new.answer


def test_rerun_with_an_edited_response_makes_no_call_at_all(ctx, original):
    with ScriptedServer([]) as srv:
        new = rerun(original, step=2, response="FINAL(typed by hand)", context=ctx, models=ServerModels(srv.base_url))
        assert srv.requests == []
    assert new.status == "done" and new.answer == "typed by hand"
    assert [s["finish_reason"] for s in new.trace.steps()] == ["replayed", "edited"]
    assert new.trace.root["rerun_of"]["edited"] == "response"
    assert new.usage["tokens_in"] + new.usage["tokens_out"] == 0
    # the new run remembers its context, so it can be re-run in turn
    again = rerun(new, step=2, response="FINAL(second edit)", models=ServerModels("http://127.0.0.1:9"))
    assert again.answer == "second edit" and again.trace.root["rerun_of"]["run"] == new.trace.root["id"]


def test_rerun_without_an_edit_asks_the_model_again_from_step_k(ctx, original):
    with ScriptedServer([repl("final = 'fresh'"), "FINAL_VAR(final)"]) as srv:
        new = rerun(original, step=3, context=ctx, models=ServerModels(srv.base_url))
        assert len(srv.requests) == 2
    assert new.answer == "fresh" and new.trace.root["rerun_of"]["edited"] is None


def test_rerun_refuses_what_it_cannot_do(ctx, original):
    with pytest.raises(ValueError, match="between 1 and 3"):
        rerun(original, step=4, code="x = 1", context=ctx)
    with pytest.raises(ValueError, match=r"steps count from 1 \(the view's #1\); step=1 re-runs the first step"):
        rerun(original, step=0, code="x = 1", context=ctx)
    with pytest.raises(ValueError, match="pass context="):
        rerun(original, step=1, code="x = 1")
    with pytest.raises(ValueError, match="not both"):
        rerun(original, step=1, code="x = 1", response="y", context=ctx)
