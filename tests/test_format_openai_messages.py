"""Plain OpenAI message lists: the two mini-swe-agent trajectories and built variants (tool_calls, parts)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import rlm_jupyter as rj
from rlm_jupyter.sessions.formats import Probe, gemini, openai_messages, openhands, swe_agent
from rlm_jupyter.testing.samples import load_one as _load
from rlm_jupyter.testing.samples import sample_files

OAI = Path(__file__).parent / "data" / "samples" / "openai-messages"
GITHUB = OAI / "mini-swe-agent-github_issue.traj.json"
LOCAL = OAI / "mini-swe-agent-local.traj.json"


def test_each_sniffer_claims_only_its_own_folder(samples):
    """Every sample file through the four sniffers of this module group: no format steals another's file."""
    mine = {gemini: "gemini", swe_agent: "swe-agent", openhands: "openhands", openai_messages: "openai-messages"}
    files = sample_files()
    for p in files:
        claimed = [folder for mod, folder in mine.items() if mod.sniff(Probe(p))]
        folder = p.relative_to(samples).parts[0]
        assert claimed == ([folder] if folder in mine.values() else []), p


def test_mini_swe_agent_fenced_commands_become_bash_tool_rows():
    msgs = json.loads(GITHUB.read_text())
    _, df, summary = _load(GITHUB)
    assistants = [m for m in msgs if m["role"] == "assistant"]
    assert summary["messages"] == {"system": 1, "user": 1, "assistant": len(assistants), "tool": len(assistants)}
    assert summary["user_prompts"] == [msgs[1]["content"]]
    tools = df.filter(pl.col("role") == "tool")
    assert json.loads(tools["tool_input"][0])["command"].startswith("cat /Users/fuchur/")
    # every user message after the first answers the command before it
    assert tools["tool_output"].to_list() == [m["content"] for m in msgs[3::2]]
    # two observations report <returncode>1</returncode> (checked by reading the file)
    codes = [m["content"].startswith("<returncode>1<") for m in msgs[3::2]]
    assert summary["tool_errors"] == sum(codes) == 2


def test_local_sample_and_empty_last_observation():
    msgs = json.loads(LOCAL.read_text())
    _, df, summary = _load(LOCAL)
    assert summary["tool_calls"] == ["bash", "bash"]
    assert df["tool_output"].to_list()[-1] == msgs[-1]["content"] == ""
    assert summary["tokens"]["input"] == 0 and df["ts"].null_count() == df.height


def test_tool_calls_parts_images_and_messages_object(tmp_path):
    msgs = json.loads(LOCAL.read_text())[:2]
    msgs[1]["content"] = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 400}},
    ]
    msgs += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "read", "arguments": '{"path": "a.py"}'}},
                {"id": "c2", "type": "function", "function": {"name": "grep", "arguments": "not json"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c2", "content": "no match"},
        {"role": "tool", "tool_call_id": "c1", "content": "print(1)"},
        {"role": "tool", "tool_call_id": "zz", "content": "orphan"},
    ]
    path = tmp_path / "chat.json"
    path.write_text(
        json.dumps(
            {
                "info": {"config": {"model": {"model_name": "m1"}}},
                "messages": msgs,
                "trajectory_format": "mini-swe-agent-1",
            }
        )
    )
    ctx, df, summary = _load(path)
    assert summary["user_prompts"] == ["look\n[media: image/png, 300 bytes]"]
    assert summary["tool_calls"] == ["read", "grep", "unknown"]
    tools = df.filter(pl.col("role") == "tool")
    assert tools["tool_output"].to_list() == ["print(1)", "no match", "orphan"]
    assert tools["tool_input"][1] == "not json"
    assert tools["source"][0].endswith("#/messages/4")
    assert ctx.sessions["model"][0] == "m1" and ctx.sessions["producer"][0] == "mini-swe-agent"


def test_strict_sniff(tmp_path):
    loose = tmp_path / "loose.json"
    loose.write_text(json.dumps([{"role": "user", "content": "hi"}, {"role": "user"}]))
    assert not openai_messages.sniff(Probe(loose))
    broken = tmp_path / "broken.json"
    broken.write_bytes(LOCAL.read_bytes()[:-40])
    assert not openai_messages.sniff(Probe(broken))
    bad = tmp_path / "bad.json"
    bad.write_bytes(LOCAL.read_bytes().replace(b"dummy", b"du\xffmmy"))
    _, df, _ = _load(bad)
    assert "du\ufffdmmy" in df["text"][2]


@pytest.mark.parametrize("path", [GITHUB, LOCAL], ids=lambda p: p.name[:40])
def test_no_timestamps_are_invented(path):
    """These files record no times: every row's ts stays null rather than a made-up instant (1970 or now)."""
    assert '"timestamp"' not in path.read_text(encoding="utf-8")
    df = rj.load(path).df
    assert df.height > 0 and df["ts"].null_count() == df.height
