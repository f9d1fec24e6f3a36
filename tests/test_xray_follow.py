"""Following a live agent: a recorded Claude Code / Codex session is replayed line by line into a file at a steady
rate by a writer thread (some lines written in two pieces), while the follower watches it. The lag is measured
from the follower's own model (`history`: when each update finished and how many lines it held) against the time
each line's newline was written, not by sleeping and looking."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import polars as pl
import pytest

import rlm_jupyter as rj
from rlm_jupyter.testing.samples import sample_tree
from rlm_jupyter.window.follow import Follower

REC = Path(__file__).parent / "data" / "recorded"
CLAUDE = next((REC / "claude-code" / "current" / "projects").rglob("*.jsonl"))
CODEX = next((REC / "codex" / "sessions").rglob("*.jsonl"))
CODEX_SAMPLE = next((sample_tree() / "codex").glob("rollout-*.jsonl"))


def _replay(
    src: Path,
    dst: Path,
    rate: float,
    written: list[float],
    *,
    split_every: int = 7,
    start: int = 0,
    stop_at: int | None = None,
) -> None:
    """Append `src`'s lines to `dst` at `rate` lines/s; every `split_every`-th line in two writes with a pause."""
    lines = src.read_bytes().splitlines(keepends=True)[start:stop_at]
    t0 = time.monotonic()
    with dst.open("ab", buffering=0) as f:
        for k, line in enumerate(lines):
            due = t0 + k / rate
            time.sleep(max(0.0, due - time.monotonic()))
            if k % split_every == 3 and len(line) > 20:
                f.write(line[: len(line) // 2])
                time.sleep(0.3 / rate)
                f.write(line[len(line) // 2 :])
            else:
                f.write(line)
            written.append(time.monotonic())


def _lags(f: Follower, written: list[float]) -> list[float]:
    hist = list(f.history)
    out = []
    for k, w in enumerate(written, 1):
        done = next((t for t, n in hist if n >= k and t >= w), None)
        out.append(float("inf") if done is None else done - w)
    return out


def _wait(cond, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


@pytest.mark.parametrize(
    "src,watcher",
    [(CLAUDE, "watchfiles"), (CODEX, "watchfiles"), (CODEX, "poll")],
    ids=["claude-watchfiles", "codex-watchfiles", "codex-poll"],
)
def test_view_lags_the_file_by_at_most_a_second_at_50_lines_per_second(tmp_path, src, watcher):
    if watcher == "watchfiles":
        pytest.importorskip("watchfiles")
    dst = tmp_path / src.name
    dst.write_bytes(b"")
    written: list[float] = []
    with Follower(dst, watcher=watcher, interval=0.1) as f:
        assert f.watcher == watcher
        _replay(src, dst, 50.0, written)
        total = len(written)
        assert _wait(lambda: f.lines == total and f.history and f.history[-1][1] == total)
        lags = _lags(f, written)
    print(
        f"\n{src.name} via {watcher}: {len(written)} lines, max lag {max(lags):.2f} s, median "
        f"{sorted(lags)[len(lags) // 2]:.2f} s, {f.updates} updates"
    )
    assert max(lags) <= 1.0, (
        f"max lag {max(lags):.2f} s (median {sorted(lags)[len(lags) // 2]:.2f} s); rebuilds "
        f"{[round(x, 2) for x in f.rebuild_s]}; history {[(round(t - written[0], 2), n) for t, n in f.history]}"
    )
    # the followed view is the X-ray of the finished file: same turns, sizes and events
    want = rj.xray(rj.load(src))
    got = f.xray
    assert got.turns.select("turn", "id", "context_tokens", "window_tokens").equals(
        want.turns.select("turn", "id", "context_tokens", "window_tokens")
    )
    assert got.events.select("kind", "turn", "removed_messages").equals(
        want.events.select("kind", "turn", "removed_messages")
    )
    assert not f.running and not f._tmp.exists()
    assert all(not t.is_alive() for t in f._threads)


def test_a_partial_last_line_waits_for_its_end(tmp_path):
    lines = CODEX.read_bytes().splitlines(keepends=True)
    dst = tmp_path / CODEX.name
    dst.write_bytes(b"".join(lines[:40]))
    with Follower(dst, watcher="poll", interval=0.05) as f:
        assert f.lines == 40
        turns = f.xray.turns.height
        half = lines[40][: len(lines[40]) // 2]
        with dst.open("ab") as out:
            out.write(half)
        assert _wait(lambda: f.pending_bytes == len(half))
        assert f.lines == 40 and "partial last line" in f.status()
        assert not any(n.kind == "unreadable" for n in f.notices)
        with dst.open("ab") as out:
            out.write(lines[40][len(half) :] + b"".join(lines[41:80]))
        assert _wait(lambda: f.lines == 80 and f.pending_bytes == 0)
        assert _wait(lambda: f.xray.turns.height > turns)


def test_truncated_and_replaced_files_are_reread_and_said(tmp_path):
    lines = CLAUDE.read_bytes().splitlines(keepends=True)
    dst = tmp_path / CLAUDE.name
    dst.write_bytes(b"".join(lines))
    with Follower(dst, watcher="poll", interval=0.05) as f:
        full = f.xray.turns.height
        assert f.lines == len(lines) and not f.notices
        # truncated: the agent (or a user) cut the file; the follower starts over and says so
        with dst.open("r+b") as out:
            out.truncate(0)
            out.write(b"".join(lines[:60]))
        assert _wait(lambda: f.lines == 60 and f.history[-1][1] == 60)
        assert any(n.kind == "truncated" for n in f.notices)
        assert f.xray.turns.height < full
        assert "truncated" in repr(f) and "truncated" in f._repr_html_()
        # replaced: another session file moved over it (new inode); the follower re-reads it
        other = tmp_path / "other.jsonl"
        shutil.copyfile(CODEX, other)
        os.replace(other, dst)
        assert _wait(lambda: any(n.kind == "replaced" for n in f.notices))
        assert _wait(lambda: f.xray is not None and f.xray.format == "codex")
        assert f.lines == len(CODEX.read_bytes().splitlines())
        # gone: the last view stays, marked
        dst.unlink()
        assert _wait(lambda: any(n.kind == "missing" for n in f.notices))
        assert f.xray is not None


def test_a_folder_follows_the_newest_session_and_says_when_it_switches(tmp_path):
    shutil.copyfile(CLAUDE, tmp_path / CLAUDE.name)
    with Follower(tmp_path, watcher="poll", interval=0.05) as f:
        assert f.xray.format == "claude"
        time.sleep(0.05)  # a later mtime than the first file
        dst = tmp_path / CODEX.name
        written: list[float] = []
        _replay(CODEX, dst, 200.0, written, stop_at=50)
        assert _wait(lambda: f.xray is not None and f.xray.format == "codex" and f.lines == 50)
        assert any(n.kind == "rotated" and CODEX.name in n.text for n in f.notices)


def test_rj_xray_follow_and_the_magic(tmp_path):
    from IPython.core.interactiveshell import InteractiveShell

    from rlm_jupyter.window.magic import run

    dst = tmp_path / CODEX_SAMPLE.name
    dst.write_bytes(b"".join(CODEX_SAMPLE.read_bytes().splitlines(keepends=True)[:100]))
    f = rj.xray(dst, follow=True, watcher="poll", interval=0.05)
    try:
        assert isinstance(f, Follower) and f.xray.turns.height > 0
        html = f._repr_html_()
        assert "window at turn" in html and "following" in html
    finally:
        f.stop()
    assert "stopped" in f.status() and "stopped" in repr(f)
    with pytest.raises(TypeError, match="only apply with follow=True"):
        rj.xray(rj.load(CODEX_SAMPLE), interval=1)
    shell = InteractiveShell.instance()
    try:
        g = run(shell, f"--follow {dst}")
        assert shell.user_ns["_rlm_xray_follow"] is g and g.running and g.xray is not None
        h = run(shell, f"--follow {dst}")  # a second follow stops the first
        assert not g.running and h.running
        h.stop()
        from IPython.core.error import UsageError

        with pytest.raises(UsageError, match="does not exist"):
            run(shell, f"--follow {tmp_path / 'nope.jsonl'}")
    finally:
        for x in ("g", "h"):
            if x in locals():
                locals()[x].stop()


def test_the_followed_window_matches_a_fresh_load_midway(tmp_path):
    """Midway through, the view is the X-ray of exactly the complete lines written so far."""
    lines = CODEX_SAMPLE.read_bytes().splitlines(keepends=True)
    dst = tmp_path / CODEX_SAMPLE.name
    dst.write_bytes(b"".join(lines[:150]) + lines[150][:30])
    with Follower(dst, watcher="poll", interval=0.05) as f:
        ref = tmp_path / "ref" / CODEX_SAMPLE.name
        ref.parent.mkdir()
        ref.write_bytes(b"".join(lines[:150]))
        want = rj.xray(rj.load(ref))
        assert f.lines == 150
        assert f.xray.window(-1).ids == want.window(-1).ids
        assert f.xray.turns["window_tokens"].to_list() == want.turns["window_tokens"].to_list()
        assert pl.Series(f.xray.turns["id"]).to_list() == want.turns["id"].to_list()


def test_a_one_off_xray_of_a_file_still_being_written_says_so(tmp_path):
    lines = CODEX.read_bytes().splitlines(keepends=True)
    dst = tmp_path / CODEX.name
    dst.write_bytes(b"".join(lines[:60]) + lines[60][:25])
    xr = rj.xray(rj.load(dst))
    assert any("partial line" in n and "follow=True" in n for n in xr.notes)
    dst.write_bytes(b"".join(lines[:60]))
    assert not any("partial line" in n for n in rj.xray(rj.load(dst)).notes)


def test_the_view_updates_in_a_real_kernel(tmp_path):
    """A real ipykernel (nbclient): `%rlm_xray --follow` displays the view; lines written later (by the next cell)
    reach that same output through its display id, redrawn by the follower's render thread, and stop() marks it."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    lines = CODEX.read_bytes().splitlines(keepends=True)
    dst = tmp_path / CODEX.name
    dst.write_bytes(b"".join(lines[:40]))
    rest = tmp_path / "rest.jsonl"
    rest.write_bytes(b"".join(lines[40:]))
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(c)
        for c in (
            "%load_ext rlm_jupyter",
            f"%rlm_xray --follow {dst}",
            "import time\nf = _rlm_xray_follow\n"
            f"with open({str(dst)!r}, 'ab') as out:\n    out.write(open({str(rest)!r}, 'rb').read())\n"
            f"t = time.monotonic()\nwhile f.lines < {len(lines)} and time.monotonic() - t < 20:\n    time.sleep(0.05)\n"
            "time.sleep(1.0)\nf.stop()\ntime.sleep(1.0)\nprint(f.lines, f.xray.turns.height)",
        )
    ]
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    want = rj.xray(rj.load(CODEX))
    assert nb.cells[2].outputs[0]["text"].split() == [str(len(lines)), str(want.turns.height)]
    view = [o for o in nb.cells[1].outputs if o.get("output_type") == "display_data"]
    assert len(view) == 1
    text, html = view[0]["data"]["text/plain"], view[0]["data"]["text/html"]
    assert f"{len(lines):,} lines" in text and "stopped" in text  # the updated, final state, not the first one
    assert f"{want.turns.height} turns" in text and "window at turn" in html
