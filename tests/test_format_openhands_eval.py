"""OpenHands evaluation output.jsonl: lines in EvalOutput's shape, written here around the real event lists of
tests/data/samples/openhands (the events are OpenHands' own; the wrapper fields follow evaluation/utils/shared.py)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

import rlm_jupyter as rj
from rlm_jupyter.sessions.formats import Probe, detect, openhands_eval
from rlm_jupyter.testing.samples import sample_files, sample_tree

OH = sample_tree() / "openhands"


def _line(instance_id: str, history: list, **extra) -> str:
    rec = {
        "instance_id": instance_id,
        "test_result": {"git_patch": "diff --git a/x b/x"},
        "instruction": history[0]["args"]["content"] if history and "args" in history[0] else "",
        "metadata": {
            "agent_class": "CodeActAgent",
            "llm_config": {"model": "anthropic/claude-3-5-sonnet-20241022"},
            "max_iterations": 30,
            "eval_output_dir": "evaluation/outputs/x",
            "start_time": "2025-01-27",
        },
        "history": history,
        "metrics": {"accumulated_cost": 0.05},
        "error": None,
        **extra,
    }
    return json.dumps(rec)


def _write(tmp_path) -> Path:
    basic = json.loads((OH / "basic.json").read_text())
    chat = json.loads((OH / "basic_interactions.json").read_text())
    # the 0.9-era layout: [action, observation] pairs
    pairs = [[basic[0], {}], [basic[1], basic[2]], [basic[3], {}]]  # message, edit + its observation, finish
    out = tmp_path / "CodeActAgent" / "claude-3-5-sonnet_maxiter_30" / "output.jsonl"
    out.parent.mkdir(parents=True)
    out.write_text(
        "\n".join(
            [
                _line("game__2048-1", basic),
                _line("chat__hello-2", chat),
                "{broken",
                json.dumps({"instance_id": "x"}),
                _line("game__2048-pairs", pairs),
            ]
        )
        + "\n"
    )
    return out


def test_one_session_per_task(tmp_path, samples):
    path = _write(tmp_path)
    assert detect(Probe(path)) is openhands_eval
    files = sample_files()
    assert not [p for p in files if openhands_eval.sniff(Probe(p))]
    ctx = rj.load(path)
    by_title = {s["title"]: s for s in ctx.summaries()}
    assert set(by_title) == {"game__2048-1", "chat__hello-2", "game__2048-pairs"}
    # each task reads like the event list it holds
    single = rj.load(OH / "basic.json").summaries()[0]
    task = by_title["game__2048-1"]
    for key in ("user_prompts", "tool_calls", "tool_errors", "tokens"):
        assert task[key] == single[key], key
    assert (
        by_title["chat__hello-2"]["user_prompts"]
        == rj.load(OH / "basic_interactions.json").summaries()[0]["user_prompts"]
    )
    assert task["session_id"] == "claude-3-5-sonnet_maxiter_30/game__2048-1"
    # the model the responses name wins over the configured one
    assert ctx.sessions.filter(pl.col("session_id") == task["session_id"])["model"][0] == "claude-3-5-sonnet-20241022"
    # the pairs layout gives the same conversation as the flat one
    pairs = by_title["game__2048-pairs"]
    for key in ("user_prompts", "tool_calls", "tool_errors", "tokens"):
        assert pairs[key] == task[key], key
    # bad lines reported with their numbers, the rest kept
    lines = sorted(i.line for f in ctx.report.files for i in f.issues if i.line is not None)
    assert lines == [3, 4]
    src = ctx.df.filter(pl.col("session_id") == task["session_id"])["source"][0]
    assert src.startswith(f"{path}:1#/history/")
