"""Read files and folders of any supported format into sessions, with a report of what was read."""

from __future__ import annotations

import gc
import os
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from . import checks, formats
from .model import Issue, Session
from .report import FileReport, LoadReport

# Files a folder walk looks at; everything else in a folder is ignored silently.
_CANDIDATE_SUFFIXES = (".jsonl", ".json", ".traj", ".db", ".ndjson", ".jsonl.zst", ".eval")


class UnknownFormatError(ValueError):
    """A file that no loader recognises."""


def _as_paths(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = []
    for p in paths:
        path = Path(os.path.expanduser(os.fspath(p)))
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: no such file or folder. Pass a session file, several files, or a folder "
                "(rj.discover() lists the sessions found on this machine)."
            )
        out.append(path)
    return out


def _walk(folder: Path) -> list[Path]:
    """Session files under `folder`, in a stable order. A folder that is itself a format
    (OpenCode's storage tree) is returned whole."""
    return [Path(p) for p in _walk_names(folder)]


def _walk_names(folder: Path) -> list[str]:
    """`_walk` as strings: a store of thousands of files is listed without a Path object per file (~20 us each)."""
    if formats.detect(formats.Probe(folder)) is not None:
        return [str(folder)]
    found: list[str] = []
    join = os.path.join
    for root, dirs, files in os.walk(str(folder)):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for d in list(dirs):
            sub = join(root, d)
            if formats.detect(formats.Probe(Path(sub))) is not None:
                found.append(sub)
                dirs.remove(d)
        for name in sorted(files):
            if name.endswith(_CANDIDATE_SUFFIXES) and not name.startswith("."):
                found.append(join(root, name))
    return found


def read_sessions(paths) -> tuple[list[Session], LoadReport]:
    """Sessions with their row lists (no table, no cache, one process): for code that wants `Session` objects.
    `load_table` is what `rj.load` uses."""
    # Loading allocates many short-lived dicts while the kept row lists grow: the cyclic GC would rescan
    # them again and again (about 20% of the time on big files), and loaders make no cycles.
    was_on = gc.isenabled()
    gc.disable()
    try:
        return _read_sessions(paths)
    finally:
        if was_on:
            gc.enable()


def _read_sessions(paths) -> tuple[list[Session], LoadReport]:
    """Load every session reachable from `paths` (files and/or folders).

    Raises FileNotFoundError for a missing path and UnknownFormatError for an explicitly named
    file that is no supported format. Inside folders, unknown files are noted and skipped.
    """
    report = LoadReport()
    queue: deque[tuple[Path, bool]] = deque()  # (path, named explicitly)
    for p in _as_paths(paths):
        if p.is_dir():
            queue.extend((f, False) for f in _walk(p))
        else:
            queue.append((p, True))

    listing = formats.Listing()
    sessions: list[Session] = []
    seen_paths: set[str] = set()
    seen_sessions: dict[str, str] = {}
    seen_ids: set[str] = set()
    while queue:
        path, explicit = queue.popleft()
        real = os.path.realpath(path)
        if real in seen_paths:
            continue
        seen_paths.add(real)
        probe = formats.Probe(path)
        mod = formats.detect(probe)
        if mod is None:
            what = formats.describe(probe)
            if explicit:
                raise UnknownFormatError(
                    f"{path}: not a session format this tool knows; it looks like {what}. "
                    f"Supported: {formats.SUPPORTED}."
                )
            report.notes.append(f"{path}: skipped, not a known session format ({what})")
            continue
        freport = FileReport(str(path), mod.NAME)
        report.files.append(freport)
        loaded = checks.read_file(mod, path, freport)  # errors reported, values checked (issue 19)
        for s in loaded:
            if s.session_id in seen_sessions:
                freport.issues.append(
                    Issue(
                        str(path),
                        None,
                        f"session {s.session_id} already loaded from {seen_sessions[s.session_id]}; loaded once",
                        "duplicate",
                    )
                )
                continue
            seen_sessions[s.session_id] = str(path)
            renamed = _make_ids_unique(s, seen_ids)
            if renamed:
                freport.issues.append(
                    Issue(
                        str(path),
                        None,
                        f"{renamed} message id(s) repeated an id already loaded; renamed to <id>@<session>#<seq>",
                        "note",
                    )
                )
            s.malformed_lines = sum(1 for i in freport.issues if i.kind == "malformed" and i.line is not None)
            freport.sessions.append(s.session_id)
            freport.records_kept += len(s)
            sessions.append(s)
        related = mod.related
        if related is not None and explicit:  # a walked file's neighbours are in the walk already
            queue.extend((r, False) for r in related(path, listing) if os.path.realpath(r) not in seen_paths)
    return sessions, report


def _make_ids_unique(session: Session, seen: set[str]) -> int:
    """`id` must identify one message across everything loaded (get_by_id, traces cite it). Fixture files and
    forks can repeat ids; rename the repeats and return how many were renamed."""
    ids = session.columns["id"]
    renamed = 0
    for i, mid in enumerate(ids):
        if mid in seen:
            mid = f"{mid}@{session.session_id}#{i}"
            ids[i] = mid
            renamed += 1
        seen.add(mid)
    return renamed
