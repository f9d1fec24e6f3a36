"""Small text helpers shared by the loaders: capping huge payloads, media placeholders, time parsing."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson

# Huge tool outputs and pasted files stay out of memory: keep a preview, note the full size,
# and let `source` point back to the record for a re-read.
MAX_FIELD_CHARS = 16_000
_HEAD = 12_000
_TAIL = 3_000

_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,([A-Za-z0-9+/=\s]{64,})")


def cap(text: str | None, limit: int = MAX_FIELD_CHARS) -> str | None:
    """Return `text`, or its head and tail around a marker naming how much was cut."""
    if text is None or len(text) <= limit:
        return text
    head, tail = _HEAD * limit // MAX_FIELD_CHARS, _TAIL * limit // MAX_FIELD_CHARS
    cut = len(text) - head - tail
    return f"{text[:head]}\n[… {cut:,} characters cut; the full text is in the source record …]\n{text[-tail:]}"


def utf8_len(text: str | None) -> int:
    if not text:
        return 0
    if text.isascii():
        return len(text)
    try:
        return _cached_utf8_len(text)
    except UnicodeError:  # lone surrogates: counted as the "?" that replaces them
        return len(text.encode("utf-8", "replace"))


def _cached_utf8_len(text: str) -> int:
    """UTF-8 size of a non-ASCII str through CPython's own cache (PyUnicode_AsUTF8AndSize).

    The text is encoded once and the encoding kept in the str object; building the polars table later reuses it
    instead of encoding again. Plain `encode` is used where that C API is not reachable (not CPython)."""
    global _cached_utf8_len
    try:
        import ctypes

        fn = ctypes.pythonapi.PyUnicode_AsUTF8AndSize
        fn.restype = ctypes.c_void_p
        fn.argtypes = [ctypes.py_object, ctypes.POINTER(ctypes.c_ssize_t)]
        ssize, byref = ctypes.c_ssize_t, ctypes.byref

        def cached(t: str) -> int:
            size = ssize()  # one per call: a shared one could be overwritten by another thread
            fn(t, byref(size))
            return size.value
    except (ImportError, AttributeError):

        def cached(t: str) -> int:
            return len(t.encode("utf-8"))

    _cached_utf8_len = cached  # type: ignore[assignment]  # the first call replaces this function by the one it chose
    return cached(text)


def media_placeholder(mime: str | None, size: int) -> str:
    """What stands in for base64 media: never counted as text tokens."""
    return f"[media: {mime or 'application/octet-stream'}, {size:,} bytes]"


def strip_data_urls(text: str) -> str:
    """Replace inline `data:<mime>;base64,…` URLs by placeholders."""
    # A one-character search (memchr) rules most texts out far faster than a substring search.
    if ";" not in text or "base64," not in text:
        return text
    return _DATA_URL.sub(lambda m: media_placeholder(m.group(1), len(m.group(2)) * 3 // 4), text)


def to_json(value: Any) -> str | None:
    """Compact JSON text of a tool input or structured output (capped)."""
    if value is None:
        return None
    if isinstance(value, str):
        return cap(value)
    try:
        out = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        out = repr(value)
    return cap(strip_data_urls(out))


def one_line(text: str | None, limit: int = 160) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_LIMIT = 2**62


def time_or_raw(value: Any) -> Any:
    """`to_us(value)`, or `value` itself when it is given but is no time: checks.check_session then nulls it and
    notes it, instead of the time vanishing without a word."""
    us = to_us(value)
    return us if us is not None or value is None or value == "" else value


def to_us(value: Any) -> int | None:
    """Epoch microseconds (UTC) from an ISO-8601 string, epoch ms/s number, or datetime.

    Naive times are read as UTC (OpenHands writes naive local times; the report says so).
    """
    if type(value) is str and value:  # the common case (ISO text), first: one check instead of five
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        delta = dt - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        # Epoch seconds, milliseconds (OpenCode) or microseconds, told apart by magnitude. Beyond ±2^62 µs (or
        # inf/nan) no real time: None (times outside 1970..2200 are nulled and noted by checks.check_session).
        if not -_US_LIMIT < value < _US_LIMIT:
            return None
        if value < 1e11:
            return int(value * 1_000_000)
        if value < 1e14:
            return int(value * 1_000)
        return int(value)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            return None
    elif isinstance(value, datetime):
        dt = value
    else:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# `/init`, `/compact keep the tests`, `/review:pr 12`: a command to the agent program, not a prompt. Every loader
# gives such user rows origin "harness" (docs/sessions.md, "Who counts as human"). A path ("/usr/bin is…") is not
# one: a command name has no second "/" before the first blank.
_SLASH_COMMAND = re.compile(r"/[A-Za-z][\w:.-]*(?:\s|$)")


def is_slash_command(text: str | None) -> bool:
    return text is not None and _SLASH_COMMAND.match(text.lstrip()) is not None
