"""OpenCode's on-disk stores: the SQLite `opencode.db` (1.2+) and the JSON `storage/` tree (<=1.1).

Both hold many sessions; each is rebuilt as `{info, messages: [{info, parts}]}` and handed to `_opencode_rows`.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

from ..checks import record_failed
from ..jsonio import read_json
from ..model import Issue, Session
from ._opencode_rows import Msg, build

SQLITE_MAGIC = b"SQLite format 3\x00"
REQUIRED_TABLES = frozenset({"session", "message", "part"})


# --- SQLite ---------------------------------------------------------------------------------------------------
def _uri(path: Path, **params: str) -> str:
    return path.resolve().as_uri() + "?" + "&".join(f"{k}={v}" for k, v in params.items())


def _is_wal(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(20)
    return head[18:20] == b"\x02\x02"


def _open_params(path: Path) -> dict[str, str] | None:
    """How to open `path` without writing beside it, or None when only a copy is safe.

    A read-only connection to a WAL database creates `-wal`/`-shm` when they are missing (checked on
    SQLite 3.40). A WAL db without `-wal` was closed cleanly, so it is read as immutable; with both files
    present a plain read-only connection uses them; with only one of them, read a copy.
    """
    if not _is_wal(path):
        return {"mode": "ro"}
    wal, shm = Path(f"{path}-wal").exists(), Path(f"{path}-shm").exists()
    if not wal and not shm:
        return {"mode": "ro", "immutable": "1"}
    if wal and shm:
        return {"mode": "ro"}
    return None


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the db, or to a temporary copy of db+wal+shm if the live file cannot be opened."""
    params = _open_params(path)
    conn = None
    if params is not None:
        try:
            conn = sqlite3.connect(_uri(path, **params), uri=True)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error:
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        try:
            yield conn
        finally:
            conn.close()
        return
    with tempfile.TemporaryDirectory(prefix="rlm-opencode-") as tmp:
        copy = Path(tmp) / path.name
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{path}{suffix}")
            if src.exists():
                shutil.copyfile(src, f"{copy}{suffix}")
        conn = sqlite3.connect(_uri(copy, mode="ro"), uri=True)
        try:
            yield conn
        finally:
            conn.close()


def tables(path: Path) -> set[str]:
    """Table names (a fresh db may have its schema only in the -wal, so open it as for reading)."""
    with connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def _session_infos(conn: sqlite3.Connection) -> list[dict]:
    """Session rows as export-style `info` dicts, oldest first; sessions known only from messages are added."""
    cols = _columns(conn, "session")
    wanted = [
        c
        for c in (
            "id",
            "parent_id",
            "project_id",
            "slug",
            "directory",
            "title",
            "version",
            "time_created",
            "time_updated",
        )
        if c in cols
    ]
    order = "time_created, id" if "time_created" in cols else "id"
    infos = []
    for row in conn.execute(f"SELECT {', '.join(wanted)} FROM session ORDER BY {order}"):
        r = dict(zip(wanted, row, strict=True))
        infos.append(
            {
                "id": r.get("id"),
                "parentID": r.get("parent_id"),
                "projectID": r.get("project_id"),
                "slug": r.get("slug"),
                "directory": r.get("directory"),
                "title": r.get("title"),
                "version": r.get("version"),
                "time": {"created": r.get("time_created"), "updated": r.get("time_updated")},
            }
        )
    known = {i["id"] for i in infos}
    for (sid,) in conn.execute("SELECT DISTINCT session_id FROM message ORDER BY session_id"):
        if sid not in known:
            infos.append({"id": sid})
    return infos


def _load(raw, where: str, path: str, issues: list[Issue]) -> dict | None:
    try:
        value = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        try:
            value = orjson.loads(raw.decode("utf-8", "replace")) if isinstance(raw, bytes) else None
        except orjson.JSONDecodeError:
            value = None
    if not isinstance(value, dict):
        issues.append(Issue(path, None, "data column is not a JSON object; record skipped", pointer=where))
        return None
    return value


def read_db(path: Path, issues: list[Issue]) -> list[Session]:
    spath = str(path)
    with connect(path) as conn:
        # 1.18 already creates the 2.x session_message table, empty; say so only when it holds rows.
        if (
            conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'session_message'").fetchone()
            and conn.execute("SELECT 1 FROM session_message LIMIT 1").fetchone()
        ):
            issues.append(
                Issue(
                    spath,
                    None,
                    "rows in the 2.x session_message table are not read; only the session/message/part tables are",
                    "note",
                )
            )
        sessions = []
        for info in _session_infos(conn):
            sid = info["id"]
            msgs: list[Msg] = []
            by_id: dict[str, Msg] = {}
            for mid, data in conn.execute(
                "SELECT id, data FROM message WHERE session_id = ? ORDER BY time_created, id", (sid,)
            ):
                rec = _load(data, f"message/{mid}", spath, issues)
                if rec is None:
                    continue
                rec.update(id=mid, sessionID=sid)
                m = Msg(rec, [], f"{spath}#message/{mid}")
                msgs.append(m)
                by_id[mid] = m
            for pid, mid, data in conn.execute(
                "SELECT id, message_id, data FROM part WHERE session_id = ? ORDER BY id", (sid,)
            ):
                owner = by_id.get(mid)
                rec = _load(data, f"part/{pid}", spath, issues) if owner is not None else None
                if owner is None or rec is None:
                    continue
                rec.update(id=pid, messageID=mid, sessionID=sid)
                owner.parts.append(rec)
                owner.part_sources.append(f"{spath}#part/{pid}")
            sessions.append(build(info, msgs, spath, ordered=True, issues=issues))
    return sessions


# --- JSON storage tree (<= 1.1) -----------------------------------------------------------------------------
def storage_root(folder: Path) -> Path | None:
    """`folder` itself or its `storage/` child when it holds session/, message/ and part/."""
    for cand in (folder, folder / "storage"):
        if all((cand / d).is_dir() for d in ("session", "message", "part")):
            return cand
    return None


def _json(path: Path, issues: list[Issue]) -> dict | None:
    try:
        value = read_json(path)
    except (ValueError, OSError) as exc:
        issues.append(Issue(str(path), None, f"{exc}; record skipped"))
        return None
    if not isinstance(value, dict):
        issues.append(Issue(str(path), None, "not a JSON object; record skipped"))
        return None
    return value


def read_tree(root: Path, issues: list[Issue]) -> list[Session]:
    """Sessions of a storage tree: session/<project>/<ses>.json, message/<ses>/<msg>.json, part/<msg>/<prt>.json."""
    infos: dict[str, dict] = {}
    for f in sorted((root / "session").glob("*/*.json")):
        info = _json(f, issues)
        if info is not None:
            infos.setdefault(str(info.get("id") or f.stem), info)
    # Sessions whose info file is missing still have their messages.
    for d in sorted((root / "message").iterdir()):
        if d.is_dir() and d.name not in infos:
            infos[d.name] = {"id": d.name}
    ordered = sorted(infos.values(), key=_created_then_id)
    sessions = []
    for info in ordered:
        try:  # a session whose records break the reader is reported; the others load
            sessions.append(build(info, _tree_messages(root, str(info["id"]), issues), str(root), issues=issues))
        except Exception as exc:  # noqa: BLE001
            record_failed(issues, str(root / "session"), exc, pointer=str(info.get("id")))
    return sessions


def _created_then_id(info: dict) -> tuple:
    t = info.get("time")
    created = t.get("created") if isinstance(t, dict) else None
    ok = isinstance(created, (int, float)) and not isinstance(created, bool) and created == created  # not nan
    return (created if ok else 0, str(info.get("id")))


def _tree_messages(root: Path, sid: str, issues: list[Issue]) -> list[Msg]:
    msgs = []
    mdir = root / "message" / sid
    for f in sorted(mdir.glob("*.json")) if mdir.is_dir() else ():
        rec = _json(f, issues)
        if rec is None:
            continue
        rec.setdefault("id", f.stem)
        rec.setdefault("sessionID", sid)
        m = Msg(rec, [], str(f))
        for pf in sorted((root / "part" / str(rec["id"])).glob("*.json")):
            part = _json(pf, issues)
            if part is not None:
                part.setdefault("id", pf.stem)
                m.parts.append(part)
                m.part_sources.append(str(pf))
        m.sort_parts()
        msgs.append(m)
    return msgs
