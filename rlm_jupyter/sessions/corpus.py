"""Load many session files into ONE table: each folder listed once, unchanged files taken from the cache, the
others read by a process pool in batches, everything merged in input order (the same table and report as a serial
load). `rj.load` and `%rlm_load` come through `load_table`; `rj.scan` through `scan`.

Steps: plan (expand paths, stat every file, find related files through one index) -> look each file up in the
cache -> read the misses in batches (each batch: one frame, one cache pack) -> merge in order (duplicate sessions
dropped, repeated message ids renamed, as `read_sessions` does).
"""

from __future__ import annotations

import copy
import gc
import math
import os
import stat
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import cache as _cache
from . import checks, formats
from .load import UnknownFormatError, _as_paths, _walk_names
from .model import SESSION_META_FIELDS, Issue, Session
from .report import FileReport, LoadReport

# Below this much to read, starting the workers (a forkserver importing polars: 0.5 s on an idle 2-core machine,
# 2-3 s on a busy one) costs more than the second core gives (benchmarks/load.py: 38 MB was 3x slower with 2).
POOL_MIN_BYTES = 96 << 20
# Bytes per batch: small enough to balance cores and bound the loaders' Python lists, large enough that a frame
# build and a pack write are paid per many files.
BATCH_BYTES = 48 << 20
SERIAL_BATCH_BYTES = 16 << 20  # in-process batches are smaller so that progress moves


_EMPTY = Session("", "", "")


@dataclass
class Item:
    """One file (or store folder) to load, as listed."""

    path: str
    real: str
    explicit: bool
    size: int = 0
    problem: str | None = None  # why it cannot be read (found while listing)
    st: os.stat_result | None = None  # its stat when listed (the cache key is made from it: one stat a file)


@dataclass
class Plan:
    items: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- plan


def plan(paths, index: _cache.Index | None = None) -> Plan:
    """Every file reachable from `paths`, in load order, each stat-ed once; related files (Claude sub-agents) of
    explicitly named files come after, found through one `formats.Listing` for the whole load. An explicitly named
    file the cache `index` knows is not sniffed again: its entry gives its format and session id."""
    out = Plan()
    listing = formats.Listing()
    seen: set[str] = set()
    related: list[Item] = []

    real_dirs: dict[str, str] = {}

    def realpath(spath: str) -> str:
        # realpath walks every component (~0.1 ms a file); the folders of a store are few, so resolve those once
        if os.path.islink(spath):
            return os.path.realpath(spath)
        folder, name = os.path.split(spath)
        rd = real_dirs.get(folder)
        if rd is None:
            rd = real_dirs[folder] = os.path.realpath(folder)
        return os.path.join(rd, name)

    def add(p: Path | str, explicit: bool, into: list[Item]) -> Item | None:
        spath = str(p)
        real = realpath(spath)
        if real in seen:
            return None
        seen.add(real)
        item = Item(spath, real, explicit)
        item.size, item.problem, item.st = _check(p)
        into.append(item)
        return item

    for p in _as_paths(paths):
        if p.is_dir():
            for f in _walk_names(p):
                add(f, False, out.items)
            continue
        item = add(p, True, out.items)
        if item is None or item.problem:
            continue
        mod = _known(index, item, listing)
        if mod is None:
            probe = formats.Probe(p)
            mod = formats.detect(probe)
            if mod is None:
                raise UnknownFormatError(
                    f"{p}: not a session format this tool knows; it looks like "
                    f"{formats.describe(probe)}. Supported: {formats.SUPPORTED}."
                )
            listing.heads[str(p)] = probe.head
        rel = mod.related
        if rel is not None:
            for r in rel(p, listing):
                add(Path(r), False, related)
    out.items.extend(related)
    return out


def _known(index: _cache.Index | None, item: Item, listing: formats.Listing):
    """The format module of a file the cache holds unchanged (and its main session id, put in `listing`)."""
    if index is None or not item.size:
        return None
    try:
        hit = index.lookup(_cache.Key.of(item.real, item.st or os.stat(item.path)), item.path)
    except OSError:
        return None
    if hit is None:
        return None
    mod = next((m for m in formats.modules() if hit.entry["format"] == m.NAME), None)
    main = [m["session_id"] for m in hit.entry["sessions"] if not m.get("parent_session_id")]
    if mod is not None and main:
        listing.session_ids[item.path] = main[0]
    return mod


def _check(p: Path | str) -> tuple[int, str | None, os.stat_result | None]:
    """(size, None, stat) for a file that can be read, or (0, why, None) for one that cannot. Never opens the file:
    a named pipe called *.jsonl would block `open` until a writer comes."""
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            return 0, f"broken symbolic link (to {os.readlink(p)}); skipped", None
        return 0, "vanished after the folder was listed; skipped", None
    except OSError as e:
        return 0, f"cannot be read ({e.strerror or e}); skipped", None
    if stat.S_ISDIR(st.st_mode):
        return 0, None, st  # a store folder (OpenCode's storage tree), read whole
    if not stat.S_ISREG(st.st_mode):
        return 0, f"not a regular file ({_kind(st.st_mode)}); skipped", None
    # The owner's permission bits are the whole answer for the owner (ACLs do not change them): no access() call
    # for the usual case of one's own files (~10 us a file)
    if not (st.st_uid == _EUID and st.st_mode & stat.S_IRUSR) and not os.access(p, os.R_OK):
        return 0, "cannot be read (permission denied); skipped, check its permissions", None
    return st.st_size, None, st


_EUID = os.geteuid()


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "a special file"


# ---------------------------------------------------------------- reading a batch (in a worker or in-process)


def read_batch(items: list[tuple[str, str, bool]], cache_folder: str | None, keep_frame: bool = True) -> dict:
    """Read files `(path, real path, explicit)` into one frame. Returns {"entries": one dict per file, "frame":
    the rows (None when `keep_frame` is false and a pack holds them), "pack": the pack written or None,
    "warning": why the cache could not be written}. Per file problems go into its entry, never raise."""
    from .tables import rows_frame

    was_on = gc.isenabled()
    gc.disable()  # the loaders make no cycles; the cyclic GC would rescan their growing lists (see load.py)
    try:
        entries, sessions = [], []
        start = 0
        for path, real, explicit in items:
            entry, got = _read_one(path, real, explicit)
            entry["start"] = start
            entry["rows"] = sum(len(s) for s in got)
            start += entry["rows"]
            entries.append(entry)
            sessions.extend(got)
        frame = rows_frame(sessions)
        del sessions
    finally:
        if was_on:
            gc.enable()
    out: dict[str, Any] = {"entries": entries, "frame": frame, "pack": None, "warning": None}
    cacheable = [e for e in entries if e.get("cache")]
    if cache_folder is not None and cacheable:
        try:
            out["pack"] = str(_cache.write_pack(Path(cache_folder), frame, cacheable))
        except OSError as e:
            out["warning"] = f"{e.strerror or e}"
        if out["pack"] is not None and not keep_frame:
            out["frame"] = None  # the parent maps the pack instead of receiving a copy through a pipe
    return out


def _read_one(path: str, real: str, explicit: bool) -> tuple[dict, list[Session]]:
    entry: dict[str, Any] = {"path": real, "shown": path, "status": "ok", "issues": [], "sessions": [], "cache": False}
    p = Path(path)
    size, problem, st0 = _check(p)  # again: the file may have changed since the folder was listed
    if problem or st0 is None:
        entry.update(status="unreadable", why=problem)
        return entry, []
    try:
        probe = formats.Probe(p)
        probe.is_dir = stat.S_ISDIR(st0.st_mode)  # known from that stat: no second one for the sniffers
        mod = formats.detect(probe)
    except OSError as e:
        entry.update(status="unreadable", why=f"cannot be read ({e.strerror or e}); skipped")
        return entry, []
    if mod is None:
        entry.update(status="unknown", why=formats.describe(probe))
        return entry, []
    digest = None
    if stat.S_ISREG(st0.st_mode) and time.time_ns() - st0.st_mtime_ns < _cache.RACY_NS:
        digest = _cache.file_digest(p)  # written just now: a same-size rewrite could keep this mtime
    freport = FileReport(path, mod.NAME)
    # A reader's error costs this file only, and every value is checked before polars sees it (checks.py).
    loaded = checks.read_file(mod, p, freport)
    try:
        st1 = os.stat(p)
        changed = (st0.st_size, st0.st_mtime_ns) != (st1.st_size, st1.st_mtime_ns)
    except OSError:
        changed = True
    if changed:
        freport.issues.append(
            Issue(
                path,
                None,
                "changed while it was being read (an agent still writing it?); "
                "loaded as read, not cached, load again for the rest",
                "note",
            )
        )
    # Folders (their mtime misses inner changes) and SQLite (a -wal file changes beside it) are never cached.
    cacheable = stat.S_ISREG(st0.st_mode) and not changed and not probe.head.startswith(b"SQLite format 3")
    entry.update(
        format=mod.NAME,
        size=st0.st_size,
        mtime_ns=st0.st_mtime_ns,
        cache=cacheable,
        digest=digest,
        loader=_cache.loader_version(),
        format_version=_cache.format_version(mod.NAME),
        issues=[[i.line, i.reason, i.kind, i.pointer, i.path] for i in freport.issues],
        sessions=[
            {**{f: getattr(s, f) for f in SESSION_META_FIELDS}, "rows": len(s), "extra": s.extra} for s in loaded
        ],
    )
    return entry, loaded


# ---------------------------------------------------------------- the whole load


@dataclass
class _Part:
    """A file's rows: `frame[start:start+rows]`, and what its entry says about them."""

    item: Item
    entry: dict
    frame: Any = None
    pack: str | None = None


def load_table(paths, *, cache: bool | str | os.PathLike = True, workers: int | None = None, progress: bool = True):
    """(messages frame, sessions, report) for everything reachable from `paths`.

    `cache`: True (RLM_JUPYTER_CACHE or ~/.cache/rlm_jupyter), a folder, or False. `workers`: processes for the
    files not in the cache (default: the cores this process may use; 1 reads in this process)."""
    folder = _cache_folder(cache)
    index = _cache.Index(folder).read() if folder is not None else None
    pl_ = plan(paths, index)
    parts = _collect(pl_, folder, workers, progress, index=index)
    df, sessions, report = _merge(pl_, parts)
    return df, sessions, report


def _cache_folder(cache) -> Path | None:
    if cache is False or cache is None:
        return None
    return _cache.root() if cache is True or cache == "auto" else _cache.root(Path(cache).expanduser())


def _usable(folder: Path | None) -> tuple[Path | None, str | None]:
    if folder is None:
        return None, None
    try:
        (folder / "packs").mkdir(parents=True, exist_ok=True)
        if not os.access(folder / "packs", os.W_OK):
            raise PermissionError("not writable")
    except OSError as e:
        return None, f"{e.strerror or e}"
    return folder, None


def _warn_cache(folder: Path, why: str) -> None:
    warnings.warn(
        f"rlm_jupyter: the load cache {folder} cannot be written ({why}); loading without it "
        "(set RLM_JUPYTER_CACHE to a writable folder, or pass cache=False)",
        RuntimeWarning,
        stacklevel=4,
    )


def _collect(
    p: Plan,
    folder: Path | None,
    workers: int | None,
    progress: bool,
    lazy: bool = False,
    index: _cache.Index | None = None,
) -> list[_Part]:
    """The rows of every planned file: from the cache, else read (`workers` processes; None: the cores this process
    may use, found only when something is read: a reopen from the cache never imports multiprocessing)."""
    from .progress import Progress
    from .tables import rows_frame  # noqa: F401  (polars imported here, before any timing of the read)

    parts: list[_Part | None] = [None] * len(p.items)
    if index is None and folder is not None:
        index = _cache.Index(folder).read()
    misses: list[int] = []
    by_pack: dict[str, list[tuple[int, dict]]] = {}  # str keys: hashing a Path costs ~0.1 ms
    for i, item in enumerate(p.items):
        if item.problem:
            parts[i] = _Part(item, {"status": "unreadable", "why": item.problem})
            continue
        hit = None
        if index is not None and item.size:
            try:
                hit = index.lookup(_cache.Key.of(item.real, item.st or os.stat(item.path)), item.path)
            except OSError:
                hit = None
        if hit is None:
            misses.append(i)
        else:
            by_pack.setdefault(str(hit.pack), []).append((i, hit.entry))
    total = sum(p.items[i].size for i in misses) + sum(p.items[i].size for v in by_pack.values() for i, _ in v)
    with Progress(total, len(p.items), enabled=progress) as bar:
        arrows = list(by_pack)
        frames = _cache.read_packs([(Path(a), index.packs[Path(a)]["rows"]) for a in arrows]) if index else []
        for arrow, frame in zip(arrows, frames, strict=True):
            hits = by_pack[arrow]
            if isinstance(frame, Exception):  # a pack that does not read back as written: read its files again
                misses.extend(i for i, _ in hits)
                _cache.drop_pack(Path(arrow))
                continue
            for i, e in hits:
                parts[i] = _Part(p.items[i], e, frame, arrow)
            bar.update(sum(p.items[i].size for i, _ in hits), len(hits), sum(len(e["sessions"]) for _, e in hits))
        misses.sort()
        writable, why = _usable(folder)
        if folder is not None and writable is None:
            _warn_cache(folder, why or "not writable")
        bar.update(0, sum(1 for part in parts if part is not None and part.entry.get("status") == "unreadable"))
        if misses:
            _read_misses(p, misses, parts, writable, workers, bar, lazy)
    if index is not None and writable is not None:
        index.settle()
        _tidy(index, [part for part in parts if part is not None], writable)
    return parts  # type: ignore[return-value]


def _batches(p: Plan, misses: list[int], target: int) -> list[list[int]]:
    out: list[list[int]] = []
    cur: list[int] = []
    size = 0
    for i in misses:
        cur.append(i)
        size += p.items[i].size
        if size >= target:
            out.append(cur)
            cur, size = [], 0
    if cur:
        out.append(cur)
    return out


def _read_misses(
    p: Plan, misses: list[int], parts: list, folder: Path | None, workers: int | None, bar, lazy: bool
) -> None:
    if workers is None:
        from .pool import default_workers

        workers = default_workers()
    nbytes = sum(p.items[i].size for i in misses)
    use_pool = workers > 1 and len(misses) > 1 and nbytes >= POOL_MIN_BYTES
    # pool batches: about three per worker (balance), at most BATCH_BYTES each
    target = max(1 << 20, min(BATCH_BYTES, math.ceil(nbytes / (workers * 3)))) if use_pool else SERIAL_BATCH_BYTES
    batches = _batches(p, misses, target)
    args = [
        (
            [(p.items[i].path, p.items[i].real, p.items[i].explicit) for i in b],
            str(folder) if folder is not None else None,
            not (use_pool or lazy),
        )
        for b in batches
    ]
    warned = [False]

    def done(k: int, res: dict) -> None:
        if res["warning"] and not warned[0] and folder is not None:
            warned[0] = True
            _warn_cache(folder, res["warning"])
        frame = res["frame"]
        if frame is None and not lazy:
            try:
                frame = _cache.read_pack(Path(res["pack"]), sum(e["rows"] for e in res["entries"]))
            except Exception:  # the pack just written does not read back: read the batch again here
                res = read_batch(*args[k][:2], True)
                frame = res["frame"]
        for i, e in zip(batches[k], res["entries"], strict=True):
            parts[i] = _Part(p.items[i], e, frame, res["pack"])
        bar.update(
            sum(p.items[i].size for i in batches[k]), len(batches[k]), sum(len(e["sessions"]) for e in res["entries"])
        )

    if use_pool:
        from concurrent.futures.process import BrokenProcessPool

        from . import pool

        try:
            pool.run(read_batch, args, workers, done)
        except (BrokenProcessPool, OSError) as e:  # workers could not start, or one died (out of memory?)
            warnings.warn(
                f"rlm_jupyter: the load's worker processes failed ({type(e).__name__}: {e}); reading "
                "the rest in this process",
                RuntimeWarning,
                stacklevel=4,
            )
            for k, a in enumerate(args):
                if parts[batches[k][0]] is None:
                    done(k, read_batch(a[0], a[1], True))
    else:
        for k, a in enumerate(args):
            done(k, read_batch(*a))


def _tidy(index: _cache.Index, parts: list[_Part], folder: Path) -> None:
    """After a load: write the load's rows into one pack when they are spread over many (or mostly stale) packs,
    then delete packs no entry uses any more and packs that failed validation."""
    used = {Path(a) for a in {part.pack for part in parts if part.pack and part.entry.get("cache")}}
    # All from the cache as it was, or a first load into an empty cache (every pack live, none older): nothing to
    # tidy, and no manifest to parse again
    if (used <= set(index.packs) or not index.packs) and not index.rejected and len(used) <= _cache.MAX_PACKS_PER_LOAD:
        return
    fresh = _cache.Index(folder).read()
    scattered = len(used) > _cache.MAX_PACKS_PER_LOAD or any(fresh.live_fraction(a) < 0.5 for a in used)
    if scattered and all(part.frame is not None for part in parts if part.entry.get("cache")):
        import polars as pl

        keep = [part for part in parts if part.entry.get("cache")]
        files, start = [], 0
        for part in keep:
            files.append({**part.entry, "start": start})
            start += part.entry["rows"]
        frames = [part.frame.slice(part.entry["start"], part.entry["rows"]) for part in keep]
        try:
            _cache.write_pack(folder, pl.concat(frames, rechunk=False) if frames else frames, files)
        except OSError:
            return
        fresh = _cache.Index(folder).read()
    for arrow in fresh.superseded():
        _cache.drop_pack(arrow)
    for pid in fresh.rejected:
        _cache.drop_pack(fresh.folder / f"{pid}.arrow")
    _cache.drop_orphans(fresh)


# ---------------------------------------------------------------- merging in order


def _pieces(p: Plan, parts: list[_Part]):
    """The report, the sessions kept, and the (part, dropped session ids) whose rows make the table, in order."""
    report = LoadReport(notes=list(p.notes))
    seen: dict[str, str] = {}
    sessions: list[Session] = []
    owner: dict[str, FileReport] = {}
    pieces: list[tuple[_Part, set[str]]] = []
    for part in parts:
        item, e = part.item, part.entry
        if e["status"] == "unreadable":
            fr = FileReport(item.path, None)
            fr.issues.append(Issue(item.path, None, e["why"], "unreadable"))
            report.files.append(fr)
            continue
        if e["status"] == "unknown":
            if item.explicit:
                raise UnknownFormatError(
                    f"{item.path}: not a session format this tool knows; it looks like "
                    f"{e['why']}. Supported: {formats.SUPPORTED}."
                )
            report.notes.append(f"{item.path}: skipped, not a known session format ({e['why']})")
            continue
        fr = FileReport(item.path, e["format"])
        fr.issues = [Issue(i[4] if len(i) > 4 and i[4] else item.path, i[0], i[1], i[2], i[3]) for i in e["issues"]]
        report.files.append(fr)
        malformed = sum(1 for i in fr.issues if i.kind == "malformed" and i.line is not None)
        dropped: set[str] = set()
        for meta in e["sessions"]:
            sid = meta["session_id"]
            if sid in seen:
                fr.issues.append(
                    Issue(item.path, None, f"session {sid} already loaded from {seen[sid]}; loaded once", "duplicate")
                )
                dropped.add(sid)
                continue
            seen[sid] = item.path
            # The rows are in the table: the session is a copy of an empty one (copy skips __post_init__, which
            # would build 28 row lists and their append methods per session, ~0.1 s per 1,000 sessions).
            s = copy.copy(_EMPTY)
            s.__dict__.update({f: meta.get(f) for f in SESSION_META_FIELDS})
            s.extra = meta.get("extra") or {}
            s.malformed_lines = malformed
            s.columns = {}
            s._released = meta["rows"]
            fr.sessions.append(sid)
            fr.records_kept += meta["rows"]
            sessions.append(s)
            owner[sid] = fr
        if e["rows"]:
            pieces.append((part, dropped))
    return report, sessions, owner, pieces


def _runs(pieces):
    """Adjacent pieces of one frame with nothing dropped, joined: (source, start, rows, dropped)."""
    runs: list[list] = []
    for part, dropped in pieces:
        src = part.frame if part.frame is not None else part.pack
        start, rows = part.entry["start"], part.entry["rows"]
        last = runs[-1] if runs else None
        if last and last[0] is src and not dropped and not last[3] and last[1] + last[2] == start:
            last[2] += rows
        else:
            runs.append([src, start, rows, dropped])
    return runs


def _merge(p: Plan, parts: list[_Part]):
    import polars as pl

    from .schema import MESSAGE_COLUMNS, polars_schema

    report, sessions, owner, pieces = _pieces(p, parts)
    frames = []
    for src, start, rows, dropped in _runs(pieces):
        f = src.slice(start, rows)
        frames.append(f.filter(~pl.col("session_id").is_in(list(dropped))) if dropped else f)
    if not frames:
        df = pl.DataFrame(schema=polars_schema(MESSAGE_COLUMNS))
    elif len(frames) == 1:
        df = frames[0]
    else:
        df = pl.concat(frames, how="vertical", rechunk=len(frames) > 16)
    del frames
    return _unique_ids(df, owner), sessions, report


def _unique_ids(df, owner: dict[str, FileReport]):
    """`id` must name one message across the load: a repeat is renamed `<id>@<session>#<seq>` (as read_sessions
    does), and each session's file report says how many."""
    import polars as pl

    for _ in range(4):  # a renamed id could itself repeat another: rename again
        if df.height == 0 or df.get_column("id").n_unique() == df.height:
            break
        dup = ~pl.col("id").is_first_distinct()
        counts = df.filter(dup).group_by("session_id", maintain_order=True).len()
        df = df.with_columns(
            pl.when(dup).then(pl.format("{}@{}#{}", "id", "session_id", "seq")).otherwise(pl.col("id")).alias("id")
        )
        for sid, n in counts.iter_rows():
            fr = owner.get(sid)
            if fr is not None:
                fr.issues.append(
                    Issue(
                        fr.path,
                        None,
                        f"{n} message id(s) repeated an id already loaded; renamed to <id>@<session>#<seq>",
                        "note",
                    )
                )
    return df


# ---------------------------------------------------------------- larger than memory


def scan(paths, *, cache: bool | str | os.PathLike = True, workers: int | None = None, progress: bool = True):
    """A polars LazyFrame over the cached rows of everything reachable from `paths` (files not cached yet are read
    into the cache first, nothing is kept in memory). Same columns as `ctx.df`; duplicate sessions are dropped
    as in a load, but repeated message ids are not renamed (that needs the whole table)."""
    import polars as pl

    from .schema import MESSAGE_COLUMNS, polars_schema

    folder, why = _usable(_cache_folder(cache if cache is not False else True))
    if folder is None:
        raise OSError(
            f"rj.scan needs the load cache, and {_cache_folder(True)} cannot be written ({why}); set "
            "RLM_JUPYTER_CACHE to a writable folder, or use rj.load"
        )
    index = _cache.Index(folder).read()
    pl_ = plan(paths, index)
    parts = _collect(pl_, folder, workers, progress, lazy=True, index=index)
    _, _, _, pieces = _pieces(pl_, parts)
    lazies = []
    for src, start, rows, dropped in _runs(pieces):
        lf = (pl.scan_ipc(src) if isinstance(src, str) else src.lazy()).slice(start, rows)
        lazies.append(lf.filter(~pl.col("session_id").is_in(list(dropped))) if dropped else lf)
    if not lazies:
        return pl.LazyFrame(schema=polars_schema(MESSAGE_COLUMNS))
    return pl.concat(lazies, how="vertical") if len(lazies) > 1 else lazies[0]
