"""OpenCode sessions: `opencode export` JSON, the SQLite `opencode.db` (1.2+) and the JSON `storage/` tree (<=1.1).

Mapping (docs/sessions.md, design notes §1):
- user message -> one `user`/`human` row with the typed text parts (inline data: files as media placeholders),
  then one `user`/`harness` row (`raw_type="user/synthetic"`) joining its synthetic parts (file contents read on
  @-mention, command output): the model sees them as user content, but nobody typed them.
- a user message with a `compaction` part -> `user`/`harness` row, `boundary="compaction"`, text = what the model is
  sent for it; rows before the last one get `in_context=False` (a `tail_start_id` keeps its tail in context).
- assistant message -> one row (text parts, reasoning -> thinking, `info.tokens`, `cost`, `modelID`), then one tool
  row per `tool` part. `summary: true` -> `origin="summary"`, `boundary="summary"`. An `error` (e.g. an aborted
  step) names itself in `raw_type` ("assistant/MessageAbortedError") and in a bracketed note in the text.
- parts skipped on purpose: step-start, step-finish, snapshot, patch, agent. Unknown parts and roles are kept as
  `system`/`harness` rows with `raw_type` "part/<type>" / "message/<role>".
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from ..jsonio import read_json
from ..model import Issue, Session
from . import _opencode_store as store
from ._opencode_rows import NAME, Msg, build

related = None  # a file stands alone (formats.protocol.Format)

__all__ = ["NAME", "sniff", "sniff_dir", "read", "related", "discover"]

# Exports are pretty-printed (JSON.stringify(…, null, 2)), so the first line alone does not parse.
_EXPORT_HEAD = re.compile(rb'^\s*\{\s*"info"\s*:\s*\{')
_API_HEAD = re.compile(rb'^\s*\[\s*\{\s*"info"\s*:\s*\{')
_SES_ID = re.compile(rb'"id"\s*:\s*"ses_')


def _is_export(obj: Any) -> bool:
    info = obj.get("info") if isinstance(obj, dict) else None
    return isinstance(info, dict) and str(info.get("id", "")).startswith("ses_") and "messages" in obj


def _is_message_list(obj: Any) -> bool:
    """The same records without the session: `GET /session/:id/message` returns `[{info, parts}]`."""
    if not isinstance(obj, list) or not obj or not isinstance(obj[0], dict):
        return False
    info = obj[0].get("info")
    return isinstance(info, dict) and str(info.get("sessionID", "")).startswith("ses_") and "parts" in obj[0]


def sniff(probe) -> bool:
    head = probe.head
    if head.startswith(store.SQLITE_MAGIC):
        return store.tables(probe.path) >= store.REQUIRED_TABLES
    first = probe.first
    if first is not None:
        return _is_export(first) or _is_message_list(first)
    if _EXPORT_HEAD.match(head):
        return _SES_ID.search(head) is not None
    return bool(_API_HEAD.match(head)) and b'"sessionID"' in head and b'"ses_' in head


def sniff_dir(probe) -> bool:
    return store.storage_root(probe.path) is not None


def read(path, report) -> list[Session]:
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, report.issues)
    with open(path, "rb") as fh:
        magic = fh.read(16)
    if magic == store.SQLITE_MAGIC:
        try:
            return store.read_db(path, report.issues)
        except sqlite3.Error as exc:  # e.g. a schema this loader does not know; the driver reports ValueError
            raise ValueError(f"SQLite: {exc}") from None
    return _read_export(path, report.issues)


def discover(home: Path) -> list[Path]:
    """`$XDG_DATA_HOME/opencode` (default `~/.local/share/opencode`): opencode*.db first, then the old storage/."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = (Path(xdg) if xdg else Path(home) / ".local" / "share") / "opencode"
    found = sorted(base.glob("opencode*.db")) if base.is_dir() else []
    if (base / "storage").is_dir():
        found.append(base / "storage")
    return found


# --- export JSON ----------------------------------------------------------------------------------------------
def _read_export(path: Path, issues: list[Issue]) -> list[Session]:
    data = read_json(path)
    spath = str(path)
    if _is_export(data):
        info, entries, prefix = data["info"], data.get("messages"), "/messages"
    elif _is_message_list(data):
        info, entries, prefix = {"id": data[0]["info"]["sessionID"]}, data, ""
        issues.append(
            Issue(spath, None, "a bare message list (no session info): title, version and cwd unknown", "note")
        )
    else:
        raise ValueError("not an OpenCode export: expected {info, messages} with a ses_ id")
    msgs = []
    for i, entry in enumerate(entries if isinstance(entries, list) else ()):
        where = f"{prefix}/{i}"
        if not isinstance(entry, dict) or not isinstance(entry.get("info"), dict):
            issues.append(Issue(spath, None, "message without an info object; skipped", pointer=where))
            continue
        parts = entry.get("parts")
        if parts is not None and not isinstance(parts, list):
            issues.append(
                Issue(spath, None, f"parts {str(parts)[:40]} is not a list; ignored", "invalid", f"{where}/parts")
            )
        parts = [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []
        srcs = [f"{spath}#{where}/parts/{j}" for j in range(len(parts))]
        m = Msg(entry["info"], parts, f"{spath}#{where}", srcs)
        m.sort_parts()
        msgs.append(m)
    return [build(info, msgs, spath, issues=issues)]


# --- a data folder or storage tree ----------------------------------------------------------------------------
def _read_folder(folder: Path, issues: list[Issue]) -> list[Session]:
    """A storage tree; in OpenCode's data folder also its opencode*.db, which wins for sessions in both
    (migration bugs left some sessions only in the JSON tree, so both are read)."""
    sessions: list[Session] = []
    root = store.storage_root(folder)
    if root is not None and root != folder:
        for db in sorted(folder.glob("opencode*.db")):
            sessions.extend(store.read_db(db, issues))
    seen = {s.session_id for s in sessions}
    for s in store.read_tree(root, issues) if root is not None else ():
        if s.session_id in seen:
            issues.append(
                Issue(str(root), None, f"session {s.session_id} is also in the SQLite db; loaded once", "duplicate")
            )
            continue
        sessions.append(s)
    return sessions
