"""Tolerant JSON/JSONL reading: a bad line is reported and skipped, never fatal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from .model import Issue

HEAD_BYTES = 64 * 1024


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
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if len(raw) < 4 and not raw.strip():  # records are never that short; avoid copying every line
                continue
            try:
                yield lineno, _loads(raw)
            except (orjson.JSONDecodeError, ValueError) as exc:
                if not raw.endswith(b"\n"):
                    issues.append(
                        Issue(spath, lineno, "cut-off last line (a session still being written?); ignored", "truncated")
                    )
                else:
                    issues.append(Issue(spath, lineno, f"not valid JSON ({_short(exc)}); line skipped"))


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


def first_json_line(head: bytes) -> Any | None:
    """The first non-blank line of `head` parsed as JSON, or None."""
    for raw in head.split(b"\n", 64)[:64]:
        if raw.strip():
            try:
                return _loads(raw)
            except (orjson.JSONDecodeError, ValueError):
                return None
    return None
