"""ATIF trajectories, in the shapes their writers produce (written here from the spec and the writers' docs: no
public file with a licence that lets us ship it was found):
- Harbor's terminus-2 with summarization: `trajectory.json` whose system step delegates to three sub-agent files
  (`trajectory_path`) and whose run continues in `trajectory.cont-1.json` (`continued_trajectory_ref`, the first
  steps `is_copied_context`);
- VS Code Copilot Chat: `<session>.trajectory.json` with a `search_subagent` call whose result names
  `./<sub>.trajectory.json`, parallel calls and a failed call (`error: {message}`), older `VSCode-Copilot-…` version;
- NeMo / ATIF-v1.7: one file with `subagent_trajectories[]` resolved by `trajectory_id`, and a v1.7
  `context_management` compaction step.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import rlm_jupyter as rj
from rlm_jupyter.sessions.formats import Probe, atif, detect
from rlm_jupyter.testing.samples import sample_files

T0 = "2026-03-02T10:00:0{}Z"


def _agent(step_id, message, *, calls=(), results=None, metrics=None, **extra):
    step = {"step_id": step_id, "timestamp": T0.format(step_id % 10), "source": "agent", "message": message, **extra}
    if calls:
        step["tool_calls"] = [
            {"tool_call_id": cid, "function_name": name, "arguments": args} for cid, name, args in calls
        ]
    if results is not None:
        step["observation"] = {"results": results}
    if metrics is not None:
        step["metrics"] = metrics
    return step


def _user(step_id, message, **extra):
    return {"step_id": step_id, "timestamp": T0.format(step_id % 10), "source": "user", "message": message, **extra}


def _system(step_id, message, **extra):
    return {"step_id": step_id, "timestamp": T0.format(step_id % 10), "source": "system", "message": message, **extra}


def _doc(steps, **top):
    return {
        "schema_version": "ATIF-v1.6",
        "session_id": "run-1",
        "agent": {"name": "terminus-2", "version": "2.0.0", "model_name": "openai/gpt-5-mini"},
        "steps": steps,
        **top,
    }


def _write(path: Path, doc, indent=2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=indent))
    return path


def harbor_job(tmp_path) -> Path:
    """A Harbor trial's agent/ folder after one summarization."""
    agent = tmp_path / "job" / "trial-1" / "agent"
    keys = {"keystrokes": "pytest -q\n", "duration": 5}
    main = _doc(
        [
            _system(1, "You are an AI assistant tasked with solving command-line tasks in a Linux environment."),
            _user(2, "Fix the failing test in /app and make sure pytest passes."),
            _agent(
                3,
                "Run the tests first.",
                reasoning_content="Start by reproducing.",
                calls=[("call_1", "bash_command", keys)],
                results=[{"source_call_id": "call_1", "content": "1 failed, 3 passed"}],
                metrics={
                    "prompt_tokens": 1200,
                    "completion_tokens": 80,
                    "cached_tokens": 1000,
                    "cost_usd": 0.001,
                    "extra": {"reasoning_tokens": 32},
                },
            ),
            _system(
                4,
                "Performed context summarization and handoff to continue task.",
                observation={
                    "results": [
                        {
                            "subagent_trajectory_ref": [
                                {
                                    "session_id": "run-1-summarization-1-summary",
                                    "trajectory_path": "trajectory.summarization-1-summary.json",
                                }
                            ]
                        }
                    ]
                },
            ),
        ],
        continued_trajectory_ref="trajectory.cont-1.json",
        final_metrics={"total_prompt_tokens": 2600, "total_completion_tokens": 200, "total_cost_usd": 0.002},
    )
    summary = _doc(
        [
            _user(1, "You are about to hand off your work to another AI agent. Summarize what you did."),
            _agent(
                2,
                "Ran pytest: 1 failed (test_parse). Next: fix parse().",
                metrics={"prompt_tokens": 900, "completion_tokens": 40},
            ),
        ],
        session_id="run-1-summarization-1-summary",
    )
    cont = _doc(
        [
            _user(1, "Fix the failing test in /app and make sure pytest passes.", is_copied_context=True),
            _user(2, "Summary of prior work: pytest had 1 failure (test_parse).", is_copied_context=True),
            _agent(
                3,
                "Fix parse() and rerun.",
                calls=[
                    ("call_2", "bash_command", {"keystrokes": "sed -i s/a/b/ p.py\n"}),
                    ("call_3", "bash_command", keys),
                ],
                results=[
                    {"source_call_id": "call_3", "content": "4 passed"},
                    {"source_call_id": "call_2", "content": ""},
                ],
                metrics={"prompt_tokens": 1400, "completion_tokens": 80, "cached_tokens": 400},
            ),
            _agent(4, "", calls=[("call_4", "mark_task_complete", {})]),
        ]
    )
    _write(agent / "trajectory.json", main)
    _write(agent / "trajectory.summarization-1-summary.json", summary)
    _write(agent / "trajectory.cont-1.json", cont)
    return agent


def test_sniffs_atif_but_not_other_samples(tmp_path, samples):
    agent = harbor_job(tmp_path)
    assert all(atif.sniff(Probe(p)) for p in agent.iterdir())
    compact = _write(tmp_path / "one-line.json", _doc([_user(1, "hi")]), indent=None)
    assert detect(Probe(compact)) is atif
    others = sample_files()
    assert not [p for p in others if atif.sniff(Probe(p))]


def test_harbor_trial_with_summarization_and_continuation(tmp_path):
    harbor_job(tmp_path)
    ctx = rj.load(tmp_path / "job")
    by_id = {s["session_id"]: s for s in ctx.summaries()}
    assert set(by_id) == {"run-1", "run-1/run-1-summarization-1-summary"}
    main, child = by_id["run-1"], by_id["run-1/run-1-summarization-1-summary"]
    assert ctx.sessions.filter(pl.col("session_id") == child["session_id"])["parent_session_id"].to_list() == ["run-1"]
    # the two parts of the run are one session: the continuation follows a boundary; copied steps are harness
    assert main["user_prompts"] == ["Fix the failing test in /app and make sure pytest passes."]
    assert main["tool_calls"] == ["bash_command", "bash_command", "bash_command", "mark_task_complete"]
    assert main["compactions"] == 1
    df = ctx.df.filter(pl.col("session_id") == "run-1").sort("seq")
    before = df.filter(~pl.col("in_context"))
    assert before["raw_type"].to_list()[:3] == ["step/system", "step/user", "step/agent"]
    copied = df.filter(pl.col("raw_type") == "step/user/copied")
    assert copied["origin"].to_list() == ["harness", "harness"] and copied["in_context"].all()
    # tool calls fused with their results by source_call_id, whatever order the results come in
    calls = df.filter(pl.col("role") == "tool")
    assert calls["tool_output"].to_list() == ["1 failed, 3 passed", "", "4 passed", None]
    handoff = df.filter(pl.col("raw_type") == "step/system")["text"][1]
    assert handoff.endswith("handoff to continue task.\nsub-agent: run-1/run-1-summarization-1-summary")
    assert calls.filter(pl.col("tool_call_id") == "call_3")["id"].to_list() == ["call_3"]
    first = df.filter(pl.col("raw_type") == "step/agent").row(0, named=True)
    assert (first["input_uncached"], first["cache_read"], first["output"], first["reasoning"]) == (200, 1000, 80, 32)
    assert first["thinking"] == "Start by reproducing." and first["model"] == "openai/gpt-5-mini"
    assert first["cost_usd"] == pytest.approx(0.001)
    # the parts were read with the main file, each once, and the report says so
    notes = [i.reason for f in ctx.report.files for i in f.issues if i.kind == "note"]
    assert sorted(notes) == ["part of the trajectory in trajectory.json; read with it"] * 2
    assert child["user_prompts"] == ["You are about to hand off your work to another AI agent. Summarize what you did."]


def test_a_part_named_alone_brings_its_trajectory(tmp_path):
    agent = harbor_job(tmp_path)
    ctx = rj.load(agent / "trajectory.summarization-1-summary.json")
    assert sorted(s["session_id"] for s in ctx.summaries()) == ["run-1", "run-1/run-1-summarization-1-summary"]


def test_written_harbor_shapes_validate_against_the_atif_models(tmp_path):
    """The files written above are valid ATIF by the `atif` package's pydantic models (ATIF 1.8)."""
    atif_models = pytest.importorskip("atif")
    for path in sorted(harbor_job(tmp_path).iterdir()):
        atif_models.Trajectory.model_validate(json.loads(path.read_text()))
    atif_models.Trajectory.model_validate(_v17_doc(valid_only=True))


def test_copilot_chat_subagent_file_and_errors(tmp_path):
    folder = tmp_path / "copilot"
    main = {
        "schema_version": "VSCode-Copilot-Trajectory-v1.0",
        "session_id": "main-agent-17",
        "agent": {"name": "copilot-agent", "version": "1.0.0", "model_name": "gpt-4.1"},
        "steps": [
            _user(1, "Find all authentication-related files"),
            _agent(
                2,
                "Searching with the search subagent.",
                calls=[("call-search-1", "search_subagent", {"query": "authentication files"})],
                results=[
                    {
                        "source_call_id": "call-search-1",
                        "content": "Found 3 files: auth.ts, login.ts",
                        "subagent_trajectory_ref": [
                            {
                                "session_id": "search-subagent-9",
                                "trajectory_path": "./search-subagent-9.trajectory.json",
                            }
                        ],
                    }
                ],
                metrics={"prompt_tokens": 250, "completion_tokens": 120, "cached_tokens": 50},
            ),
            _agent(
                3,
                "Reading both.",
                calls=[("c1", "read_file", {"path": "/src/auth.ts"}), ("c2", "read_file", {"path": "/src/gone.ts"})],
                results=[
                    {"source_call_id": "c1", "content": "export function login() {}"},
                    {"source_call_id": "c2", "error": {"message": "ENOENT: /src/gone.ts"}},
                ],
            ),
            _user(4, "/clear"),
        ],
    }
    sub = {
        "schema_version": "VSCode-Copilot-Trajectory-v1.0",
        "session_id": "search-subagent-9",
        "agent": {"name": "search-subagent", "version": "1.0.0"},
        "steps": [
            _user(1, "authentication files"),
            _agent(
                2,
                "",
                calls=[("g1", "grep_search", {"query": "auth"})],
                results=[{"source_call_id": "g1", "content": "auth.ts\nlogin.ts"}],
            ),
        ],
    }
    _write(folder / "main-agent-17.trajectory.json", main)
    _write(folder / "search-subagent-9.trajectory.json", sub)
    ctx = rj.load(folder)
    by_id = {s["session_id"]: s for s in ctx.summaries()}
    assert set(by_id) == {"main-agent-17", "main-agent-17/search-subagent-9"}
    assert by_id["main-agent-17"]["user_prompts"] == ["Find all authentication-related files"]  # /clear: harness
    assert by_id["main-agent-17"]["tool_errors"] == 1
    err = ctx.df.filter(pl.col("tool_call_id") == "c2").row(0, named=True)
    assert (err["tool_status"], err["tool_output"]) == ("error", "ENOENT: /src/gone.ts")
    assert by_id["main-agent-17/search-subagent-9"]["tool_calls"] == ["grep_search"]
    assert by_id["main-agent-17"]["producer"] == "copilot-agent"


def _v17_doc(valid_only: bool = False) -> dict:
    child = {
        "schema_version": "ATIF-v1.7",
        "trajectory_id": "explorer-1",
        "agent": {"name": "explorer", "version": "0.3"},
        "steps": [_user(1, "List the modules"), _agent(2, "parser, lexer")],
    }
    orphan = {
        "schema_version": "ATIF-v1.7",
        "trajectory_id": "reviewer-1",
        "agent": {"name": "reviewer", "version": "0.3"},
        "steps": [_agent(1, "LGTM")],
    }
    bad = [] if valid_only else [{"step_id": 5, "source": "robot", "message": "?"}, "junk"]
    return {
        "schema_version": "ATIF-v1.7",
        "session_id": "nemo-run",
        "trajectory_id": "root",
        "agent": {"name": "nat-agent", "version": "1.4"},
        "steps": [
            _user(1, "Explore the repo"),
            _agent(
                2,
                "Delegating.",
                calls=[("spawn-a", "Agent", {"prompt": "List the modules"})],
                results=[
                    {
                        "source_call_id": "spawn-a",
                        "content": "parser, lexer",
                        "subagent_trajectory_ref": [{"trajectory_id": "explorer-1"}],
                    }
                ],
            ),
            _system(3, "Context compacted", extra={"context_management": {"type": "compaction"}}),
            _agent(4, "Done: parser, lexer.", llm_call_count=1),
            *bad,
        ],
        "subagent_trajectories": [child, orphan],
    }


def test_v17_embedded_subagents_and_compaction(tmp_path):
    doc = _v17_doc()
    path = _write(tmp_path / "nemo.json", doc)
    ctx = rj.load(path)
    by_id = {s["session_id"]: s for s in ctx.summaries()}
    assert set(by_id) == {"root", "root/explorer-1", "root/reviewer-1"}
    parents = dict(ctx.sessions.select("session_id", "parent_session_id").iter_rows())
    assert parents == {"root": None, "root/explorer-1": "root", "root/reviewer-1": "root"}
    assert by_id["root"]["compactions"] == 1
    root = ctx.df.filter(pl.col("session_id") == "root").sort("seq")
    assert root.filter(pl.col("in_context"))["text"].to_list() == ["Context compacted", "Done: parser, lexer.", "?"]
    issues = [(i.pointer, i.kind) for f in ctx.report.files for i in f.issues]
    assert (f"{path}#/steps/4", "unknown") in issues and (f"{path}#/steps/5", "malformed") in issues
    assert ctx.df["id"].n_unique() == ctx.df.height


def test_rlm_jupyter_export_extras_are_restored(tmp_path):
    """A trajectory rlm-jupyter exported (rj.export(..., to="atif")) names each row's role, origin and in_context in
    `extra.rlm_jupyter`, and boundaries in `extra.context_management`: reading it back keeps who wrote what, so
    prompts, compactions and the window count as in the session it came from."""

    def ours(role, origin, in_context=True):
        return {"rlm_jupyter": {"role": role, "origin": origin, "in_context": in_context}}

    doc = {
        "schema_version": "ATIF-v1.7",
        "session_id": "s-1",
        "trajectory_id": "s-1",
        "agent": {"name": "codex", "version": "0.171.0"},
        "steps": [
            _user(1, "<environment_context>cwd</environment_context>", extra=ours("user", "harness", False)),
            _user(2, "Fix the bug", extra=ours("user", "human", False)),
            _agent(3, "Fixed.", extra=ours("assistant", "model", False)),
            _system(4, "compacted", extra={**ours("system", "harness"), "context_management": {"type": "compaction"}}),
            _system(
                5,
                "Summary: the bug is fixed.",
                extra={**ours("user", "summary"), "context_management": {"type": "summary"}},
            ),
            _user(6, "Fix the bug", extra=ours("user", "human")),  # a message the compaction kept
            _user(7, "Thanks", extra=ours("user", "human")),
        ],
    }
    ctx = rj.load(_write(tmp_path / "s-1.json", doc))
    (summary,) = ctx.summaries()
    assert summary["user_prompts"] == ["Fix the bug", "Fix the bug", "Thanks"] and summary["compactions"] == 1
    df = ctx.df.sort("seq")
    assert df["origin"].to_list() == ["harness", "human", "model", "harness", "summary", "human", "human"]
    assert df["role"].to_list() == ["user", "user", "assistant", "system", "user", "user", "user"]
    assert df["in_context"].to_list() == [False, False, False, True, True, True, True]
    assert df["boundary"].to_list() == [None, None, None, "compaction", "summary", None, None]


def test_not_atif_gives_a_clear_error(tmp_path):
    path = _write(tmp_path / "x.json", {"schema_version": "ATIF-v1.6", "steps": "nope"})
    ctx = rj.load(path)
    (issue,) = ctx.report.files[0].issues
    assert "not an ATIF trajectory" in issue.reason and ctx.df.height == 0
