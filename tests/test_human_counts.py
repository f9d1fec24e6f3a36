"""Who counts as human: one typed prompt counts once, and what the harness injects never counts (docs/sessions.md,
"Who counts as human"). Files written here reproduce the shapes of the variants that were miscounted:
Claude Code 1.0.x sidechains inside the main file, Codex Desktop 0.104 (a prompt written as event and as item,
injected context as user items), Gemini CLI's "System: Please continue." turns, and slash commands everywhere.
The recorded real sessions (tests/data/recorded) keep their counts."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import rlm_jupyter as rj

REC = Path(__file__).parent / "data" / "recorded"
SID = "7f1c2a10-0000-4000-8000-000000000001"


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# ---------------------------------------------------------------- Claude Code 1.0.x: sidechains in the main file


def _claude(uuid, parent, kind, content, *, side=False, ts="2025-06-20T10:00:00.000Z", **extra):
    rec = {
        "parentUuid": parent,
        "isSidechain": side,
        "userType": "external",
        "cwd": "/repo",
        "sessionId": SID,
        "version": "1.0.31",
        "type": kind,
        "uuid": uuid,
        "timestamp": ts,
    }
    if kind == "user":
        rec["message"] = {"role": "user", "content": content}
    else:
        rec["message"] = {
            "id": f"msg_{uuid}",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4",
            "content": content,
            "usage": {
                "input_tokens": 10,
                "cache_read_input_tokens": 1000,
                "cache_creation_input_tokens": 50,
                "output_tokens": 20,
            },
        }
    rec.update(extra)
    return rec


TASK_PROMPT = "Find every place that reads SESSIONS and report the file and line."


def claude_v1(tmp_path) -> Path:
    task = {
        "type": "tool_use",
        "id": "toolu_task1",
        "name": "Task",
        "input": {"description": "find readers", "prompt": TASK_PROMPT},
    }
    records = [
        _claude("u1", None, "user", "Why do expired sessions still work?"),
        _claude("a1", "u1", "assistant", [{"type": "text", "text": "Let me look."}, task]),
        # the sub-agent's conversation, interleaved in the same file
        _claude("s1", None, "user", TASK_PROMPT, side=True),
        _claude(
            "s2",
            "s1",
            "assistant",
            [{"type": "tool_use", "id": "toolu_g1", "name": "Grep", "input": {"pattern": "SESSIONS"}}],
            side=True,
        ),
        _claude(
            "s3",
            "s2",
            "user",
            [{"type": "tool_result", "tool_use_id": "toolu_g1", "content": "app.py:4\napp.py:17"}],
            side=True,
        ),
        _claude("s4", "s3", "assistant", [{"type": "text", "text": "app.py lines 4 and 17."}], side=True),
        _claude(
            "u2",
            "a1",
            "user",
            [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_task1",
                    "content": [{"type": "text", "text": "app.py lines 4 and 17."}],
                }
            ],
            toolUseResult={
                "content": [{"type": "text", "text": "app.py lines 4 and 17."}],
                "totalDurationMs": 900,
                "totalTokens": 1100,
                "totalToolUseCount": 1,
            },
        ),
        _claude("a2", "u2", "assistant", [{"type": "text", "text": "get_session returns expired sessions."}]),
        _claude("u3", "a2", "user", "/cost"),
        _claude("u4", "u3", "user", "Fix it please."),
    ]
    return _jsonl(tmp_path / "claude" / f"{SID}.jsonl", records)


def test_claude_1x_sidechains_become_a_linked_sub_agent(tmp_path):
    ctx = rj.load(claude_v1(tmp_path))
    by_id = {s["session_id"]: s for s in ctx.summaries()}
    child_id = f"{SID}:agent-s1"
    assert set(by_id) == {SID, child_id}
    main, child = by_id[SID], by_id[child_id]
    # the Task prompt is not a human prompt of the main session, and /cost is a command, not a prompt
    assert main["user_prompts"] == ["Why do expired sessions still work?", "Fix it please."]
    assert main["tool_calls"] == ["Task"] and child["tool_calls"] == ["Grep"]
    assert main["subagents"] == [child_id]
    assert ctx.sessions.filter(pl.col("session_id") == child_id)["parent_session_id"].to_list() == [SID]
    # the main session's turns are its own: 2 assistant rows, not 4
    main_rows = ctx.df.filter(pl.col("session_id") == SID)
    assert main_rows.filter(pl.col("role") == "assistant").height == 2
    task = main_rows.filter(pl.col("tool_name") == "Task").row(0, named=True)
    assert task["tool_output"].endswith(f"[sub-agent session: {child_id}]")
    # the child's prompt came from the main agent
    first = ctx.df.filter(pl.col("session_id") == child_id).sort("seq").row(0, named=True)
    assert (first["role"], first["origin"], first["text"]) == ("user", "model", TASK_PROMPT)


def test_claude_1x_xray_window_holds_only_the_main_conversation(tmp_path):
    """The X-ray rebuilds the main agent's window from the main session's rows: no sub-agent turn in it."""
    from rlm_jupyter.window import xray

    ctx = rj.load(claude_v1(tmp_path))
    xr = xray(ctx, session=SID)
    assert xr.turns.height == 2  # the two prompts a person typed
    ids = set(xr.window().ids)
    main_ids = set(ctx.df.filter(pl.col("session_id") == SID)["id"])
    child_ids = set(ctx.df.filter(pl.col("session_id") == f"{SID}:agent-s1")["id"])
    assert ids and ids <= main_ids and not ids & child_ids


def test_claude_2x_sidechain_records_in_a_main_file_stay(samples):
    """The 1.x rule is scoped to 1.x: the 2.1 catalog's isSidechain records are not split off."""
    ctx = rj.load(samples / "claude-code" / "SYNTHETIC-agent-sessions-record-catalog.jsonl")
    assert [s["parent_session_id"] for s in ctx.summaries()] == [None]


# ---------------------------------------------------------------- Codex Desktop 0.104


def _codex(ts, kind, payload):
    return {"timestamp": f"2026-02-20T10:00:{ts:02d}.000Z", "type": kind, "payload": payload}


def _item_user(*texts):
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": t} for t in texts]}


def codex_desktop(tmp_path) -> Path:
    records = [
        _codex(
            0,
            "session_meta",
            {
                "id": "019c7a00-0000-7000-8000-000000000104",
                "timestamp": "2026-02-20T10:00:00Z",
                "cwd": "/repo",
                "originator": "Codex Desktop",
                "cli_version": "0.104.0",
                "source": "vscode",
                "model_provider": "openai",
            },
        ),
        _codex(1, "event_msg", {"type": "task_started", "turn_id": "t1"}),
        # Desktop writes the typed prompt's event first, then the injected context, then the prompt's item
        _codex(2, "event_msg", {"type": "user_message", "message": "Fix the expired-session bug", "images": []}),
        _codex(
            3,
            "response_item",
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "<permissions instructions>x"}],
            },
        ),
        _codex(
            4,
            "response_item",
            _item_user(
                "# AGENTS.md instructions for /repo\n\n<INSTRUCTIONS>Be brief.</INSTRUCTIONS>",
                "<environment_context>\n  <cwd>/repo</cwd>\n</environment_context>",
            ),
        ),
        _codex(5, "response_item", _item_user("<app_context>open tabs: app.py</app_context>")),
        _codex(6, "response_item", _item_user("Fix the expired-session bug")),
        _codex(
            7,
            "response_item",
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Done: expired sessions are popped."}],
            },
        ),
        _codex(8, "event_msg", {"type": "agent_message", "message": "Done: expired sessions are popped."}),
        # turn 2: the item first, then its event
        _codex(9, "response_item", _item_user("Now run the tests")),
        _codex(10, "event_msg", {"type": "user_message", "message": "Now run the tests", "images": []}),
        _codex(
            11,
            "response_item",
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "All tests pass."}]},
        ),
    ]
    return _jsonl(
        tmp_path / "codex" / "rollout-2026-02-20T10-00-00-019c7a00-0000-7000-8000-000000000104.jsonl", records
    )


def test_codex_desktop_prompt_counts_once_and_injected_context_is_harness(tmp_path):
    ctx = rj.load(codex_desktop(tmp_path))
    (summary,) = ctx.summaries()
    assert summary["user_prompts"] == ["Fix the expired-session bug", "Now run the tests"]
    users = ctx.df.filter(pl.col("role") == "user").sort("seq")
    # every prompt is one row (the item the model saw), the injected items are harness
    assert users["text"].to_list().count("Fix the expired-session bug") == 1
    assert users.filter(pl.col("origin") == "harness")["text"].str.slice(0, 13).to_list() == [
        "# AGENTS.md i",
        "<app_context>",
    ]


def test_codex_without_events_keeps_item_prompts(tmp_path):
    """Where a rollout has no user_message events, the items stay the prompts (no authority to defer to)."""
    lines = [
        r
        for r in map(json.loads, codex_desktop(tmp_path).read_text().splitlines())
        if r["payload"].get("type") != "user_message"
    ]
    path = _jsonl(tmp_path / "codex2" / "rollout-2026-02-20T10-00-00-019c7a00-0000-7000-8000-000000000105.jsonl", lines)
    (summary,) = rj.load(path).summaries()
    assert summary["user_prompts"] == [
        "<app_context>open tabs: app.py</app_context>",
        "Fix the expired-session bug",
        "Now run the tests",
    ]


# ---------------------------------------------------------------- Gemini CLI


def test_gemini_continue_turns_and_slash_commands_are_harness(tmp_path):
    t = "2026-01-10T09:00:0{}Z"
    doc = {
        "sessionId": "5b959dae-0000-4000-8000-00000000aaaa",
        "projectHash": "abc",
        "startTime": t.format(0),
        "lastUpdated": t.format(9),
        "messages": [
            {"id": "m1", "timestamp": t.format(1), "type": "user", "content": "List the files"},
            {
                "id": "m2",
                "timestamp": t.format(2),
                "type": "gemini",
                "content": "",
                "toolCalls": [
                    {
                        "id": "ls-1",
                        "name": "list_directory",
                        "args": {"path": "."},
                        "status": "success",
                        "result": [
                            {
                                "functionResponse": {
                                    "id": "ls-1",
                                    "name": "list_directory",
                                    "response": {"output": "app.py"},
                                }
                            }
                        ],
                    }
                ],
                "tokens": {"input": 100, "output": 5, "cached": 0, "thoughts": 0, "tool": 0, "total": 105},
            },
            {
                "id": "m3",
                "timestamp": t.format(3),
                "type": "user",
                "content": [
                    {"functionResponse": {"id": "ls-1", "name": "list_directory", "response": {"output": "app.py"}}},
                    {"text": "System: Please continue."},
                ],
            },
            {"id": "m4", "timestamp": t.format(4), "type": "gemini", "content": "There is one file: app.py."},
            {"id": "m5", "timestamp": t.format(5), "type": "user", "content": "/compress"},
            {"id": "m6", "timestamp": t.format(6), "type": "user", "content": "Please continue."},
        ],
    }
    path = tmp_path / "session-2026-01-10T09-00-5b959dae.json"
    path.write_text(json.dumps(doc, indent=2))  # pretty-printed, as the CLI writes it
    (summary,) = rj.load(path).summaries()
    # the CLI's continue turn (with the tool response) and /compress are harness; a person's "Please continue." not
    assert summary["user_prompts"] == ["List the files", "Please continue."]


# ---------------------------------------------------------------- one rule for slash commands


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("/init", True),
        ("/compact keep the test names", True),
        ("  /review:pr 12", True),
        ("/model\n", True),
        ("/usr/bin/python3 crashes", False),
        ("/path/to/file.py is broken", False),
        ("a /init", False),
        ("/", False),
        ("//comment", False),
        ("", False),
    ],
)
def test_slash_command_rule(text, command):
    from rlm_jupyter.sessions.textutil import is_slash_command

    assert is_slash_command(text) is command


# ---------------------------------------------------------------- recorded real sessions keep their counts


@pytest.mark.parametrize(
    ("path", "prompts"),
    [
        (REC / "codex" / "sessions", 7),  # 7 exec turns, the manual compaction is not a prompt
        (REC / "mini-swe-agent" / "toolcall.traj.json", 1),
        (REC / "inspect", 4),  # 2 logs x 2 samples, one input each
    ],
)
def test_recorded_sessions_count_each_prompt_once(path, prompts):
    ctx = rj.load(path)
    assert sum(len(s["user_prompts"]) for s in ctx.summaries()) == prompts
