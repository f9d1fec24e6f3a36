"""Loading many files at once: pool == serial, sub-agents through one index (the quadratic case), bad files in a
store reported with path and why while the rest loads."""

from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path

import polars as pl
import pytest

import rlm_jupyter as rj
from rlm_jupyter.sessions import corpus, read_sessions, tables
from rlm_jupyter.sessions.formats import claude
from rlm_jupyter.testing.samples import sample_tree

SAMPLES = sample_tree()
MAIN = SAMPLES / "claude-code" / "codemie-4c2ddfdc-b619-4525-8d03-1950fb1b0257.jsonl"
SID = "4c2ddfdc-b619-4525-8d03-1950fb1b0257"
AGENT = SAMPLES / "claude-code" / "codemie-legacy-agent-50243ee8.jsonl"
CODEX = SAMPLES / "codex" / "rollout-2026-05-11T11-26-55-019e1625-789d-76c0-80ab-3724b5ddb799.jsonl"
CODEX_SID = "019e1625-789d-76c0-80ab-3724b5ddb799"
_UUID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
_PROVIDER = re.compile(r"\b(msg_|toolu_|call_)([A-Za-z0-9_-]{6,})")


def remapped(text: str, n: int) -> str:
    """The same records with every id remapped for copy `n` (chains still hold): a real-shaped new session."""
    tag = f"{n:08x}"
    text = _UUID.sub(lambda m: tag + m.group(1), text)
    return _PROVIDER.sub(lambda m: m.group(1) + tag + m.group(2), text)


def main_copy(folder: Path, n: int) -> tuple[Path, str]:
    text = remapped(MAIN.read_text(encoding="utf-8"), n)
    sid = remapped(SID, n)
    path = folder / f"{sid}.jsonl"
    path.write_text(text, encoding="utf-8")
    return path, sid


def agent_copy(folder: Path, n: int, parent_sid: str) -> Path:
    text = remapped(AGENT.read_text(encoding="utf-8"), n).replace(remapped(SID, n), parent_sid)
    text = text.replace('"agentId":"50243ee8"', f'"agentId":"a{n:07x}"')
    path = folder / f"agent-a{n:07x}.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def store(tmp_path) -> Path:
    """Claude and Codex sessions with sub-agents, a duplicate session, an unknown file and a malformed line."""
    root = tmp_path / "store"
    claude_dir = root / "claude"
    codex_dir = root / "codex" / "2026" / "05"
    claude_dir.mkdir(parents=True)
    codex_dir.mkdir(parents=True)
    for n in range(12):
        _, sid = main_copy(claude_dir, n)
        agent_copy(claude_dir, n, sid)
    for n in range(6):
        (codex_dir / f"rollout-{n}.jsonl").write_text(remapped(CODEX.read_text(encoding="utf-8"), n), encoding="utf-8")
    shutil.copy(claude_dir / f"{remapped(SID, 3)}.jsonl", root / "copy-of-3.jsonl")  # the same session again
    (root / "notes.json").write_text('{"hello": 1}')
    bad = claude_dir / f"{remapped(SID, 5)}.jsonl"
    bad.write_text(bad.read_text(encoding="utf-8") + "{not json\n", encoding="utf-8")
    return root


def _same(a, b) -> None:
    assert a.df.equals(b.df)
    assert a.sessions.equals(b.sessions)
    assert a.report.to_dict() == b.report.to_dict()


def test_pool_and_serial_loads_give_the_same_table_and_report(store, cache_dir, monkeypatch):
    serial = rj.load(store, cache=False, workers=1, progress=False)
    assert serial.sessions.height == 12 * 2 + 6
    assert serial.df["id"].n_unique() == serial.df.height
    assert any("notes.json" in n for n in serial.report.notes)
    assert [i.kind for i in serial.report.issues].count("duplicate") == 1
    assert any(i.kind == "malformed" and i.line is not None for i in serial.report.issues)

    monkeypatch.setattr(corpus, "POOL_MIN_BYTES", 0)  # the store is small: make the pool run anyway
    monkeypatch.setattr(corpus, "BATCH_BYTES", 64 << 10)
    pooled = rj.load(store, cache=False, workers=2, progress=False)
    _same(serial, pooled)
    pooled_cached = rj.load(store, workers=2, progress=False)  # workers write packs, the parent maps them
    _same(serial, pooled_cached)
    reopened = rj.load(store, workers=2, progress=False)
    _same(serial, reopened)

    # and the same as the one-session-at-a-time reader the table used to be built from
    sessions, report = read_sessions([store])
    assert tables.messages_frame(sessions).equals(serial.df)
    assert report.to_dict() == serial.report.to_dict()


def test_repeated_message_ids_are_renamed_across_files_as_before(tmp_path, cache_dir):
    # the same records under two session ids: every message id repeats in the second file
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(MAIN, src / "a.jsonl")
    (src / "b.jsonl").write_text(MAIN.read_text(encoding="utf-8").replace(SID, "other-session"), encoding="utf-8")
    ctx = rj.load(src, progress=False)
    assert ctx.df["id"].n_unique() == ctx.df.height
    renamed = ctx.df.filter(pl.col("id").str.contains("@other-session#"))
    assert renamed.height == ctx.df.filter(pl.col("session_id") == "other-session").height
    sessions, report = read_sessions([src])
    assert tables.messages_frame(sessions).equals(ctx.df)
    assert report.to_dict() == ctx.report.to_dict()
    again = rj.load(src, progress=False)  # from the cache: renamed again the same way
    assert again.df.equals(ctx.df) and again.report.to_dict() == ctx.report.to_dict()


def test_two_thousand_sessions_with_two_thousand_agent_files_beside_them(tmp_path, cache_dir, monkeypatch):
    """The quadratic case: every main file used to glob the folder and re-read every agent file's head."""
    folder = tmp_path / "project"
    folder.mkdir()
    mains = []
    for n in range(2000):
        path, sid = main_copy(folder, n)
        agent_copy(folder, n, sid)
        mains.append(path)

    heads = []
    real_read_head = claude.read_head
    monkeypatch.setattr(claude, "read_head", lambda p, *a: heads.append(p) or real_read_head(p, *a))
    ctx = rj.load(mains, cache=False, progress=False)  # main files named one by one, as %rlm_load does
    assert len(heads) <= 2000 + 2000, "each main and each agent head read once, not once per main file"
    s = ctx.sessions
    assert s.height == 4000
    children = s.filter(pl.col("parent_session_id").is_not_null())
    assert children.height == 2000
    assert set(children["parent_session_id"]) == set(s.filter(pl.col("parent_session_id").is_null())["session_id"])
    for row in children.head(50).iter_rows(named=True):  # each agent found beside the right parent
        assert row["session_id"].startswith(row["parent_session_id"] + ":agent-")

    heads.clear()
    whole = rj.load(folder, cache=False, progress=False)  # the folder: listed once, nothing related to look up
    assert len(heads) == 0
    assert whole.sessions.height == 4000
    assert whole.df.height == ctx.df.height


class _Timeout(Exception):
    pass


@pytest.fixture
def no_hang():
    def fail(*_):
        raise _Timeout("the load blocked (opened a named pipe?)")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_bad_files_in_a_store_are_reported_with_path_and_why_and_the_rest_loads(tmp_path, cache_dir, no_hang):
    folder = tmp_path / "store"
    folder.mkdir()
    good = [main_copy(folder, n)[0] for n in range(3)]
    (folder / "broken.jsonl").symlink_to(folder / "gone.jsonl")
    (folder / "loop-a.jsonl").symlink_to(folder / "loop-b.jsonl")
    (folder / "loop-b.jsonl").symlink_to(folder / "loop-a.jsonl")
    os.mkfifo(folder / "pipe.jsonl")
    os.mkfifo(folder / "agent-pipe.jsonl")  # named like a sub-agent file: the related index must not open it either
    cut = folder / "being-written.jsonl"
    text = remapped(MAIN.read_text(encoding="utf-8"), 99)
    cut.write_text(text[: len(text) - 200], encoding="utf-8")  # the agent is still writing its last line
    locked = folder / "locked.jsonl"
    shutil.copy(good[0], locked)
    locked.chmod(0)

    ctx = rj.load(folder, progress=False)
    by_path = {Path(f.path).name: f for f in ctx.report.files}
    why = {name: " ".join(i.reason for i in f.issues) for name, f in by_path.items()}
    assert "broken symbolic link" in why["broken.jsonl"] and "gone.jsonl" in why["broken.jsonl"]
    assert "loop-a.jsonl" in why and "cannot be read" in why["loop-a.jsonl"]
    assert "named pipe" in why["pipe.jsonl"] and "named pipe" in why["agent-pipe.jsonl"]
    assert any(i.kind == "truncated" for i in by_path["being-written.jsonl"].issues)
    assert by_path["being-written.jsonl"].records_kept > 0  # what was complete is kept
    if os.geteuid() != 0:  # root reads any file
        assert "permission denied" in why["locked.jsonl"]
    for f in ctx.report.files:
        if f.format is None:
            assert all(i.kind == "unreadable" and i.path == f.path for i in f.issues)
    assert {Path(f.path).name for f in ctx.report.files if f.sessions} >= {p.name for p in good}
    assert "unreadable" in ctx.report.summary()
    locked.chmod(0o600)


def test_files_replaced_between_listing_and_reading(tmp_path, cache_dir, monkeypatch, no_hang):
    folder = tmp_path / "store"
    folder.mkdir()
    paths = [main_copy(folder, n)[0] for n in range(4)]
    real_plan = corpus.plan

    def plan_then_change(p, index=None):
        out = real_plan(p, index)
        paths[0].unlink()  # deleted after the listing
        paths[1].unlink()
        os.mkfifo(paths[1])  # replaced by a named pipe
        paths[2].write_text(remapped(MAIN.read_text(encoding="utf-8"), 77), encoding="utf-8")  # new content
        return out

    monkeypatch.setattr(corpus, "plan", plan_then_change)
    ctx = rj.load(folder, progress=False)
    by_path = {Path(f.path).name: f for f in ctx.report.files}
    assert "vanished" in by_path[paths[0].name].issues[0].reason
    assert "named pipe" in by_path[paths[1].name].issues[0].reason
    assert by_path[paths[2].name].sessions == [remapped(SID, 77)]  # read as it is now
    assert by_path[paths[3].name].sessions == [remapped(SID, 3)]


def test_a_file_that_changes_while_read_is_loaded_but_not_cached(tmp_path, cache_dir, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    path, _ = main_copy(src, 1)
    real_read = claude.read

    def read_and_append(p, report):
        out = real_read(p, report)
        with open(p, "a", encoding="utf-8") as fh:
            fh.write("\n")  # the agent appends while we read
        return out

    monkeypatch.setattr(claude, "read", read_and_append)
    ctx = rj.load(path, progress=False)
    assert any("changed while it was being read" in i.reason for i in ctx.report.issues)
    from rlm_jupyter.sessions import cache

    assert cache.info(cache.root())["files"] == 0


def test_progress_bar_is_silent_for_quick_loads_and_counts_files_mb_and_sessions(store, cache_dir, capsys, monkeypatch):
    rj.load(store, cache=False, progress=True)
    assert capsys.readouterr().err == ""  # under a second: nothing shown
    from rlm_jupyter.sessions import progress

    monkeypatch.setattr(progress, "DELAY_S", 0)
    rj.load(store, cache=False, progress=True)
    err = capsys.readouterr().err
    assert "loading" in err and "files" in err and "sessions" in err and "B" in err


def test_a_loader_crash_on_one_file_costs_only_that_file(tmp_path, cache_dir, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    paths = [main_copy(src, n)[0] for n in range(3)]
    real_read = claude.read

    def crash_on_second(p, report):
        if Path(p) == paths[1]:
            raise KeyError("usage")
        return real_read(p, report)

    monkeypatch.setattr(claude, "read", crash_on_second)
    ctx = rj.load(src, cache=False, progress=False)
    assert ctx.sessions.height == 2
    (issue,) = [i for i in ctx.report.issues if i.path == str(paths[1])]
    assert "claude loader failed (KeyError" in issue.reason


def test_a_worker_that_dies_leaves_the_load_to_this_process(store, cache_dir, monkeypatch):
    from concurrent.futures.process import BrokenProcessPool

    from rlm_jupyter.sessions import pool

    serial = rj.load(store, cache=False, workers=1, progress=False)
    calls = []

    def dying(fn, chunks, workers, on_done):
        on_done(0, fn(*chunks[0]))  # the first batch made it, then a worker was killed
        calls.append(len(chunks))
        raise BrokenProcessPool("a child process terminated abruptly")

    monkeypatch.setattr(pool, "run", dying)
    monkeypatch.setattr(corpus, "POOL_MIN_BYTES", 0)
    monkeypatch.setattr(corpus, "BATCH_BYTES", 64 << 10)
    with pytest.warns(RuntimeWarning, match="worker processes failed"):
        ctx = rj.load(store, cache=False, workers=2, progress=False)
    assert calls and calls[0] > 1
    _same(serial, ctx)
