"""Every record is untrusted: the values loaders produce are checked here, once, before they reach polars.

`read_file` runs a format's `read` so that nothing but a report entry comes out of one bad file, and checks every
session it returns: a value of the wrong type, a time outside 1970..2200, a count that is negative or absurdly
large, a cost that is not a finite non-negative number is nulled (ids are renamed) and noted with the row's
`source` (file:line, file#/json/pointer, db#table/id). Readers add their own per-record guard with
`record_failed`, so one record that breaks a reader is skipped and reported instead of ending the file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from . import window
from .model import Issue, Session
from .schema import MESSAGE_COLUMNS, ORIGINS, ROLES

_NONE = type(None)
# 1970-01-01 .. 2200-01-01 in epoch µs (the unit of `ts`, `started`, `updated`).
TS_MIN = 0
TS_MAX = 7_258_118_400 * 1_000_000
# Counts (tokens, bytes, seq) larger than this are no real count; below it, a sum over millions of rows stays
# inside int64 (polars sums wrap around silently beyond it).
COUNT_MAX = 10**12
COST_MAX = 1e9


class TableError(ValueError):
    """Building a polars table from checked sessions failed anyway (a bug: a value the checks let through)."""


_ALLOWED: dict[str, set[type]] = {
    "str": {str, _NONE},
    "int": {int, _NONE},
    "datetime": {int, _NONE},
    "float": {float, int, _NONE},
    "bool": {bool},
    "event": {dict, _NONE},
}
# Counts the loaders compute themselves (Session.add, textutil.utf8_len), never copied from a record: no range check.
_COMPUTED = frozenset({"seq", "text_bytes", "tool_output_bytes"})
_SESSION_STR = ("producer", "producer_version", "title", "cwd", "model", "parent_session_id")


def read_file(mod, path: Path, freport) -> list[Session]:
    """`mod.read(path, freport)` with every session checked; an error of the reader becomes a report entry."""
    spath = str(path)
    try:
        sessions = mod.read(path, freport)
    except (ValueError, OSError) as exc:
        freport.issues.append(Issue(spath, None, f"could not be read: {exc}", "malformed"))
        return []
    except (Exception, RecursionError) as exc:  # noqa: BLE001 - a reader bug must not end the whole load
        name = mod.NAME
        freport.issues.append(
            Issue(
                spath,
                None,
                f"could not be read: the {name} loader failed ({_what(exc)}); "
                "nothing loaded from this file (a bug of rlm_jupyter: please report it)",
                "malformed",
            )
        )
        return []
    out = []
    for s in sessions if isinstance(sessions, list) else ():
        try:
            check_session(s, freport.issues)
            window.resolve(s)  # what left the model's window, from the checked rows (sessions/window.py)
        except Exception as exc:  # noqa: BLE001 - belt and braces: drop the session, keep the rest
            freport.issues.append(Issue(spath, None, f"session dropped ({_what(exc)})", "malformed"))
            continue
        out.append(s)
    return out


def record_failed(
    issues: list[Issue], path: str, exc: BaseException, line: int | None = None, pointer: str | None = None
) -> None:
    """Report a record a reader could not take (an unexpected value inside it): skipped, with where and why.
    Rows it added before the error stay."""
    issues.append(Issue(str(path), line, f"record skipped: unexpected value ({_what(exc)})", "malformed", pointer))


_TYPE_NAMES = {str: "text", int: "an integer", float: "a number", list: "a list", dict: "an object", bool: "true/false"}


def drop_mistyped(
    rec: dict,
    expected: dict[str, tuple],
    issues: list[Issue],
    path: str,
    line: int | None = None,
    pointer: str | None = None,
    prefix: str = "",
) -> dict:
    """`rec` without the known keys whose value has the wrong type (exact types: `True` is no count), each noted
    as `invalid` with where it is. Readers then see those keys as missing: a wrong id links nothing, a wrong count
    counts nothing. Costs a few dict lookups per record; returns `rec` itself when all is well."""
    bad = None
    for key, types in expected.items():
        v = rec.get(key)
        if v is not None and type(v) not in types:
            if bad is None:
                bad = []
            bad.append(key)
            what = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
            issues.append(
                Issue(str(path), line, f"{prefix}{key} {_short(v)} is not {what}; ignored", "invalid", pointer)
            )
    if bad is None:
        return rec
    return {k: v for k, v in rec.items() if k not in bad}


def _what(exc: BaseException) -> str:
    """`TypeError: … at claude.py:618`: what went wrong and where, for a bug report."""
    tb, where = exc.__traceback__, ""
    while tb is not None:
        if "rlm_jupyter" in tb.tb_frame.f_code.co_filename:
            where = f" at {Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return f"{type(exc).__name__}: {str(exc)[:160]}{where}"


def check_session(s: Session, issues: list[Issue]) -> None:
    """Make `s` safe to turn into polars frames; note every change in `issues`."""
    notes: dict[str, list] = {}  # reason -> [count, first row]

    def note(reason: str, row: int | None) -> None:
        entry = notes.get(reason)
        if entry is None:
            notes[reason] = [1, row]
        else:
            entry[0] += 1

    if type(s.session_id) is not str:
        fixed = str(s.session_id) if type(s.session_id) in (int, float) else f"{Path(s.path).name}#{id(s)}"
        note(f"session id {_short(s.session_id)} is not text; named {fixed!r}", None)
        s.session_id = fixed
    for name in _SESSION_STR:
        value = getattr(s, name)
        if value is not None and type(value) is not str:
            note(f"session {name} {_short(value)} is not text; nulled", None)
            setattr(s, name, None)
    for name in ("started", "updated"):
        value = getattr(s, name)
        if value is not None and not (type(value) is int and TS_MIN <= value < TS_MAX):
            note(f"session {name} time {_short(value)} outside 1970..2200; nulled", None)
            setattr(s, name, None)
    for row, value in s.bad_times:
        note(f"ts {_short(value)} is not a time; nulled", row)
    if s.columns:
        _check_columns(s, note)
    for reason, (count, row) in notes.items():
        issues.append(_issue(s, row, f"{reason}{f' ({count} rows)' if count > 1 else ''}"))


def _check_columns(s: Session, note) -> None:
    cols = s.columns
    n = len(cols["id"])
    lengths = {len(c) for c in cols.values()}
    if lengths != {n}:  # a reader left columns of different lengths: cut all to the shortest
        short = min(lengths)
        note(f"rows {short}..{n - 1} were incomplete; dropped", short)
        for c in cols.values():
            del c[short:]
        n = short
    sid = s.session_id
    sids = cols["session_id"]
    if n and (sids[0] is not sid or sids[-1] is not sid):
        sids[:] = [sid] * n
    for name, kind in MESSAGE_COLUMNS.items():
        col = cols[name]
        types = set(map(type, col))
        allowed = _ALLOWED[kind]
        if not types <= allowed:
            for i, v in enumerate(col):
                if type(v) not in allowed:
                    col[i] = _replacement(name, i, sid)
                    note(
                        f"{name} {_short(v)} is not {'a ' + kind if kind != 'str' else 'text'}; "
                        f"{'renamed' if name == 'id' else 'nulled'}",
                        i,
                    )
        if kind in ("int", "datetime") and name not in _COMPUTED:
            lo, hi = (TS_MIN, TS_MAX) if kind == "datetime" else (0, COUNT_MAX)
            # filter(None, …) drops None (and 0, which is in range) at C speed
            if types != {_NONE} and (min(filter(None, col), default=0) < lo or max(filter(None, col), default=0) >= hi):
                for i, v in enumerate(col):
                    if v is not None and not lo <= v < hi:
                        col[i] = None if name != "seq" else i
                        note(
                            f"{name} {v} outside {'1970..2200' if kind == 'datetime' else f'0..{COUNT_MAX:,}'}; nulled",
                            i,
                        )
        elif kind == "float" and types != {_NONE}:
            for i, v in enumerate(col):
                if v is not None and not (math.isfinite(v) and 0 <= v < COST_MAX):
                    col[i] = None
                    note(f"{name} {v} is not a finite cost; nulled", i)
    for name, valid, default in (("role", ROLES, "system"), ("origin", ORIGINS, "harness")):
        col = cols[name]
        if not set(col) <= valid:
            for i, v in enumerate(col):
                if v not in valid:
                    col[i] = default
                    note(f"{name} {_short(v)} is not one of {sorted(valid)}; set to {default!r}", i)


def _replacement(name: str, i: int, sid: str) -> Any:
    if name == "id":
        return f"{sid}#{i}"
    if name == "in_context":
        return True
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _issue(s: Session, row: int | None, reason: str) -> Issue:
    """An issue placed at row `row`'s source: `path:line`, `path#pointer` or `db#table/id`."""
    src = None
    if row is not None and s.columns:
        sources = s.columns.get("source") or []
        src = sources[row] if row < len(sources) else None
    if isinstance(src, str):
        head, sep, tail = src.rpartition(":")
        if sep and tail.isdigit() and "#" not in tail:
            return Issue(head, int(tail), reason, "invalid")
        head, sep, tail = src.partition("#")
        if sep:
            return Issue(head, None, reason, "invalid", tail)
        return Issue(src, None, reason, "invalid")  # a record that is a file of its own (OpenCode storage tree)
    return Issue(s.path, None, reason, "invalid")
