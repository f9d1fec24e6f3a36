"""The load driver across formats: sniffing, reports, duplicates, clear errors, the CLI and discovery."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rlm_jupyter as rj
from rlm_jupyter.cli import main as cli_main
from rlm_jupyter.sessions import UnknownFormatError

EXPECTED_FORMAT = {
    "claude-code": "claude",
    "codex": "codex",
    "opencode-export": "opencode",
    "gemini": "gemini",
    "swe-agent": "swe-agent",
    "openhands": "openhands",
    "openai-messages": "openai-messages",
}

SUMMARY_KEYS = {
    "format",
    "producer_version",
    "session_id",
    "title",
    "messages",
    "user_prompts",
    "tool_calls",
    "tool_errors",
    "subagents",
    "compactions",
    "malformed_lines",
    "tokens",
}


def _sample_files(samples: Path) -> list[Path]:
    return sorted(p for p in samples.rglob("*") if p.is_file() and p.name != "SOURCES.md" and "rlm-logs" not in p.parts)


def test_every_sample_file_is_sniffed_as_its_format(samples):
    ctx = rj.load(samples)
    by_path = {Path(f.path).resolve(): f for f in ctx.report.files}
    for path in _sample_files(samples):
        report = by_path.get(path.resolve())
        assert report is not None, f"{path} was not read"
        assert report.format == EXPECTED_FORMAT[path.relative_to(samples).parts[0]], path
        assert report.records_kept > 0 or report.sessions == [], path
    assert not ctx.report.skipped, ctx.report.skipped  # the real samples have no malformed lines


def test_one_table_for_all_formats(samples):
    ctx = rj.load(samples)
    df = ctx.df
    assert set(df["role"].unique()) <= {"user", "assistant", "system", "tool"}
    assert set(df["origin"].unique()) <= {"human", "harness", "model", "tool", "summary"}
    assert set(df["boundary"].drop_nulls().unique()) <= {"compaction", "summary", "rewind", "fork"}
    assert set(df["tool_status"].drop_nulls().unique()) <= {"ok", "error"}
    assert df["id"].n_unique() == df.height, "message ids must be unique across the loaded sessions"
    assert set(ctx.sessions["format"].unique()) == set(EXPECTED_FORMAT.values())
    # seq is the order inside each session, from 0 without gaps
    for sid, part in df.group_by("session_id"):
        assert part["seq"].sort().to_list() == list(range(part.height)), sid


def test_unknown_file_gets_a_clear_error(tmp_path):
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": "world", "items": [1, 2]}')
    with pytest.raises(UnknownFormatError) as err:
        rj.load(bad)
    msg = str(err.value)
    assert "keys [hello, items]" in msg and "Claude Code" in msg and "Codex" in msg


def test_missing_path_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="rj.discover"):
        rj.load(tmp_path / "nope.jsonl")


def test_unknown_files_inside_a_folder_are_noted_not_fatal(tmp_path, samples):
    shutil.copy(samples / "codex" / "SYNTHETIC-agent-sessions-record-catalog.jsonl", tmp_path / "a.jsonl")
    (tmp_path / "b.json").write_text("[1, 2, 3]")
    ctx = rj.load(tmp_path)
    assert ctx.df.height > 0
    assert any("b.json" in n and "not a known session format" in n for n in ctx.report.notes)


def test_same_session_reached_twice_is_loaded_once(tmp_path, samples):
    src = samples / "opencode-export" / "session__jolly-eagle__ses_39b5d713cffeRgAoxPIwS3Plus.json"
    copy = tmp_path / "copy-of-jolly.json"
    shutil.copy(src, copy)
    alone = rj.load(src)
    both = rj.load(src, copy, src)
    assert both.df.height == alone.df.height
    assert both.sessions.height == 1
    dups = [i for i in both.report.issues if i.kind == "duplicate"]
    assert len(dups) == 1 and "copy-of-jolly.json" in dups[0].path


def test_inspect_json_keys_are_stable(samples, capsysbinary):
    assert cli_main(["inspect", str(samples / "codex"), "--json"]) == 0
    out = json.loads(capsysbinary.readouterr().out)
    assert out["sessions"], "no sessions"
    for s in out["sessions"]:
        assert set(s) >= SUMMARY_KEYS, SUMMARY_KEYS - set(s)
        assert set(s["tokens"]) == {"input", "output", "cache_read", "cache_write", "reasoning"}
        assert all(isinstance(p, str) for p in s["user_prompts"])
        assert all(isinstance(t, str) for t in s["tool_calls"])


def test_inspect_cli_process_reports_bad_path_in_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "rlm_jupyter.cli", "inspect", str(tmp_path / "missing")], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no such file or folder" in proc.stderr


def test_import_is_light():
    code = (
        "import sys, rlm_jupyter; "
        "print(sorted(m for m in ('polars', 'litellm', 'torch', 'IPython') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_bundled_samples_load(samples):
    ctx = rj.load(rj.samples())
    assert ctx.sessions.height >= 7
    assert not ctx.report.skipped


def test_discover_finds_sessions_in_the_usual_places(tmp_path, samples, monkeypatch):
    for var in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(var, raising=False)
    claude = tmp_path / ".claude" / "projects" / "-tmp-private"
    codex = tmp_path / ".codex" / "sessions" / "2026" / "05" / "11"
    gemini = tmp_path / ".gemini" / "tmp" / "5b959dae" / "chats"
    for d in (claude, codex, gemini):
        d.mkdir(parents=True)
    shutil.copy(
        samples / "claude-code" / "codemie-4c2ddfdc-b619-4525-8d03-1950fb1b0257.jsonl",
        claude / "4c2ddfdc-b619-4525-8d03-1950fb1b0257.jsonl",
    )
    rollout = "rollout-2026-05-11T11-26-55-019e1625-789d-76c0-80ab-3724b5ddb799.jsonl"
    shutil.copy(samples / "codex" / rollout, codex / rollout)
    name = "session-2025-12-01T21-45-5b959dae.json"
    shutil.copy(samples / "gemini" / name, gemini / name)

    found = rj.discover(tmp_path)
    assert sorted(found["format"].to_list()) == ["claude", "codex", "gemini"]
    # what discover finds, load reads
    ctx = rj.load(found["path"].to_list())
    assert sorted(ctx.sessions["format"].to_list()) == ["claude", "codex", "gemini"]
