"""What a loader returns: sessions made of normalized rows, plus notes on what it skipped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .schema import MESSAGE_COLUMNS
from .textutil import to_us, utf8_len

_COLS = tuple(MESSAGE_COLUMNS)


@dataclass(slots=True)
class Issue:
    """One thing the loader could not take as it was: where, and why."""

    path: str
    line: int | None  # 1-based line (JSONL) or None for whole-file / record-pointer issues
    reason: str
    kind: str = "malformed"  # malformed | truncated | invalid (a value nulled / ignored) | unknown | duplicate | note
    pointer: str | None = None  # record pointer inside a JSON file or database

    def where(self) -> str:
        if self.line is not None:
            return f"{self.path}:{self.line}"
        return f"{self.path}#{self.pointer}" if self.pointer else self.path


# A Session's metadata without its rows: what the load cache's manifest keeps and the worker hand-over sends
# (context/session_meta.py adds `malformed_lines`). One list, so the two cannot drift apart.
SESSION_META_FIELDS = (
    "session_id",
    "format",
    "path",
    "producer",
    "producer_version",
    "title",
    "cwd",
    "model",
    "parent_session_id",
    "started",
    "updated",
)


@dataclass
class Session:
    """One agent session: metadata plus its message rows, column by column."""

    session_id: str
    format: str
    path: str
    producer: str | None = None
    producer_version: str | None = None
    title: str | None = None
    cwd: str | None = None
    model: str | None = None
    parent_session_id: str | None = None
    started: int | None = None  # epoch µs
    updated: int | None = None
    malformed_lines: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, list] = field(default_factory=lambda: {c: [] for c in _COLS})
    _released: int | None = None
    # (row, value) of times that were given but are no time (unparseable text, a list…): nulled, and noted by
    # checks.check_session with the row's source.
    bad_times: list[tuple[int, Any]] = field(default_factory=list)
    # What the agent recorded about its model's window, for sessions/window.py (run once the reader is done), which
    # turns it into the out_by / cleared_by / window_event columns. Readers fill them; they never reach a table.
    # window: row -> facts of a window event recorded there ({"kind": ..., plus what sessions/window.py reads});
    # cleared: tool row -> how its output was cleared ({"kind": ..., "by": event row | "at": seq | "time_ms": t}).
    window: dict[int, dict] = field(default_factory=dict)
    cleared: dict[int, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert tuple(self.columns) == _COLS, "columns must follow schema.MESSAGE_COLUMNS"
        self._appends = tuple(col.append for col in self.columns.values())

    def __len__(self) -> int:
        return self._released if self._released is not None else len(self.columns["id"])

    def release(self) -> None:
        """Drop the row lists once they are in a table: the table holds the same data, and keeping both
        would double the memory of a large history."""
        self._released = len(self)
        self.columns = {}

    def add(
        self,
        *,
        role: str,
        origin: str,
        id: str | None = None,
        parent_id: str | None = None,
        ts: Any = None,
        text: str | None = "",
        thinking: str | None = None,
        tool_name: str | None = None,
        tool_call_id: str | None = None,
        tool_input: str | None = None,
        tool_output: str | None = None,
        tool_output_bytes: int | None = None,
        tool_status: str | None = None,
        model: str | None = None,
        input_uncached: int | None = None,
        cache_read: int | None = None,
        cache_write: int | None = None,
        output: int | None = None,
        reasoning: int | None = None,
        context_tokens: int | None = None,
        cost_usd: float | None = None,
        boundary: str | None = None,
        in_context: bool = True,
        text_bytes: int | None = None,
        raw_type: str | None = None,
        source: str | None = None,
    ) -> int:
        """Append one message row and return its index in this session.

        `text` and `tool_output` must already be capped (textutil.cap); pass the original sizes in
        `text_bytes` / `tool_output_bytes` when capping cut them. `ts` may be ISO text, epoch
        s/ms/µs or a datetime. `context_tokens` defaults to the sum of the three input columns.
        """
        n = len(self.columns["id"])
        # Values come from untrusted records: derived ones are computed only from values of the right type (the
        # rest is checked and noted once, by checks.check_session, before any table is built).
        if context_tokens is None and type(input_uncached) is int:
            context_tokens = input_uncached + _int0(cache_read) + _int0(cache_write)
        if ts is not None and type(ts) is not int:
            raw, ts = ts, to_us(ts)
            if ts is None and raw != "":
                self.bad_times.append((n, raw))
        if tool_output_bytes is None and type(tool_output) is str:
            tool_output_bytes = utf8_len(tool_output)
        if text_bytes is None:
            text_bytes = (len(text) if text.isascii() else utf8_len(text)) if type(text) is str and text else 0
        # One bound append per column, in schema order: the hot path of every loader (about 1 µs a row).
        a = self._appends
        a[0](id if id is not None else f"{self.session_id}#{n}")
        a[1](self.session_id)
        a[2](parent_id)
        a[3](n)
        a[4](role)
        a[5](origin)
        a[6](ts)
        a[7](text)
        a[8](thinking)
        a[9](tool_name)
        a[10](tool_call_id)
        a[11](tool_input)
        a[12](tool_output)
        a[13](tool_output_bytes)
        a[14](tool_status)
        a[15](model)
        a[16](input_uncached)
        a[17](cache_read)
        a[18](cache_write)
        a[19](output)
        a[20](reasoning)
        a[21](context_tokens)
        a[22](cost_usd)
        a[23](boundary)
        a[24](in_context)
        a[25](text_bytes)
        a[26](raw_type)
        a[27](source)
        a[28](None)  # out_by, cleared_by, window_event: filled by sessions/window.py once the file is read
        a[29](None)
        a[30](None)
        return n

    def set(self, index: int, **values: Any) -> None:
        """Change fields of an already added row (e.g. attach a tool result to its call)."""
        for name, value in values.items():
            if name == "ts" and value is not None and type(value) is not int:
                raw, value = value, to_us(value)
                if value is None and raw != "":
                    self.bad_times.append((index, raw))
            self.columns[name][index] = value

    def get(self, index: int, name: str) -> Any:
        return self.columns[name][index]


def _int0(value: Any) -> int:
    return value if type(value) is int else 0
