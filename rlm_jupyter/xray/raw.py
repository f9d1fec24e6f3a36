"""Re-read the agent's own record behind a row, through the row's `source` ("path:line" for JSONL, "path#/pointer"
for JSON, "db#table/id" for SQLite, a file path for OpenCode's storage tree). The loaders keep only what the table
needs; the X-ray needs a few more fields of a few records (what a compaction kept, when a tool output was pruned).
Files are read once per `RawReader`. Anything unreadable gives None: the caller then says it could not tell.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

_LINE = re.compile(r"^(?P<path>.+):(?P<line>\d+)$")


class RawReader:
    def __init__(self) -> None:
        self._lines: dict[str, list[str] | None] = {}
        self._json: dict[str, object] = {}
        self._db: dict[str, sqlite3.Connection | None] = {}
        self._memo: dict[tuple, object] = {}  # a replayed/forked history asks for the same record many times

    def record(self, source: str | None) -> dict | None:
        """The JSON object behind `source`, or None when it cannot be read."""
        if not source:
            return None
        key = ("record", source)
        if key not in self._memo:
            self._memo[key] = self._record(source)
        return self._memo[key]

    def _record(self, source: str) -> dict | None:
        try:
            if "#" in source:
                path, frag = source.split("#", 1)
                if frag.startswith("/") or frag == "":
                    return _pointer(self._load_json(path), frag)
                table, _, rid = frag.partition("/")
                return self._sqlite(path, table, rid)
            m = _LINE.match(source)
            if m:
                lines = self._load_lines(m["path"])
                n = int(m["line"])
                return json.loads(lines[n - 1]) if lines and 0 < n <= len(lines) else None
            if source.endswith(".json"):
                return _as_dict(self._load_json(source))
        except (OSError, ValueError, sqlite3.Error, KeyError, IndexError, TypeError):
            return None
        return None

    def records_with_uuids(self, source: str | None, uuids: set[str]) -> list[dict]:
        """The records of the JSONL file behind `source` whose `uuid` is one of `uuids` (Claude Code)."""
        m = _LINE.match(source or "")
        if not m or not uuids:
            return []
        key = ("uuids", m["path"], frozenset(uuids))
        if key not in self._memo:
            self._memo[key] = self._records_with_uuids(m["path"], uuids)
        return self._memo[key]

    def _records_with_uuids(self, path: str, uuids: set[str]) -> list[dict]:
        try:
            lines = self._load_lines(path) or []
        except OSError:
            return []
        out = []
        for line in lines:
            if '"uuid"' in line and any(u in line for u in uuids):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and rec.get("uuid") in uuids:
                    out.append(rec)
        return out

    def claude_reattached_files(self, source: str | None) -> list[str]:
        """Files Claude Code re-attached right after the compact_boundary at `source` (its `attachment` records of
        type "file", up to the next assistant record)."""
        m = _LINE.match(source or "")
        if not m:
            return []
        key = ("files", source)
        if key in self._memo:
            return self._memo[key]
        try:
            lines = self._load_lines(m["path"]) or []
        except OSError:
            return []
        files = self._memo[key] = []
        for line in lines[int(m["line"]):]:
            if '"type":"assistant"' in line:
                break
            if '"attachment"' in line and '"file"' in line:
                try:
                    att = json.loads(line).get("attachment") or {}
                except ValueError:
                    continue
                if isinstance(att, dict) and att.get("type") == "file":
                    files.append(str(att.get("filename") or att.get("path") or "?"))
        return files

    def opencode_parts(self, source: str | None) -> list[dict]:
        """The parts of the OpenCode message behind `source` (SQLite row, storage file or export pointer)."""
        if not source:
            return []
        key = ("parts", source)
        if key not in self._memo:
            self._memo[key] = self._opencode_parts(source)
        return self._memo[key]

    def _opencode_parts(self, source: str) -> list[dict]:
        try:
            if "#message/" in source:
                path, mid = source.split("#message/", 1)
                con = self._connect(path)
                if con is None:
                    return []
                rows = con.execute("SELECT data FROM part WHERE message_id = ? ORDER BY id", (mid,)).fetchall()
                return [json.loads(r[0]) for r in rows]
            if "#/" in source:
                msg = self.record(source)
                parts = msg.get("parts") if isinstance(msg, dict) else None
                return [p for p in parts or () if isinstance(p, dict)]
            p = Path(source)
            if p.suffix == ".json" and p.parent.parent.name == "message":  # storage/message/<ses>/<msg>.json
                folder = p.parents[2] / "part" / p.stem
                return [json.loads(f.read_text(encoding="utf-8")) for f in sorted(folder.glob("*.json"))]
        except (OSError, ValueError, sqlite3.Error):
            return []
        return []

    def close(self) -> None:
        for con in self._db.values():
            if con is not None:
                con.close()
        self._db.clear()

    # ---- loading

    def _load_lines(self, path: str) -> list[str] | None:
        if path not in self._lines:
            p = Path(path)
            data = p.read_bytes()
            if p.suffix == ".zst":
                import zstandard

                data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
            self._lines[path] = data.decode("utf-8", errors="replace").splitlines()
        return self._lines[path]

    def _load_json(self, path: str):
        if path not in self._json:
            self._json[path] = json.loads(Path(path).read_text(encoding="utf-8", errors="replace"))
        return self._json[path]

    def _connect(self, path: str) -> sqlite3.Connection | None:
        if path not in self._db:
            p = Path(path)
            # immutable=1: reading must not create -wal/-shm files next to the agent's database
            self._db[path] = sqlite3.connect(f"file:{p.resolve()}?immutable=1", uri=True) if p.exists() else None
        return self._db[path]

    def _sqlite(self, path: str, table: str, rid: str) -> dict | None:
        if table not in ("message", "part", "session"):
            return None
        con = self._connect(path)
        if con is None:
            return None
        row = con.execute(f"SELECT data FROM {table} WHERE id = ?", (rid,)).fetchone()  # noqa: S608 - table checked
        return _as_dict(json.loads(row[0])) if row else None


def _pointer(doc, pointer: str):
    """RFC 6901 JSON pointer."""
    node = doc
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return _as_dict(node)


def _as_dict(v) -> dict | None:
    return v if isinstance(v, dict) else None
