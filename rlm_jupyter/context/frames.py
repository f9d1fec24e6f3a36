"""Building a context's tables: a caller's message frame conformed to the schema (`Context.from_frame`), session
stubs for it, a net for polars panics, and handing the loaders' freed memory back to the OS."""

from __future__ import annotations

from typing import Any

from ..sessions import Session
from ..sessions.checks import TableError
from .errors import ArgumentError
from .session_meta import session_from_meta


def no_panic(what: str, build, *args):
    """`build(*args)`, with a polars panic (pyo3's PanicException derives from BaseException, so a notebook's
    `except Exception` would not catch it) turned into a TableError. The loaders' values are checked before they
    reach polars (sessions/checks.py), so this is a last net, not the rule."""
    try:
        return build(*args)
    except BaseException as exc:
        if type(exc).__name__ != "PanicException":
            raise
        raise TableError(
            f"building {what} failed inside polars ({str(exc)[:200]}); this is a bug of rlm_jupyter: "
            "please report it with the files you loaded (ctx.report lists them)"
        ) from None


def conform(df):
    """`df` with exactly the schema's message columns, in order and with their types (missing ones null)."""
    import polars as pl

    from ..sessions.schema import MESSAGE_COLUMNS, polars_schema

    if not isinstance(df, pl.DataFrame):
        raise ArgumentError(f"from_frame: df must be a polars DataFrame (e.g. ctx.df), got {type(df).__name__}")
    missing = [c for c in ("id", "session_id", "role") if c not in df.columns]
    if missing:
        raise ArgumentError(
            f"from_frame: df lacks the column(s) {missing}; it needs at least id, session_id and "
            f"role, plus any of {list(MESSAGE_COLUMNS)}"
        )
    schema = polars_schema(MESSAGE_COLUMNS)
    cols = []
    for name, dtype in schema.items():
        col = pl.col(name) if name in df.columns else pl.lit(None)
        cols.append(col.cast(dtype).alias(name))
    try:
        return df.select(cols)
    except pl.exceptions.PolarsError as e:
        raise ArgumentError(
            f"from_frame: a column does not have the schema's type ({str(e).splitlines()[0]}); "
            "see rlm_jupyter.sessions.schema.MESSAGE_COLUMNS"
        ) from None


def session_stubs(frame, sessions) -> list[Session]:
    """Session metadata for a frame: from a sessions frame, a list of Session, or bare ones in order of appearance."""
    import polars as pl

    if isinstance(sessions, list) and all(isinstance(s, Session) for s in sessions):
        return sessions
    order = frame.get_column("session_id").unique(maintain_order=True).to_list()
    known: dict[str, dict[str, Any]] = {}
    if isinstance(sessions, pl.DataFrame):
        if "session_id" not in sessions.columns:
            raise ArgumentError("from_frame: sessions must be a sessions frame (ctx.sessions) with session_id")
        times = [c for c in ("started", "updated") if c in sessions.columns]
        rows = sessions.with_columns([pl.col(c).dt.epoch("us") for c in times]).to_dicts()
        known = {r["session_id"]: r for r in rows}
        order += [sid for sid in known if sid not in set(order)]
    elif sessions is not None:
        raise ArgumentError(
            f"from_frame: sessions must be a sessions frame, a list of Session or None, got {type(sessions).__name__}"
        )
    out = []
    for sid in order:
        r = known.get(sid, {})
        out.append(
            session_from_meta(
                {**r, "session_id": sid, "format": r.get("format") or "frame", "path": r.get("path") or "-"}
            )
        )
    return out


def return_freed_memory() -> None:
    """Hand the row lists' freed memory back to the OS (glibc keeps freed heap otherwise): on a 10M-token history
    this lowers the process's resident memory by ~15%. A no-op where glibc is not the allocator."""
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to hand back
        ctypes.CDLL("libc.so.6").malloc_trim(0)
