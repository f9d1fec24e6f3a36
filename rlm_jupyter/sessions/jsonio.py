"""Tolerant JSON/JSONL reading: a bad line is reported and skipped, never fatal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from .model import Issue

HEAD_BYTES = 64 * 1024
# Buffer of the line readers: with the default (8 KiB) readline refills for every few lines of a JSONL file whose
# records are kilobytes long; 1 MiB makes iterating the lines of a 200 MB file ~3x cheaper (0.16 -> 0.05 s).
READ_BUFFER = 1 << 20


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson rejects invalid UTF-8 outright; replace the bad bytes and try once more.
        if "utf-8" not in str(exc).lower() and "utf8" not in str(exc).lower():
            raise
        return orjson.loads(raw.decode("utf-8", "replace"))


def _short(exc: Exception) -> str:
    msg = str(exc).split(":", 1)[0] if isinstance(exc, orjson.JSONDecodeError) else str(exc)
    return msg[:120] or type(exc).__name__


def iter_jsonl(path: str | Path, issues: list[Issue]) -> Iterator[tuple[int, Any]]:
    """Yield (1-based line number, parsed value) for every line that parses.

    A line that does not parse is recorded in `issues` with its number and reason. A cut-off
    last line (no trailing newline: a live session still being written) is noted as `truncated`.
    Blank lines are ignored. CRLF endings are fine.
    """
    spath = str(path)
    loads = orjson.loads
    with open(path, "rb", buffering=READ_BUFFER) as fh:
        for lineno, raw in enumerate(fh, 1):
            try:  # the common case first: one orjson call, nothing else per line
                yield lineno, loads(raw)
                continue
            except orjson.JSONDecodeError:
                pass
            value = recover_line(raw, spath, lineno, issues)
            if value is not BAD:
                yield lineno, value


# What recover_line returns for a line that yields no value (blank, or reported in issues).
BAD = object()


def recover_line(raw: bytes, spath: str, lineno: int, issues: list[Issue]) -> Any:
    """The slow path of a JSONL line `orjson.loads` refused: blank lines give BAD silently; invalid UTF-8 is
    replaced and parsed again; anything else is reported in `issues` (as malformed, or truncated for a last line
    without newline) and gives BAD."""
    if len(raw) < 4 and not raw.strip():  # records are never that short
        return BAD
    try:
        return _loads(raw)
    except (orjson.JSONDecodeError, ValueError) as exc:
        if not raw.endswith(b"\n"):
            reason = "cut-off last line (a session still being written?); ignored"
            issues.append(Issue(spath, lineno, reason, "truncated"))
        else:
            issues.append(Issue(spath, lineno, f"not valid JSON ({_short(exc)}); line skipped"))
    return BAD


def read_json(path: str | Path) -> Any:
    """Parse a whole JSON file (invalid UTF-8 replaced). Raises ValueError with a readable reason."""
    raw = Path(path).read_bytes()
    try:
        return _loads(raw)
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: not valid JSON ({_short(exc)})") from None


def read_head(path: str | Path, size: int = HEAD_BYTES) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size)


def head_lines(head: bytes, limit: int, end: int | None = None) -> Iterator[bytes]:
    """The first `limit` lines of `head[:end]` (a last line without its newline included), one slice at a time: a
    sniffer that decides on the first line copies that line only, not the whole head (`split` copied all of it,
    ~0.1 ms a file in a load whose heap has grown)."""
    start, n, size = 0, 0, len(head) if end is None else end
    while start < size and n < limit:
        stop = head.find(b"\n", start, size)
        if stop < 0:
            stop = size
        yield head[start:stop]
        start, n = stop + 1, n + 1


def first_json_line(head: bytes) -> Any | None:
    """The first non-blank line of `head` (within its first 64) parsed as JSON, or None."""
    for raw in head_lines(head, 64):
        if raw.strip():
            try:
                return _loads(raw)
            except (orjson.JSONDecodeError, ValueError):
                return None
    return None


# Typed views of a parsed JSON value that may be anything (the readers parse hostile input): the value itself when
# it has the expected type, else an empty default. They give the type checker what `x if isinstance(x, dict) else {}`
# cannot when `x` is a call such as `rec.get("k")`.
def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None
