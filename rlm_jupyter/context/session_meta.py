"""Session metadata as a JSON-able dict: the one way a `Session`'s fields (without its rows) are written and read
back, used by the IPC hand-over (handover.py) and by `Context.from_frame` (frames.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..sessions import Session
from ..sessions.model import SESSION_META_FIELDS

# The Session fields a hand-over keeps (the rows travel in the frame; `extra` is added beside them).
SESSION_FIELDS = (*SESSION_META_FIELDS, "malformed_lines")


def session_meta(s: Session) -> dict[str, Any]:
    """`s`'s metadata: SESSION_FIELDS plus `extra` (what `session_from_meta` reads)."""
    return {**{f: getattr(s, f) for f in SESSION_FIELDS}, "extra": s.extra}


def session_from_meta(d: Mapping[str, Any]) -> Session:
    """The Session (without rows) that `d` (a `session_meta` dict or a sessions-frame row) describes; a missing
    or null field keeps the Session default."""
    given = {f: d[f] for f in SESSION_FIELDS[3:] if d.get(f) is not None}
    s = Session(d["session_id"], d["format"], d["path"])
    for f, v in given.items():
        setattr(s, f, v)
    s.extra = d.get("extra") or {}
    return s
