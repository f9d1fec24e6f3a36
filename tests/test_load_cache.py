"""The load cache: reopen reads only the cache; grow, delete, touch, corrupt, foreign and loader-version changes are
each handled as docs/sessions.md says; an unusable cache falls back with one warning; rj.scan; `cache info|clear`."""

from __future__ import annotations

import errno
import json
import os
import shutil
import warnings
from pathlib import Path

import polars as pl
import pytest
from test_load_corpus import CODEX, MAIN, SID, main_copy, remapped

import rlm_jupyter as rj
from rlm_jupyter.cli import main as cli_main
from rlm_jupyter.sessions import cache, corpus
from rlm_jupyter.sessions.formats import claude, codex


@pytest.fixture
def store(tmp_path) -> Path:
    root = tmp_path / "store"
    (root / "codex").mkdir(parents=True)
    for n in range(5):
        main_copy(root, n)
    for n in range(2):
        (root / "codex" / f"rollout-{n}.jsonl").write_text(
            remapped(CODEX.read_text(encoding="utf-8"), n), encoding="utf-8"
        )
    return root


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The files a format loader actually parsed (the cache hands the others over without reading them)."""
    seen: list[str] = []
    for mod in (claude, codex):
        real = mod.read
        monkeypatch.setattr(mod, "read", lambda p, r, _real=real: seen.append(Path(p).name) or _real(p, r))
    return seen


def load(store):
    return rj.load(store, workers=1, progress=False)


def plain(store):
    return rj.load(store, cache=False, workers=1, progress=False)


def same(a, b) -> None:
    assert a.df.equals(b.df)
    assert a.sessions.equals(b.sessions)
    assert a.report.to_dict() == b.report.to_dict()


def test_reopening_an_unchanged_store_reads_only_the_cache(store, cache_dir, reads):
    first = load(store)
    assert len(reads) == 7
    reads.clear()
    again = load(store)
    assert reads == []
    same(first, again)
    same(first, plain(store))
    info = cache.info()
    assert info["files"] == 7 and info["rows"] == first.df.height and info["invalid_packs"] == 0


def test_a_grown_file_is_read_again_alone(store, cache_dir, reads):
    first = load(store)
    grown = store / f"{remapped(SID, 2)}.jsonl"
    # new records (fresh ids) of the same session, as the agent appends them
    extra = remapped(MAIN.read_text(encoding="utf-8"), 0x55).replace(remapped(SID, 0x55), remapped(SID, 2))
    with open(grown, "a", encoding="utf-8") as fh:
        fh.write(extra)
    reads.clear()
    after = load(store)
    assert reads == [grown.name]
    assert after.df.height > first.df.height
    assert after.sessions.height == first.sessions.height
    same(after, plain(store))
    reads.clear()
    load(store)
    assert reads == []  # the new content is cached too


def test_a_deleted_file_drops_its_rows(store, cache_dir, reads):
    first = load(store)
    gone = store / f"{remapped(SID, 1)}.jsonl"
    gone.unlink()
    reads.clear()
    after = load(store)
    assert reads == []
    assert remapped(SID, 1) not in after.sessions["session_id"].to_list()
    assert after.df.height == first.df.height - first.df.filter(pl.col("session_id") == remapped(SID, 1)).height
    same(after, plain(store))


def test_a_touched_file_is_read_again(store, cache_dir, reads):
    first = load(store)
    touched = store / "codex" / "rollout-1.jsonl"
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    reads.clear()
    after = load(store)
    assert reads == [touched.name]
    same(first, after)


def test_a_same_size_rewrite_within_the_same_mtime_is_caught(store, cache_dir, reads):
    """Coarse file clocks: an agent rewrites a file just read, same size, same mtime. Fresh files keep a hash."""
    load(store)
    victim = store / f"{remapped(SID, 4)}.jsonl"
    st = victim.stat()
    text = victim.read_text(encoding="utf-8")
    assert "three simple files" in text
    victim.write_text(text.replace("three simple files", "three simple filez", 1), encoding="utf-8")
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert victim.stat().st_size == st.st_size and victim.stat().st_mtime_ns == st.st_mtime_ns
    reads.clear()
    after = load(store)
    assert reads == [victim.name]
    texts = after.df.filter(pl.col("session_id") == remapped(SID, 4))["text"].drop_nulls().to_list()
    assert any("three simple filez" in t for t in texts)


def _packs(cache_dir: Path) -> list[Path]:
    return sorted((cache.root(cache_dir) / "packs").glob("*.arrow"))


@pytest.mark.parametrize("damage", ["garbage", "cut", "manifest", "foreign manifest", "rows"])
def test_a_corrupt_or_foreign_cache_entry_is_ignored_and_rebuilt(store, cache_dir, reads, damage):
    first = load(store)
    (arrow,) = _packs(cache_dir)
    manifest = arrow.with_suffix(".json")
    if damage == "garbage":  # same size, other bytes: the size check passes, reading must not
        arrow.write_bytes(os.urandom(arrow.stat().st_size))
    elif damage == "cut":
        arrow.write_bytes(arrow.read_bytes()[:1000])
    elif damage == "manifest":
        manifest.write_text(manifest.read_text()[:-40])
    elif damage == "foreign manifest":
        manifest.write_text(json.dumps({"format": "something else", "files": []}))
    elif damage == "rows":  # a well-formed manifest that lies about the rows
        man = json.loads(manifest.read_text())
        man["rows"] += 1
        manifest.write_text(json.dumps(man))
    reads.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilt quietly: a damaged cache is not the user's problem
        after = load(store)
    assert sorted(reads) == sorted(Path(f.path).name for f in first.report.files)
    same(first, after)
    assert not arrow.exists() and not manifest.exists()  # the bad pack is deleted, a new one holds the rows
    reads.clear()
    same(first, load(store))
    assert reads == []


def test_foreign_files_in_the_cache_folder_are_ignored(store, cache_dir, reads):
    first = load(store)
    packs = cache.root(cache_dir) / "packs"
    (packs / "stray.json").write_text("[1, 2]")
    (packs / "stray.arrow").write_bytes(b"not arrow")
    reads.clear()
    same(first, load(store))
    assert reads == []


def test_a_manifest_keeps_what_orjson_refuses_to_write(store, cache_dir, monkeypatch, reads):
    """Manifests are written with orjson; a value it refuses (an integer beyond 64 bits that a record carried into a
    session's `extra`) falls back to json, and the store still reopens from the cache alone."""
    counted = claude.read  # the `reads` fixture's recorder

    def big_extra(path, report):
        sessions = counted(path, report)
        for s in sessions:
            s.extra["observed"] = 2**70  # not a table column: it rides in the manifest only
        return sessions

    monkeypatch.setattr(claude, "read", big_extra)
    first = load(store)
    manifests = list((cache.root(cache_dir) / "packs").glob("*.json"))
    assert manifests and any(str(2**70) in m.read_text() for m in manifests)
    reads.clear()
    same(first, load(store))
    assert reads == []  # every manifest was whole and trusted: nothing read again


def test_a_new_loader_or_format_version_rebuilds(store, cache_dir, reads, monkeypatch):
    first = load(store)
    monkeypatch.setattr(claude, "VERSION", 99, raising=False)  # the Claude loader changed
    cache.format_version.cache_clear()
    reads.clear()
    same(first, load(store))
    assert sorted(reads) == sorted(p.name for p in store.glob("*.jsonl"))  # Claude files only
    monkeypatch.setattr(cache, "LOADER_VERSION", "test-next")  # the shared reading code changed
    cache.loader_version.cache_clear()
    reads.clear()
    same(first, load(store))
    assert len(reads) == 7
    cache.loader_version.cache_clear()
    cache.format_version.cache_clear()


def test_cache_false_writes_nothing(store, cache_dir, reads):
    plain(store)
    assert not cache_dir.exists()


def test_an_unusable_cache_folder_falls_back_with_one_warning(store, tmp_path, monkeypatch, reads):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("RLM_JUPYTER_CACHE", str(blocker))
    with pytest.warns(RuntimeWarning) as caught:
        ctx = load(store)
    assert len([w for w in caught if "load cache" in str(w.message)]) == 1
    assert "cannot be written" in str(caught[0].message) and "RLM_JUPYTER_CACHE" in str(caught[0].message)
    same(ctx, plain(store))


def test_a_full_disk_falls_back_with_one_warning(store, cache_dir, monkeypatch):
    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache, "write_pack", full)
    monkeypatch.setattr(corpus, "SERIAL_BATCH_BYTES", 1)  # one batch per file: seven failed writes
    with pytest.warns(RuntimeWarning) as caught:
        ctx = load(store)
    msgs = [str(w.message) for w in caught if "load cache" in str(w.message)]
    assert len(msgs) == 1 and "No space left" in msgs[0]
    same(ctx, plain(store))


def test_scan_gives_a_lazy_frame_with_the_columns_of_df(store, cache_dir):
    ctx = plain(store)
    lf = rj.scan(store, progress=False)
    assert isinstance(lf, pl.LazyFrame)
    assert lf.collect_schema() == ctx.df.schema
    assert lf.collect().equals(ctx.df)
    tools = lf.filter(pl.col("role") == "tool").select("session_id", "tool_name").collect()
    assert tools.equals(ctx.df.filter(pl.col("role") == "tool").select("session_id", "tool_name"))
    small = rj.Context.from_frame(lf.filter(pl.col("session_id") == remapped(SID, 0)).collect())
    assert small.sessions.height == 1


def test_cli_cache_info_and_clear(store, cache_dir, capsys):
    load(store)
    assert cli_main(["cache", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["files"] == 7 and info["bytes"] > 0 and info["folder"] == str(cache.root())
    assert cli_main(["cache", "clear"]) == 0
    assert "freed" in capsys.readouterr().out
    assert cache.info()["files"] == 0
    shutil.rmtree(cache_dir, ignore_errors=True)


def test_rlm_load_without_a_path_offers_the_discovered_sessions(tmp_path, cache_dir, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    for var in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(var, raising=False)
    project = tmp_path / "home" / ".claude" / "projects" / "-work-repo"
    project.mkdir(parents=True)
    paths = [main_copy(project, n)[0] for n in range(3)]
    for i, p in enumerate(paths):  # newest first: copy 2, 1, 0
        os.utime(p, (1_700_000_000 + i, 1_700_000_000 + i))
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "rlm_jupyter")
    home = tmp_path / "home"
    with capture_output() as cap:
        ip.run_cell(f"%rlm_load --home {home} --name offered")
    assert "3 session(s) found" in cap.stdout and "--pick" in cap.stdout
    assert "offered" not in ip.user_ns  # nothing loaded until the user picks
    ip.run_cell(f"%rlm_load --home {home} --pick 0 2 --name picked")
    assert sorted(ip.user_ns["picked"].sessions["session_id"]) == sorted([remapped(SID, 2), remapped(SID, 0)])
    ip.run_cell(f"%rlm_load --home {home} --newest 1 --name newest")
    assert ip.user_ns["newest"].sessions["session_id"].to_list() == [remapped(SID, 2)]
    with capture_output() as cap:
        ip.run_cell(f"%rlm_load --home {home} --pick 7")
    assert "outside the 3 session(s)" in cap.stderr


def test_leftovers_of_a_killed_load_are_removed_after_an_hour(store, cache_dir):
    load(store)
    packs = cache.root(cache_dir) / "packs"
    old_tmp = packs / ".deadbeef-1234.arrow"
    old_arrow = packs / "deadbeef-5678.arrow"  # no manifest: its load never finished
    young = packs / ".cafe-0000.arrow"  # another load writing right now
    for p in (old_tmp, old_arrow, young):
        p.write_bytes(b"partial")
    for p in (old_tmp, old_arrow):
        os.utime(p, (1_000_000_000, 1_000_000_000))
    (store / "codex" / "rollout-0.jsonl").touch()  # something to re-read, so the load writes and tidies
    load(store)
    assert not old_tmp.exists() and not old_arrow.exists()
    assert young.exists()


def test_a_named_file_reopened_from_the_cache_still_finds_new_sub_agent_files(tmp_path, cache_dir, reads):
    from test_load_corpus import agent_copy

    src = tmp_path / "src"
    src.mkdir()
    main, sid = main_copy(src, 1)
    agent_copy(src, 1, sid)
    first = rj.load(main, progress=False)
    assert first.sessions.height == 2
    agent_copy(src, 2, sid)  # the agent ran another sub-agent since
    reads.clear()
    again = rj.load(main, progress=False)
    assert reads == ["agent-a0000002.jsonl"]  # the main file came from the cache, unsniffed
    assert again.sessions.height == 3
    assert set(again.sessions["parent_session_id"].drop_nulls()) == {sid}


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_cache_folder_falls_back_with_one_warning(store, tmp_path, monkeypatch):
    ro = tmp_path / "ro-cache"
    ro.mkdir()
    ro.chmod(0o555)
    monkeypatch.setenv("RLM_JUPYTER_CACHE", str(ro))
    try:
        with pytest.warns(RuntimeWarning, match="cannot be written") as caught:
            ctx = load(store)
        assert len([w for w in caught if "load cache" in str(w.message)]) == 1
        same(ctx, plain(store))
    finally:
        ro.chmod(0o755)


def test_progress_is_silent_under_its_delay_and_then_starts_from_what_is_done(monkeypatch):
    """The bar of loads, index builds and embedding: nothing (and no tqdm import) for work that ends within the
    delay; past it, a bar that already counts what was done before it appeared."""
    import time

    from rlm_jupyter.sessions import progress

    with progress.Progress(100, 4) as p:
        p.update(50, 2)
        assert p._bar is None and p.files == 2
    monkeypatch.setattr(progress, "DELAY_S", 0.05)
    with progress.Progress(1000, 3, desc="word index", unit="msg", postfix=False) as p:
        p.update(300)
        assert p._bar is None
        time.sleep(0.1)
        p.update(200)
        assert p._bar is not None and p._bar.n == 500 and p._bar.total == 1000 and p._bar.desc == "word index"
    assert p._bar is None  # closed
    with progress.Progress(1000, 3, enabled=False) as p:
        time.sleep(0.1)
        p.update(500)
        assert p._bar is None


def test_racy_entries_are_hashed_until_found_unchanged_after_their_window(store, cache_dir, reads, monkeypatch):
    """Files just written keep a content hash in the cache (a same-size rewrite in the same mtime tick keeps their
    key); once a reopen finds one unchanged after its window, the hash is dropped and later reopens stop hashing."""
    first = load(store)  # the store was written just now: every entry is racy
    manifests = list((cache.root() / "packs").glob("*.json"))
    assert manifests and all(e.get("digest") for m in manifests for e in json.loads(m.read_text())["files"])
    hashed: list[str] = []
    real = cache.file_digest
    monkeypatch.setattr(cache, "file_digest", lambda p: hashed.append(Path(p).name) or real(p))
    load(store)  # still inside the window: checked, kept racy
    assert hashed and all(e.get("digest") for m in manifests for e in json.loads(m.read_text())["files"])
    monkeypatch.setattr(cache, "RACY_NS", 1)  # as if the window had passed
    hashed.clear()
    same(load(store), first)  # checked once more, found unchanged: settled
    assert len(hashed) == 7
    assert not any(
        e.get("digest") for m in (cache.root() / "packs").glob("*.json") for e in json.loads(m.read_text())["files"]
    )
    hashed.clear()
    same(load(store), first)
    assert hashed == []  # the key alone decides now
    victim = sorted(store.rglob("*.jsonl"))[0]
    victim.write_text(victim.read_text(encoding="utf-8") + "\n", encoding="utf-8")  # a later write: a later mtime
    reads.clear()
    assert load(store).df.height == first.df.height and reads == [victim.name]  # read again (a blank line: no rows)
